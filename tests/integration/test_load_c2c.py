"""`pbxcheck load click-to-call` against the reference central with 20 user agents registered and
auto-answering: every CHAMADA OK rings its origin, is answered there, and shows a number of the
destination range; every one of the 20 origins rings (a short, small-rate open-model run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pbxcheck.loadkit.destinations import LOOPBACK_DESTINATIONS

pytestmark = pytest.mark.slow


def _c2c(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pbxcheck", "load", "click-to-call", *args, "--reports", str(reports)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    return proc, reports / "load" / "click-to-call.result.json"


def test_every_click_to_call_rings_its_origin_with_20_agents(tmp_path: Path) -> None:
    proc, result = _c2c(tmp_path, "--rate", "20", "--run-time", "3s")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    res = json.loads(result.read_text())
    calls = res["calls"]
    assert calls["agents"] == 20
    assert calls["acknowledged"] == res["requests"] - res["failures"] >= 40, calls
    assert calls["rung"] == calls["answered"] == calls["acknowledged"], calls
    assert calls["failed"] == 0
    assert calls["origins_never_rung"] == []
    assert len(calls["by_origin"]) == 20 and all(o["rung"] >= 1 for o in calls["by_origin"].values()), calls
    assert calls["destinations_outside_range"] == 0
    assert calls["rings"] >= calls["rung"]
    assert f"{calls['acknowledged']} rang their origin" in out
    first, last = LOOPBACK_DESTINATIONS
    assert len(first) == len(last)


def test_rings_are_matched_to_acknowledged_calls_by_id() -> None:
    from pbxcheck.loadkit.phones import judge

    rings = [
        {"origin": "8101", "c2c_id": "8101_20261129120000_1", "destino": "1120000005", "answered": True, "error": ""},
        {"origin": "8102", "c2c_id": "8102_20261129120000_2", "destino": "1120000006", "answered": False, "error": ""},
        {"origin": "8102", "c2c_id": "", "destino": "999", "answered": True, "error": ""},
    ]
    acked = ["8101_20261129120000_1", "8102_20261129120000_2", "8103_20261129120000_3"]
    got = judge(acked, ["8101", "8102", "8103"], rings, *LOOPBACK_DESTINATIONS)
    assert (got["acknowledged"], got["rung"], got["answered"], got["failed"]) == (3, 2, 1, 2)
    assert got["origins_never_rung"] == ["8103"]
    assert got["destinations_outside_range"] == 1 and got["outside_examples"] == ["999"]
    assert got["by_origin"]["8102"] == {"acknowledged": 1, "rung": 1, "answered": 0}


def test_a_central_that_does_not_ring_fails_the_run(tmp_path: Path) -> None:
    proc, result = _c2c(tmp_path, "--rate", "10", "--run-time", "2s", "--fault", "c2c-no-ring")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    calls = json.loads(result.read_text())["calls"]
    assert calls["acknowledged"] > 0 and calls["rung"] == 0 and calls["failed"] == calls["acknowledged"]
    assert "(never rang)" in out
