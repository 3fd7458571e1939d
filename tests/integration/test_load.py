"""`pbxcheck load`: bounded runs against the embedded central, thresholds decide the exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _load(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pbxcheck", "load", *args, "--reports", str(tmp_path / "reports")],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )


def test_dialer_insert_counts_every_insert_and_a_threshold_fails_the_run(tmp_path: Path) -> None:
    proc = _load(
        tmp_path, "dialer-insert", "--users", "3", "--spawn-rate", "3", "--run-time", "3s", "--max-p95-ms", "0.001"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "above --max-p95-ms" in out
    assert "lost: 0" in out
    assert (tmp_path / "reports" / "load" / "dialer-insert.html").is_file()


def test_click_to_call_passes(tmp_path: Path) -> None:
    proc = _load(tmp_path, "click-to-call", "--users", "2", "--spawn-rate", "2", "--run-time", "3s")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "0 failed" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-scenario"], "unknown scenario"),
        (["dialer-insert", "--run-time", "forever"], "bounded duration"),
        (["dialer-insert", "--users", "0"], "--users must be at least 1"),
        (["dialer-insert", "--target", "/nonexistent.toml"], "file not found"),
    ],
)
def test_bad_input_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = _load(tmp_path, *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sip_register_scenario_fires_request_events(tmp_path: Path) -> None:
    proc = _load(tmp_path, "sip-register", "--users", "2", "--spawn-rate", "2", "--run-time", "3s")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "REGISTER (digest)" in out
    assert " 0 failed" in out


def test_a_locustfile_that_cannot_start_is_a_setup_error_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "locustfile_broken.py"
    broken.write_text("raise RuntimeError('this locustfile does not import')\n")
    proc = _load(tmp_path, str(broken), "--users", "1", "--run-time", "2s")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out  # not 1: no threshold was measured, Locust never ran
    assert "before running" in out
