"""A target file with only the required keys (API URLs, credentials, the disposable campaign and
classe5 client: no [sip] ws/wss URL, no [foreign], no [[extensions]]) runs to the end against the
embedded central: no INTERNALERROR, exit 0 or 1, and the clauses it cannot check are *not
applicable*, each with its reason, in the clause table, JUnit and the terminal."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pbxcheck import report, runner
from pbxcheck.central.process import CentralProcess
from pbxcheck.target import load_target

pytestmark = pytest.mark.slow

# The whole run (suites and SIP probes) but AUTH-6's throttling bursts, which cost time, not coverage.
DESELECT = ["-k", "not throttled"]


def minimal_target(full: Path, dest: Path) -> Path:
    t = load_target(full)
    dest.write_text(
        f"""name = "minimal"

[api]
url = "{t.api_url}"
plain_url = "{t.plain_url}"
{f'ca_file = "{t.ca_file}"' if t.ca_file else "insecure = true"}

[credentials]
login = "{t.login}"
senha = "{t.senha}"
token = "{t.token}"

[disposable]
campaign = "{t.disposable_campaign}"
classe5_client = "{t.disposable_classe5}"
""",
        encoding="utf-8",
    )
    return dest


def test_minimal_target_runs_to_the_end_and_says_what_does_not_apply(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    out = io.StringIO()
    with CentralProcess() as full:
        assert full.path is not None
        target = minimal_target(Path(full.path), tmp_path / "minimal.toml")
        loaded = load_target(target)
        assert loaded.sip_ws_url is None and loaded.foreign_token is None and not loaded.extensions
        code = runner.run(str(target), str(reports), extra_args=DESELECT, out=out)
    terminal = out.getvalue()
    assert "INTERNALERROR" not in terminal and "Traceback" not in terminal, terminal[-3000:]
    assert code in (0, 1), terminal[-3000:]
    table = json.loads((reports / report.CLAUSES_JSON).read_text(encoding="utf-8"))
    rows = table["clauses"]
    ws = rows["SIP-WS-1"]
    assert ws["status"] == report.NOT_APPLICABLE
    assert {n["reason"] for n in ws["not_applicable"]} == {
        "the target file has no sip.ws_url",
        "the target file has no sip.wss_url",
    }
    for cid in ("C2C-3", "SIP-REG-1", "SIP-INV-1", "SIP-NAT-1", "RAM-2"):  # they need [[extensions]]
        assert rows[cid]["status"] == report.NOT_APPLICABLE, cid
        assert all("extensions" in n["reason"] for n in rows[cid]["not_applicable"]), cid
    assert not [cid for cid, row in rows.items() if row["status"] == report.NOT_RUN and cid != "AUTH-6"]
    # the foreign-IP control cannot run without [foreign]: that check is not applicable, with why
    control = [c for c in rows["AUTH-3"]["checks"] if "foreign_token_works" in c["check"]]
    assert control and control[0]["outcome"] == report.NOT_APPLICABLE
    assert "foreign token" in control[0]["reason"]
    assert table["counts"][report.NOT_APPLICABLE] >= 2
    junit = ET.parse(reports / "junit.xml").getroot()
    skipped = [s.get("message", "") for s in junit.iter("skipped")]
    assert any(m.startswith("not applicable: the target file has no sip.ws_url") for m in skipped)
    flat = " ".join(terminal.replace("\u2502", " ").split())  # the summary table's cells, unwrapped
    assert "SIP-WS-1 not-applicable not applicable: the target file has no sip.ws_url" in flat
    assert "not checked:" in flat and f"{table['counts'][report.NOT_APPLICABLE]} not applicable" in flat
