"""SIGTERM and SIGHUP (what CI sends on cancel, what a closed terminal sends) on `pbxcheck run`, `load`
and `central`: handled like Ctrl-C, exit 130 (central: 0, stopping is its normal end), no process
and no temp folder left behind, partial reports that say so."""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pbxcheck import runner, signals
from pbxcheck.central.process import EPHEMERAL_PORTS
from pbxcheck.target import load_target

pytestmark = pytest.mark.slow


class Spawned:
    """``python -m pbxcheck ARGS`` with its own TMPDIR (to count temp folders) and a reader thread (to
    wait for a line without blocking forever)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.root = tmp_path
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir()
        env = dict(os.environ, TMPDIR=str(self.tmpdir), PYTHONUNBUFFERED="1", COLUMNS="200")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pbxcheck", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line)
        self.proc.stdout.close()  # at the end of the output: ours to close (ResourceWarning otherwise)
        self._q.put(None)

    def _take(self, timeout: float) -> str | None:
        """The next line (kept in ``lines``); None at the end of the output or after ``timeout``."""
        try:
            line = self._q.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is not None:
            self.lines.append(line)
        return line

    def wait_for(self, predicate, timeout: float) -> str:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._take(0.2)
            if line is None and self.proc.poll() is not None and self._q.empty():
                break
            if line is not None and predicate(line):
                return line
        pytest.fail(f"no such line within {timeout} s (exit {self.proc.poll()}):\n{self.text()[-3000:]}")

    def finish(self, timeout: float) -> int:
        """Exit code; everything printed is in ``text()`` afterwards."""
        code = self.proc.wait(timeout=timeout)
        while self._take(5) is not None:
            pass
        return code

    def text(self) -> str:
        return "".join(self.lines)

    def leftovers(self, wait: float = 5.0) -> list[str]:
        """Processes still alive (zombies aside) whose command line names this test's folder."""
        deadline = time.monotonic() + wait
        while True:
            found = []
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) == os.getpid():
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
                except OSError:
                    continue
                if str(self.root) in cmdline and state != "Z":
                    found.append(f"{entry.name}: {cmdline[:200]}")
            if not found or time.monotonic() >= deadline:
                return found
            time.sleep(0.2)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for line in self.leftovers(wait=0):
            try:
                pgid = int(line.partition(":")[0])
                os.kill(pgid, signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_run_stops_everything_and_marks_the_reports_incomplete(tmp_path: Path, sig: signal.Signals) -> None:
    reports = tmp_path / "reports"
    run = Spawned(tmp_path, "run", "--reports", str(reports))
    try:
        run.wait_for(lambda line: line.startswith(".") or "%]" in line, timeout=120)  # checks under way
        assert len(signals.descendants(run.proc.pid)) >= 2, "expected a central and a pytest under the runner"
        sent = time.monotonic()
        run.proc.send_signal(sig)
        code = run.finish(timeout=20)
        took = time.monotonic() - sent
        out = run.text()
        assert code == 130, out[-3000:]
        assert took < 15, f"took {took:.1f} s to stop"
        assert f"interrupted by {sig.name}" in out
        assert "Traceback" not in out
        assert run.leftovers() == [], "the runner left processes behind"
        assert sorted(p.name for p in run.tmpdir.iterdir()) == [], "temp folders left behind"
        assert not (reports / ".pbxcheck-running").exists()
        table = json.loads((reports / "clauses.json").read_text(encoding="utf-8"))
        assert table["incomplete"] is True
        assert sig.name in table["incomplete_reason"]
        md = (reports / "clauses.md").read_text(encoding="utf-8")
        assert md.startswith(f"**INCOMPLETE: interrupted by {sig.name}")
    finally:
        run.cleanup()


def test_run_interrupted_while_the_central_starts_leaves_no_target_file(tmp_path: Path) -> None:
    run = Spawned(tmp_path, "run", "--reports", str(tmp_path / "reports"))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(run.tmpdir.glob("pbxcheck-central-*/*")):
            time.sleep(0.02)  # the central's state folder (key, database, then target.toml) is being filled
        assert list(run.tmpdir.glob("pbxcheck-central-*")), "the embedded central never started"
        run.proc.send_signal(signal.SIGTERM)
        code = run.finish(timeout=20)
        out = run.text()
        assert code == 130, out[-3000:]
        assert "interrupted by SIGTERM" in out and "Traceback" not in out
        assert run.leftovers() == [], "the runner left processes behind"
        assert sorted(p.name for p in run.tmpdir.iterdir()) == [], "temp folders left behind"
    finally:
        run.cleanup()


def test_load_stops_locust_and_the_central(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    load = Spawned(
        tmp_path,
        "load",
        "dialer-insert",
        "--users",
        "2",
        "--spawn-rate",
        "2",
        "--run-time",
        "30s",
        "--reports",
        str(reports),
    )
    try:
        load.wait_for(lambda line: "All users spawned" in line or "Ramping to" in line, timeout=90)
        time.sleep(1.0)  # a few requests in flight
        sent = time.monotonic()
        load.proc.send_signal(signal.SIGTERM)
        code = load.finish(timeout=30)
        took = time.monotonic() - sent
        out = load.text()
        assert code == 130, out[-3000:]
        assert took < 20, f"took {took:.1f} s to stop"
        assert "interrupted by SIGTERM" in out
        assert "Traceback" not in out
        assert load.leftovers() == [], "load left processes behind"
        assert sorted(p.name for p in load.tmpdir.iterdir()) == [], "temp folders left behind"
        marker = reports / "load" / "dialer-insert.INCOMPLETE"
        assert "interrupted by SIGTERM" in marker.read_text()
    finally:
        load.cleanup()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_central_prints_its_listeners_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    central = Spawned(tmp_path, "central", *EPHEMERAL_PORTS)
    try:
        central.wait_for(lambda line: "to stop" in line, timeout=60)
        out = central.text()
        for label in ("API (HTTPS)", "plain HTTP", "SIP UDP", "SIP TCP", "SIP WS ", "SIP WSS", "target file"):
            assert label in out, out
        assert "https://127.0.0.1:" in out and "ws://127.0.0.1:" in out and "wss://127.0.0.1:" in out
        target_line = next(line for line in central.lines if "target file" in line)
        path = Path(target_line.split()[2])
        assert path.is_relative_to(central.tmpdir), target_line
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        t = load_target(path)
        assert "https://127.0.0.1:" in t.api_url and t.api_url in out  # the file describes this central
        secrets = [s for s in t.secrets if s]
        assert secrets and not any(s in out for s in secrets), "a credential was printed"
        central.proc.send_signal(sig)
        assert central.finish(timeout=15) == 0, central.text()[-2000:]
        assert "Traceback" not in central.text()
        assert central.leftovers() == []
        assert sorted(p.name for p in central.tmpdir.iterdir()) == [], "temp folders left behind"
    finally:
        central.cleanup()


# --- the pieces, in-process ----------------------------------------------------------------------------


def test_sigterm_and_sighup_raise_keyboard_interrupt_once_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with signals.interrupts() as seen:
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), sig)
                time.sleep(1)
            os.kill(os.getpid(), sig)  # a second one during cleanup: noted, not raised
            time.sleep(0.05)
        assert seen.first == sig and seen.later == [sig]
        assert seen.name == sig.name
    assert signal.getsignal(signal.SIGTERM) == before


def test_stop_tree_kills_descendants_that_left_the_group(tmp_path: Path) -> None:
    # A leader that ignores SIGINT and a grandchild in a session of its own (as the SIP peers start).
    code = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN);"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {str(tmp_path)!r}],"
        " start_new_session=True); print('up', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        kids = signals.descendants(proc.pid)
        assert len(kids) == 1
        started = time.monotonic()
        signals.stop_tree(proc, first=signal.SIGINT, grace=1.0)
        assert time.monotonic() - started < 5
        assert proc.returncode == -signal.SIGKILL
        time.sleep(0.2)
        assert [
            p
            for p in kids
            if Path(f"/proc/{p}").exists() and Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
        ] == []
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in signals.descendants(proc.pid):
            os.kill(p, signal.SIGKILL)
        if proc.stdout is not None:
            proc.stdout.close()


def test_mark_incomplete_without_and_with_reports(tmp_path: Path) -> None:
    runner.mark_incomplete(tmp_path, "interrupted by SIGTERM")
    table = json.loads((tmp_path / "clauses.json").read_text())
    assert table["incomplete"] is True and table["incomplete_reason"] == "interrupted by SIGTERM"
    assert table["clauses"] == {}
    (tmp_path / "clauses.json").write_text(json.dumps({"clauses": {"AUTH-1": {"status": "passed"}}, "counts": {}}))
    (tmp_path / "clauses.md").write_text("# Clause report: x\n")
    runner.mark_incomplete(tmp_path, "interrupted by SIGHUP")
    runner.mark_incomplete(tmp_path, "interrupted by SIGHUP")  # once is enough
    table = json.loads((tmp_path / "clauses.json").read_text())
    assert table["clauses"] == {"AUTH-1": {"status": "passed"}} and table["incomplete"] is True
    md = (tmp_path / "clauses.md").read_text()
    assert md.startswith("**INCOMPLETE: interrupted by SIGHUP") and md.count("INCOMPLETE") == 1
    assert md.endswith("# Clause report: x\n")


@pytest.mark.parametrize("command", [[], ["run"], ["load"]], ids=["app", "run", "load"])
def test_help_says_the_exit_codes(command: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pbxcheck", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, COLUMNS="300"),
    )
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    for part in (
        "0 every checked clause passed",
        "1 a clause failed",
        "2 usage or setup error",
        "130 interrupted (SIGINT, SIGTERM or SIGHUP",
    ):
        assert part in text, proc.stdout


def test_a_second_signal_cuts_the_grace_short(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN);"
            " print('up', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
        started = time.monotonic()
        with signals.interrupts() as seen:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
            except KeyboardInterrupt:
                timer.start()  # the second signal lands during the grace
                signals.stop_tree(proc, first=signal.SIGINT, grace=30.0)
        assert seen.first == signal.SIGINT and seen.later == [signal.SIGTERM]
        assert time.monotonic() - started < 5, "the grace ran its full 30 s"
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
