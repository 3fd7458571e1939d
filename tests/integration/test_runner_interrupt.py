"""Ctrl-C on `pbxcheck run`: pytest and the embedded central stop with it, and the exit says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def test_sigint_stops_pytest_and_the_central(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "pbxcheck", "run", "--reports", str(tmp_path / "reports")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # wait until the checks are under way
            seen.append(line)
            if line.startswith(".") or "%]" in line:
                break
        descendants = _children(proc.pid)
        assert len(descendants) >= 2, f"expected a central and a pytest under the runner: {descendants}\n{seen}"
        proc.send_signal(signal.SIGINT)  # to the runner alone, as `kill -INT` does
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 130, rest[-2000:]
        assert "interrupted" in rest
        assert "Traceback" not in rest
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in descendants):
            time.sleep(0.2)
        assert not [p for p in descendants if _alive(p)], "the runner left processes behind"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in _children(proc.pid):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
