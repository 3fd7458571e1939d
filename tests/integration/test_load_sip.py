"""`pbxcheck load sip-register` on the one engine: short bounded runs against the embedded reference
central, in both modes and over TCP once; every registration a 200, none failed (no speed asserted:
bench/bench_sip_load.py measures the generator's cost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, mode: str, transport: str) -> dict:
    env = {**os.environ, "PBXCHECK_SIP_MODE": mode, "PBXCHECK_SIP_TRANSPORT": transport}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pbxcheck",
            "load",
            "sip-register",
            "--users",
            "2",
            "--spawn-rate",
            "2",
            "--run-time",
            "5s",
            "--think-time",
            "0.01",
            "--reports",
            str(tmp_path / "reports"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    return json.loads((tmp_path / "reports" / "load" / "sip-register.result.json").read_text())


@pytest.mark.parametrize(
    ("mode", "transport", "name"),
    [
        ("fresh", "udp", "SIP REGISTER (digest)"),
        ("refresh", "udp", "SIP REGISTER (refresh nc)"),
        ("fresh", "tcp", "SIP REGISTER (digest)"),
    ],
)
def test_sip_register_mode_registers_with_no_failure(tmp_path: Path, mode: str, transport: str, name: str) -> None:
    res = _run(tmp_path, mode, transport)
    assert res["requests"] > 0
    assert res["failures"] == 0, res["failures_by_message"]
    assert res["locust"]["by_name"] == {name: [res["requests"], 0]}
    assert res["generator"]["cpu_s"] is not None  # the figure bench_sip_load.py reads


def test_an_unknown_mode_is_refused_before_any_registration(tmp_path: Path) -> None:
    env = {**os.environ, "PBXCHECK_SIP_MODE": "sometimes"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pbxcheck",
            "load",
            "sip-register",
            "--users",
            "1",
            "--run-time",
            "2s",
            "--reports",
            str(tmp_path / "reports"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "PBXCHECK_SIP_MODE" in proc.stdout + proc.stderr
