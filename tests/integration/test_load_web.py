"""`pbxcheck load --web`: Locust's web UI on a free port of 127.0.0.1 (never 8089, the central's WSS
default), reachable while the run goes; the run is stopped once the page was fetched."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_URL = re.compile(r"Locust's web UI: (http://127\.0\.0\.1:(\d+)/)")


def test_web_ui_serves_on_a_free_loopback_port_and_the_run_stops(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pbxcheck",
            "load",
            "dialer-insert",
            "--web",
            "--users",
            "2",
            "--think-time",
            "0.2",
            "--run-time",
            "30s",
            "--reports",
            str(tmp_path / "reports"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        match = None
        while match is None and time.monotonic() < deadline and proc.poll() is None:
            match = next((m for m in map(_URL.search, list(lines)) if m), None)
            time.sleep(0.1)
        assert match is not None, "".join(lines)
        url, port = match.group(1), int(match.group(2))
        assert port != 8089
        page = b""
        while not page and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback URL we printed)
                    assert resp.status == 200
                    page = resp.read()
            except OSError:
                time.sleep(0.2)  # Locust not listening yet
        assert b"Locust" in page, "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
    out = "".join(lines)
    assert code == 130, out  # stopped by the signal: interrupted, not a verdict
    assert "interrupted by SIGTERM" in out
    assert (tmp_path / "reports" / "load" / "dialer-insert.INCOMPLETE").is_file()
