"""The SIP probes pointed at a real Kamailio (fixtures/peers/kamailio): do they give the right verdicts?

A target file is written for the Kamailio: its SIP keys point at Kamailio, its HTTP keys at a local
port nobody listens on, and only the SIP-only probe modules run (the HTTP-only clauses stay "not run").
Expected verdicts:

* normal config: SIP-REG-1, SIP-REG-2, SIP-REG-3, SIP-INV-1, SIP-INV-2 pass; the enumeration probe
  (svwar) finds no leak (SIP-SEC-1 has no "high" finding); the password-guessing probe (svcrack) reports
  no throttling (medium): Kamailio refuses every wrong password at once and takes the right one right
  after, so its refusals, 403 or not, are no rate limit;
* ``leak_extensions=True`` (404 for unknown users): SIP-REG-2 fails (an unknown extension is answered
  unlike a wrong password) and the enumeration probe reports the leak as a high finding for SIP-SEC-1.
"""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from pbxcheck import runner
from pbxcheck.peers import free_port, require
from pbxcheck.peers.kamailio import KamailioProcess

pytestmark = [pytest.mark.peer, pytest.mark.slow]

MODULES = ["test_sip_register.py", "test_sip_invite.py", "test_sip_security.py"]
PASSING = ("SIP-REG-1", "SIP-REG-2", "SIP-REG-3", "SIP-INV-1", "SIP-INV-2")


def kamailio_target(kam: KamailioProcess, path: Path) -> Path:
    return kam.write_target(path, api_port=free_port(udp=False))


def run_probes(kam: KamailioProcess, tmp: Path) -> tuple[int, dict[str, Any], str]:
    target = kamailio_target(kam, tmp / "kamailio.toml")
    out = io.StringIO()
    code = runner.run(str(target), str(tmp / "reports"), paths=MODULES, out=out)
    table = json.loads((tmp / "reports" / "clauses.json").read_text(encoding="utf-8"))
    return code, table["clauses"], out.getvalue()


def users() -> dict[str, str]:
    return {u: secrets.token_hex(8) for u in ("2001", "2002", "2003")}


def _findings(rows: dict[str, Any], clause: str, severity: str) -> list[str]:
    return [f["text"] for f in rows[clause]["findings"] if f["severity"] == severity]


def test_probes_against_kamailio(tmp_path: Path) -> None:
    require("kamailio")
    with KamailioProcess(users()) as kam:
        code, rows, out = run_probes(kam, tmp_path)
        log = kam.log_tail(20)
    status = {c: rows[c]["status"] for c in rows}
    for c in PASSING:
        assert status[c] == "passed", f"{c}: {status[c]}\n{out[-4000:]}\n{log}"
    assert status["SIP-SEC-1"] in ("passed", "finding"), out[-4000:]
    assert not _findings(rows, "SIP-SEC-1", "high"), "no enumeration leak expected from the default config"
    assert not _findings(rows, "SIP-SEC-1", "critical"), rows["SIP-SEC-1"]["findings"]
    assert status["AUTH-1"] == "not-run" and status["C2C-2"] == "not-run"
    assert code == runner.EXIT_OK, out[-4000:]
    svwar = next(o["value"] for o in rows["SIP-SEC-1"]["observations"] if o["what"] == "svwar")
    assert svwar["REGISTER"]["existing"] == svwar["REGISTER"]["never-valid"]
    # svcrack: Kamailio refuses every wrong password at full speed and takes the right one right after;
    # whatever the status codes (403 included), that is no rate limit: the no-throttling finding.
    svcrack = next(o["value"] for o in rows["SIP-SEC-1"]["observations"] if o["what"] == "svcrack")
    assert svcrack["throttling"] == "none measured", svcrack
    assert svcrack["right_password_after"].startswith("SIP/2.0 200"), svcrack
    assert any("met no throttling" in t for t in _findings(rows, "SIP-SEC-1", "medium")), rows["SIP-SEC-1"]["findings"]


def test_probes_report_kamailio_extension_leak(tmp_path: Path) -> None:
    require("kamailio")
    with KamailioProcess(users(), leak_extensions=True) as kam:
        code, rows, out = run_probes(kam, tmp_path)
    assert rows["SIP-REG-2"]["status"] == "failed", out[-4000:]
    leaks = _findings(rows, "SIP-SEC-1", "high")
    assert any("enumerated" in t and "404" in t for t in leaks), rows["SIP-SEC-1"]["findings"]
    for c in ("SIP-REG-1", "SIP-REG-3", "SIP-INV-1", "SIP-INV-2"):
        assert rows[c]["status"] == "passed", f"{c}: {rows[c]['status']}\n{out[-3000:]}"
    assert code == runner.EXIT_FAILED


def test_probes_report_no_throttling_for_kamailio_403s(tmp_path: Path) -> None:
    """Issue 9: a 403 to every wrong password is no rate limit. Kamailio answering each guess 403 at full
    speed (and the right password 200 right after) gets the no-throttling finding, not a pass."""
    require("kamailio")
    with KamailioProcess(users(), wrong_password_403=True) as kam:
        target = kamailio_target(kam, tmp_path / "kamailio.toml")
        out = io.StringIO()
        code = runner.run(
            str(target),
            str(tmp_path / "reports"),
            paths=["test_sip_security.py"],
            extra_args=["-k", "password_guessing"],
            out=out,
        )
    rows = json.loads((tmp_path / "reports" / "clauses.json").read_text(encoding="utf-8"))["clauses"]
    svcrack = next(o["value"] for o in rows["SIP-SEC-1"]["observations"] if o["what"] == "svcrack")
    assert set(svcrack["fresh-nonce"]) == {"SIP/2.0 403 Forbidden"}, svcrack  # the refusals are 403s...
    assert svcrack["throttling"] == "none measured", svcrack  # ...and no throttling
    assert any("met no throttling" in t for t in _findings(rows, "SIP-SEC-1", "medium")), rows["SIP-SEC-1"]
    assert code == runner.EXIT_OK, out.getvalue()[-3000:]  # a finding, not a failure (no fail_on)
