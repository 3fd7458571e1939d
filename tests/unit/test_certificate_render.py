"""certificate.html from a synthetic reports folder: verdict, reading order, grouped failures,
reproductions, relative links, escaping, no credential; ``pbxcheck report`` without Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pbxcheck import certificate, report
from pbxcheck.cli import app
from pbxcheck.contract import API_VERSION, CLAUSES, CONTRACT_VERSION
from pbxcheck.target import Target

CURL = (
    'curl -sS -X POST -H \'Content-Type: application/json\' --data-binary \'{"acao": "insert", '
    '"login": "root", "senha": "[redacted]", "token": "[redacted]"}\' http://127.0.0.1:9/api.php'
)


def _table(statuses: dict[str, str], **extra: Any) -> dict[str, Any]:
    clauses = {}
    for cid, c in CLAUSES.items():
        status = statuses.get(cid, report.PASSED)
        clauses[cid] = {
            "section": c.section,
            "summary": c.summary,
            "kind": "contract",
            "sip": c.sip,
            "status": status,
            "checks": [{"check": f"suites/test_x.py::test_{cid.lower()}", "outcome": "passed"}],
            "observations": [],
            "findings": [],
            "failures": [],
            "not_applicable": [],
            "blocked_by": [],
        }
    counts = {s: sum(1 for r in clauses.values() if r["status"] == s) for s in report.STATES}
    return {
        "target": "unit",
        "insecure": False,
        "generated": "2026-01-01T00:00:00Z",
        "require": [],
        "counts": counts,
        "clauses": clauses,
        **extra,
    }


def _write(folder: Path, table: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / report.CLAUSES_JSON).write_text(json.dumps(table), encoding="utf-8")
    return folder


def _failure_file(folder: Path, name: str, got: str) -> str:
    (folder / report.FAILURES_DIR).mkdir(parents=True, exist_ok=True)
    path = folder / report.FAILURES_DIR / name
    path.write_text(
        f"check:   x\nclauses: AUTH-4\n\n>   check()\nE       ClauseFailure: [AUTH-4] expected X, got {got}\n"
        "E       \nE       sent:    POST http://127.0.0.1:9/api.php from 127.0.0.1\n"
        'E                {"acao": "insert"}\n'
        f"E       got:     HTTP 200  {got}\nE       repro:   {CURL}\n\nsrc/x.py:1: ClauseFailure\n",
        encoding="utf-8",
    )
    return str(path)  # absolute, as clauses.json records it


def _faulty(folder: Path) -> Path:
    table = _table(
        {
            "AUTH-4": report.FAILED,
            "AUTH-6": report.FINDING,
            "REC-2": report.FINDING,
            "REP-2": report.UNSPECIFIED_OBSERVED,
            "SIP-WS-1": report.NOT_APPLICABLE,
        }
    )
    row = table["clauses"]["AUTH-4"]
    for acao in ("insert", "statusdiscador", "statusreport"):
        nodeid = f"suites/test_auth.py::test_plain_http[{acao}]"
        f = _failure_file(folder, f"plain_{acao}.txt", f'["Status", "{acao}"]')
        row["failures"].append(
            {"check": nodeid, "message": f'[AUTH-4] expected X, got ["Status", "{acao}"]', "file": f}
        )
    for name in ("test_a", "test_b"):  # two checks, one message: one line
        row["failures"].append(
            {
                "check": f"suites/test_auth.py::{name}",
                "message": "[AUTH-4] <script>alert(1)</script>",
                "file": _failure_file(folder, f"{name}.txt", "<b>"),
            }
        )
    table["clauses"]["AUTH-6"]["findings"] = [{"severity": "low", "text": "slow", "check": "c"}]
    table["clauses"]["REC-2"]["findings"] = [{"severity": "medium", "text": "open", "check": "c"}]
    table["clauses"]["REP-2"]["observations"] = [
        {"what": "malformed", "value": ["Status", "Data Invalida"], "check": "c", "checks": ["c"]}
    ]
    table["clauses"]["SIP-WS-1"]["not_applicable"] = [{"reason": "no [sip] wss_url", "checks": ["c"]}]
    return _write(folder, table)


def test_verdicts() -> None:
    assert certificate.verdict(_table({}))[0] == certificate.CONFORMS
    v, sentence = certificate.verdict(_table({"AUTH-4": report.FAILED, "RAM-2": report.NOT_RUN}))
    assert v == certificate.DOES_NOT_CONFORM and sentence.startswith("Does not conform: 1 clause failed")
    v, sentence = certificate.verdict(_table({"RAM-2": report.NOT_RUN, "SIP-WS-1": report.NOT_APPLICABLE}))
    assert v == certificate.INCOMPLETE and "2 clauses not checked" in sentence and "RAM-2" in sentence
    v, sentence = certificate.verdict(_table({}, incomplete=True, incomplete_reason="interrupted by SIGINT"))
    assert v == certificate.INCOMPLETE and "interrupted by SIGINT" in sentence


def test_reading_order_failed_findings_by_severity_unspecified_passed_not_checked(tmp_path: Path) -> None:
    table = json.loads((_faulty(tmp_path) / report.CLAUSES_JSON).read_text())
    order = [cid for cid, _ in certificate.ordered(table)]
    assert order[:4] == ["AUTH-4", "REC-2", "AUTH-6", "REP-2"]  # medium before low
    assert order[-1] == "SIP-WS-1"


def test_parametrised_cases_and_same_message_are_grouped() -> None:
    failures = [
        {"check": f"t.py::test_p[{a}]", "message": f"[AUTH-4] expected X, got {a}", "file": None}
        for a in ("a", "b", "c")
    ]
    failures += [
        {"check": "t.py::test_q", "message": "[AUTH-4] other 1700000000123", "file": None},
        {"check": "t.py::test_r", "message": "[AUTH-4] other 1700000000999", "file": None},
        {"check": "t.py::test_s", "message": "[AUTH-4] unrelated", "file": None},
    ]
    groups = certificate.group_failures(failures)
    assert len(groups) == 3
    assert groups[0].headline == "expected X, got …" and [v for v, _ in groups[0].variants] == ["a", "b", "c"]
    assert [len(g.failures) for g in groups] == [3, 2, 1]


def test_certificate_html(tmp_path: Path) -> None:
    folder = _faulty(tmp_path / "reports")
    info = {
        "target": "staging",
        "endpoints": [{"name": "API", "url": "https://pbx.example/api.php"}],
        "tls_verify_api": True,
        "tls_verify_sip": False,
        "profile": "ci",
        "pbxcheck": "9.9",
    }
    html = certificate.write(folder, info).read_text(encoding="utf-8")
    sections = re.findall(r'<section class="clause s-([a-z-]+)(?: compact)?" id="clause-([A-Z0-9-]+)"', html)
    assert sections[0] == ("failed", "AUTH-4")
    assert {cid for _, cid in sections} == set(CLAUSES)
    assert "Does not conform: 1 clause failed (AUTH-4)" in html
    for text in ("https://pbx.example/api.php", CONTRACT_VERSION, API_VERSION, "OFF for SIP/WSS", "9.9"):
        assert text in html
    import hashlib

    assert hashlib.sha256((folder / report.CLAUSES_JSON).read_bytes()).hexdigest() in html
    # one line per distinct failure: 5 failed cases, 2 lines
    assert html.count('class="fail-line"') == 2
    assert "<script>" not in html and "&lt;script&gt;" in html
    # relative links to the failure files, and a reproduction reading the secrets from the environment
    assert 'href="failures/plain_insert.txt"' in html and str(tmp_path) not in html
    assert "$PBX_SENHA" in html and "[redacted]" not in html.split('class="repro"')[1].split("</pre>")[0]
    assert (folder / certificate.RUN_INFO_JSON).exists()
    # rendered again from the folder alone (pbxcheck report): the same page
    assert certificate.render(folder) == html


def test_working_curl_is_valid_shell() -> None:
    import shlex

    line = certificate.working_curl(CURL)
    words = shlex.split(line.replace("$PBX_SENHA", "S3cret").replace("$PBX_TOKEN", "T0ken"))
    body = json.loads(words[words.index("--data-binary") + 1])
    assert body["senha"] == "S3cret" and body["token"] == "T0ken"


def test_run_info_has_no_secret() -> None:
    t = Target(
        name="t",
        api_url="https://h",
        plain_url="http://h",
        source_ip="127.0.0.1",
        login="root",
        senha="Very-Secret-Senha",
        token="0123456789abcdef0123456789abcdef",
        disposable_campaign="900",
        disposable_classe5="teste",
        foreign_token="fedcba9876543210fedcba9876543210",
    )
    text = json.dumps(certificate.run_info(t, profile="ci"))
    for secret in t.secrets:
        assert secret not in text and secret[:6] not in text


def test_failure_file_repro_and_ladder(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    p.write_text(
        "E       ClauseFailure: [SIP-REG-1] no 200\nE       \nE       SIP exchange of test_reg\n"
        "E       time  delta  a  b\nE       12:00  +0  |--- REGISTER -->|\nE       \nE       more\n"
    )
    ff = certificate.read_failure_file(p)
    assert ff.ladder.splitlines()[0] == "SIP exchange of test_reg" and "REGISTER" in ff.ladder and not ff.repro


def test_report_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["report", str(tmp_path / "none")])
    assert r.exit_code == 2
    folder = _faulty(tmp_path / "reports")
    r = runner.invoke(app, ["report", str(folder)])
    assert r.exit_code == 0 and (folder / certificate.CERTIFICATE_HTML).exists()
    monkeypatch.setattr(certificate, "find_chromium", lambda: None)
    r = runner.invoke(app, ["report", str(folder), "--pdf"])
    assert r.exit_code == 2 and "Chromium" in r.output


def test_observations_with_one_answer_are_one_line() -> None:
    obs = [
        {
            "what": f"token/{a}",
            "value": ["Status", "Login/Senha Invalido"],
            "check": f"t.py::test_t[{a}]",
            "checks": [f"t.py::test_t[{a}]"],
        }
        for a in ("insert", "statusreport")
    ]
    obs.append({"what": "token/clicktocall", "value": ["Status", "other"], "check": "c", "checks": ["c"]})
    groups = certificate._observation_groups(obs)
    assert [g[0] for g in groups] == ["token/{insert, statusreport}", "token/clicktocall"]
    assert certificate._which(groups[0][0], groups[0][2]) == "test_t"
