"""Ctrl-C on `pbxcheck run`: pytest and the embedded central stop with it, and the exit says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pbxcheck.signals import descendants

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def test_sigint_stops_pytest_and_the_central(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pbxcheck", "run", "--reports", str(tmp_path / "reports")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, TMPDIR=str(tmpdir)),
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # wait until the checks are under way
            seen.append(line)
            if line.startswith(".") or "%]" in line:
                break
        children = set(descendants(proc.pid))
        assert len(children) >= 2, f"expected a central and a pytest under the runner: {children}\n{seen}"
        proc.send_signal(signal.SIGINT)  # to the runner alone, as `kill -INT` does
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 130, rest[-2000:]
        assert "interrupted by SIGINT" in rest
        assert "Traceback" not in rest
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in children):
            time.sleep(0.2)
        assert not [p for p in children if _alive(p)], "the runner left processes behind"
        assert list(tmpdir.iterdir()) == [], "temp folders left behind"
        assert '"incomplete": true' in (tmp_path / "reports" / "clauses.json").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in descendants(proc.pid):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
