"""report.py: verdicts per clause, the files it writes, and the redaction of what other tools wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pbxcheck import report
from pbxcheck.contract import CLAUSES
from pbxcheck.redact import Redactor

SECRET = 's3cr3t-Senha"&<ção'
TOKEN = "0123456789abcdef0123456789abcdef"


def _result(
    nodeid: str, clauses: tuple[str, ...], outcome: str, failed: list[str] | None = None, message: str = ""
) -> dict[str, Any]:
    return {
        "nodeid": nodeid,
        "clauses": clauses,
        "outcome": outcome,
        "failed_clauses": failed or [],
        "message": message,
        "failure_file": None,
    }


def _table(
    results: list[dict[str, Any]],
    observations: list[dict[str, Any]] | None = None,
    findings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return report.clause_table(
        results=results, observations=observations or [], findings=findings or [], target_name="t", insecure=True
    )


def test_verdicts_per_clause_kind() -> None:
    table = _table(
        [
            _result("a", ("AUTH-1",), "passed"),
            _result("b", ("AUTH-2", "AUTH-5"), "failed", ["AUTH-5"], "[AUTH-5] changed"),
            _result("c", ("AUTH-6",), "passed"),
            _result("d", ("REP-2",), "passed"),
            _result("e", ("RAM-1",), "skipped"),
            _result("f", ("C5-1",), "passed"),
        ],
        observations=[{"clause": "REP-2", "what": "malformed_date", "value": ["Status", "X"], "check": "d"}],
        findings=[{"clause": "AUTH-6", "severity": "low", "text": "no throttling", "check": "c"}],
    )
    verdict = {cid: row["status"] for cid, row in table["clauses"].items()}
    assert verdict["AUTH-1"] == report.PASSED
    assert verdict["AUTH-5"] == report.FAILED
    # Only the clause the failure named fails; the check stopped before finishing with its other clause.
    assert verdict["AUTH-2"] == report.BLOCKED
    assert table["clauses"]["AUTH-2"]["blocked_by"][0]["clause"] == "AUTH-5"
    assert verdict["AUTH-6"] == report.FINDING
    assert verdict["REP-2"] == report.UNSPECIFIED_OBSERVED
    assert verdict["RAM-1"] == report.NOT_APPLICABLE
    assert verdict["C5-1"] == report.PASSED  # unspecified, but nothing observed
    assert verdict["SIP-REG-1"] == report.NOT_RUN
    assert report.failed_clauses(table) == ["AUTH-5"]
    assert table["counts"][report.FAILED] == 1
    assert set(table["clauses"]) == set(CLAUSES)


def test_one_failed_check_fails_the_clause_whatever_else_passed() -> None:
    table = _table([_result("a", ("REP-1",), "passed"), _result("b", ("REP-1",), "error", ["REP-1"], "boom")])
    row = table["clauses"]["REP-1"]
    assert row["status"] == report.FAILED
    assert [c["outcome"] for c in row["checks"]] == ["passed", "failed"]
    assert row["failures"][0]["message"] == "boom"


def test_clause_reports_are_redacted(tmp_path: Path) -> None:
    redactor = Redactor([SECRET, TOKEN])
    table = _table(
        [_result("a", ("AUTH-2",), "failed", ["AUTH-2"], f"sent token {TOKEN}")],
        observations=[{"clause": "AUTH-2", "what": "token", "value": [TOKEN], "check": "a"}],
    )
    report.write_clause_reports(tmp_path, table, redactor)
    for name in (report.CLAUSES_JSON, report.CLAUSES_MD):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert TOKEN not in text and "[redacted]" in text
    loaded = json.loads((tmp_path / report.CLAUSES_JSON).read_text(encoding="utf-8"))
    assert loaded["clauses"]["AUTH-2"]["status"] == report.FAILED
    assert "TLS verification was OFF" in (tmp_path / report.CLAUSES_MD).read_text(encoding="utf-8")


def test_failure_file_holds_message_and_exchanges(tmp_path: Path) -> None:
    redactor = Redactor([SECRET])
    path = report.write_failure(
        tmp_path,
        "suites/test_x.py::test_y[a/b]",
        ("DIAL-INS-1",),
        "E  boom",
        [f'sent: POST /api.php {{"senha": "{SECRET}"}}'],
        redactor,
    )
    text = Path(path).read_text(encoding="utf-8")
    assert Path(path).parent.name == report.FAILURES_DIR and "/" not in Path(path).name
    assert "DIAL-INS-1" in text and "boom" in text and SECRET not in text and "[redacted]" in text


def test_redact_tree_catches_escaped_spellings_and_file_names(tmp_path: Path) -> None:
    redactor = Redactor([SECRET, TOKEN])
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "raw.txt").write_text(f"x {SECRET} y {TOKEN}", encoding="utf-8")
    (tmp_path / "a" / "json.json").write_text(json.dumps({"v": SECRET}), encoding="utf-8")
    (tmp_path / "a" / "xml.xml").write_text(
        SECRET.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;"), encoding="utf-8"
    )
    (tmp_path / "a" / "url.txt").write_text("token=" + TOKEN, encoding="utf-8")
    (tmp_path / f"{TOKEN}.txt").write_text("x", encoding="utf-8")
    assert report.find_secrets(tmp_path, redactor.secrets)
    report.redact_tree(tmp_path, redactor)
    assert report.find_secrets(tmp_path, redactor.secrets) == []


def test_markdown_and_summary_list_every_clause_and_the_counts() -> None:
    table = _table([_result("a", ("AUTH-1",), "failed", ["AUTH-1"], "[AUTH-1] broken")])
    md = report.render_markdown(table)
    assert all(f"| {cid} |" in md for cid in CLAUSES)
    summary = report.render_summary(table, width=120)
    assert "AUTH-1" in summary and "1 failed" in summary and "TLS verification: OFF" in summary
    # SIP clauses not run are left out of an HTTP-only table, hardening and [unspecified] ones too
    assert "SIP-REG-1" not in summary and "SIP-SEC-1" not in summary and "SIP-NAT-1" not in summary


def test_failure_charged_to_a_clause_the_check_is_not_marked_with() -> None:
    table = _table([_result("a", ("DIAL-ST-2",), "failed", ["DIAL-INS-1"], "[DIAL-INS-1] insert not OK")])
    assert table["clauses"]["DIAL-INS-1"]["status"] == report.FAILED
    row = table["clauses"]["DIAL-ST-2"]
    assert row["status"] == report.BLOCKED
    assert row["checks"][0]["outcome"] == report.BLOCKED and row["checks"][0]["blocked_by"] == ["DIAL-INS-1"]
    assert "blocked by DIAL-INS-1" in report.render_markdown(table)
    assert "blocked by DIAL-INS-1" in report.render_summary(table, width=160)


def test_exit_codes_from_pytest_and_the_clause_table(tmp_path: Path) -> None:
    import io

    from pbxcheck.runner import exit_code

    out = io.StringIO()
    assert exit_code(4, tmp_path, out) == 2  # pytest usage error (a bad --target)
    assert exit_code(5, tmp_path, out) == 2 and "no checks" in out.getvalue()
    assert exit_code(1, tmp_path, out) == 1
    redactor = Redactor(())
    report.write_clause_reports(tmp_path, _table([_result("a", ("AUTH-1",), "passed")]), redactor)
    assert exit_code(0, tmp_path, out) == 0
    report.write_clause_reports(tmp_path, _table([_result("a", ("AUTH-1",), "failed", ["AUTH-1"])]), redactor)
    assert exit_code(1, tmp_path, out) == 1


def test_skipped_checks_make_the_clause_not_applicable_with_the_reason() -> None:
    table = _table(
        [
            _result("s::ws[WS]", ("SIP-WS-1",), "skipped", message="the target file has no sip.ws_url"),
            _result("s::ws[WSS]", ("SIP-WS-1",), "skipped", message="the target file has no sip.wss_url"),
            _result("a::foreign", ("AUTH-3",), "skipped", message="no [foreign] source IP"),
        ]
    )
    row = table["clauses"]["SIP-WS-1"]
    assert row["status"] == report.NOT_APPLICABLE
    assert [n["reason"] for n in row["not_applicable"]] == [
        "the target file has no sip.ws_url",
        "the target file has no sip.wss_url",
    ]
    assert table["counts"][report.NOT_APPLICABLE] == 2
    md = report.render_markdown(table)
    assert "| SIP-WS-1 | not-applicable |" in md and "not applicable: the target file has no sip.wss_url" in md
    summary = report.render_summary(table, width=200)
    assert "not applicable: no [foreign] source IP" in summary
    # every clause but the two is not run: the summary says how many were not checked in all
    assert f"{len(CLAUSES)} not checked: 2 not applicable, 0 blocked, {len(CLAUSES) - 2} not run" in summary
    assert report.not_checked(table).count("SIP-WS-1") == 1


def test_a_passed_check_outweighs_a_skipped_one() -> None:
    table = _table([_result("a", ("AUTH-3",), "skipped", message="x"), _result("b", ("AUTH-3",), "passed")])
    assert table["clauses"]["AUTH-3"]["status"] == report.PASSED


def test_explicitly_blocked_check_names_the_blocking_clause() -> None:
    r = _result("c::c2c3", ("C2C-3",), "blocked", message="blocked by C2C-1: the click-to-call answer is broken")
    r["blocked_by"] = ["C2C-1"]
    table = _table([r])
    row = table["clauses"]["C2C-3"]
    assert row["status"] == report.BLOCKED and row["blocked_by"][0]["clause"] == "C2C-1"
    assert "blocked by C2C-1" in report.render_summary(table, width=160)


def test_gate_require_turns_not_checked_into_a_failure() -> None:
    results = [
        _result("s::ws", ("SIP-WS-1",), "skipped", message="the target file has no sip.ws_url"),
        _result("a", ("AUTH-1",), "passed"),
        _result("b", ("C2C-3",), "failed", ["C2C-1"], "[C2C-1] broken"),
    ]
    table = report.clause_table(
        results=results, observations=[], findings=[], require=["SIP-WS-1", "AUTH-1", "C2C-3", "REP-1"]
    )
    status = {cid: row["status"] for cid, row in table["clauses"].items()}
    assert status["SIP-WS-1"] == status["C2C-3"] == status["REP-1"] == report.FAILED
    assert status["AUTH-1"] == report.PASSED
    ws = table["clauses"]["SIP-WS-1"]["failures"][0]["message"]
    assert "[gate] require" in ws and "not applicable: the target file has no sip.ws_url" in ws
    assert "blocked by C2C-1" in table["clauses"]["C2C-3"]["failures"][0]["message"]
    assert "not run" in table["clauses"]["REP-1"]["failures"][0]["message"]
    assert set(report.failed_clauses(table)) == {"SIP-WS-1", "C2C-3", "REP-1", "C2C-1"}
    # without the gate the same run fails only C2C-1
    plain = report.clause_table(results=results, observations=[], findings=[])
    assert report.failed_clauses(plain) == ["C2C-1"]


def test_observations_keep_every_parameters_value() -> None:
    obs = [
        {
            "clause": "AUTH-2",
            "what": "token",
            "value": ["Status", "Login/Senha Invalido"],
            "check": f"suites/test_auth.py::test_wrong_token[{acao}]",
        }
        for acao in ("insert", "statusdiscador")
    ]
    obs.append(
        {
            "clause": "AUTH-2",
            "what": "token",
            "value": ["Status", "BLOQUEADO"],
            "check": "suites/test_auth.py::test_wrong_token[bloqueioclasse5]",
        }
    )
    table = _table([_result(o["check"], ("AUTH-2",), "passed") for o in obs], observations=obs)
    row = table["clauses"]["AUTH-2"]
    assert [(o["value"], len(o["checks"])) for o in row["observations"]] == [
        (["Status", "Login/Senha Invalido"], 2),
        (["Status", "BLOQUEADO"], 1),
    ]
    lines = report.observation_lines(row)
    assert lines == [
        'token = ["Status", "Login/Senha Invalido"] ([insert], [statusdiscador])',
        'token = ["Status", "BLOQUEADO"] ([bloqueioclasse5])',
    ]
    md = report.render_markdown(table)
    summary = report.render_summary(table, width=250)
    for text in (md, summary):
        assert "[bloqueioclasse5]" in text and "[statusdiscador]" in text


def test_redact_tree_cuts_fragments_in_every_spelling(tmp_path: Path) -> None:
    redactor = Redactor([SECRET, TOKEN])
    head = SECRET[:9].replace('"', "&quot;")  # the XML spelling of its first 9 characters
    (tmp_path / "junit.xml").write_text(
        f"<failure message=\"'senha': '{head}...'\">wrong token X{TOKEN[1:]}</failure>", encoding="utf-8"
    )
    (tmp_path / "r-result.json").write_text(json.dumps({"trace": f"locals {SECRET[:13]}..."}), encoding="utf-8")
    assert report.find_secrets(tmp_path, redactor.secrets)
    report.redact_tree(tmp_path, redactor)
    assert report.find_secrets(tmp_path, redactor.secrets) == []
    assert "wrong token X[redacted]" in (tmp_path / "junit.xml").read_text(encoding="utf-8")
