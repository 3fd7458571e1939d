"""Allure results and JUnit testcases by clause, from a check's result (no run, no central)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from allure_commons import model2
from allure_commons.model2 import Label, Status, StatusDetails

from pbxcheck import report
from pbxcheck.checks.allure_clauses import OBSERVATION, clause_views, gate_result, per_clause
from pbxcheck.checks.junit_clauses import gate_failures, junit_properties, name_testcases, unprefixed
from pbxcheck.checks.session import CheckResult
from pbxcheck.contract import CLAUSES
from pbxcheck.redact import Redactor

SENHA = "senha-secreta-123"
NODE = "suites/test_auth.py::test_wrong_token_denied[insert]"


def _labels(result: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for label in result.labels:
        out.setdefault(label.name, []).append(label.value)
    return out


def _allure_result(status: str, message: str | None = None) -> model2.TestResult:
    return model2.TestResult(
        name="test_wrong_token_denied[insert]",
        fullName="suites.test_auth#test_wrong_token_denied",
        uuid="u-1",
        historyId="h-1",
        testCaseId="t-1",
        status=status,
        statusDetails=StatusDetails(message=message, trace="trace") if message else None,
        labels=[Label("suite", "test_auth"), Label("story", "AUTH-2"), Label("tag", "slow")],
    )


def test_a_failure_under_one_clause_is_blocked_under_the_others() -> None:
    check = CheckResult(NODE, ("AUTH-2", "AUTH-5"), outcome="failed", failed_clauses=["AUTH-2"], message="[AUTH-2] x")
    views = clause_views(check, [], [])
    assert [(v.clause, v.outcome) for v in views] == [("AUTH-2", "failed"), ("AUTH-5", report.BLOCKED)]
    original = _allure_result(Status.FAILED, "AssertionError: [AUTH-2] x")
    results = per_clause(original, views, Redactor(()))
    assert results[0] is original  # the fixtures' containers name its UUID: it stays under the failed clause
    by = {_labels(r)["clause"][0]: r for r in results}
    assert by["AUTH-2"].status == Status.FAILED and by["AUTH-2"].statusDetails.trace == "trace"
    assert (
        by["AUTH-5"].status == Status.SKIPPED and by["AUTH-5"].statusDetails.message == "blocked by AUTH-2: [AUTH-2] x"
    )
    assert len({r.uuid for r in results}) == 2 and len({r.historyId for r in results}) == 2
    for cid, r in by.items():
        lb = _labels(r)
        assert lb["parentSuite"] == [CLAUSES[cid].section] and lb["suite"][0].startswith(cid + " ")
        assert "story" not in lb and lb["suite"] != ["test_auth"] and lb["tag"] == ["slow"]


def test_an_unmarked_clause_a_check_failed_is_charged() -> None:
    check = CheckResult(NODE, ("AUTH-5",), outcome="failed", failed_clauses=["DIAL-INS-1"])
    views = clause_views(check, [], [])
    assert [(v.clause, v.outcome) for v in views] == [("AUTH-5", report.BLOCKED), ("DIAL-INS-1", "failed")]
    assert _labels(per_clause(_allure_result(Status.FAILED, "x"), views, Redactor(()))[0])["clause"] == ["DIAL-INS-1"]


def test_findings_and_observations_are_labelled_and_said() -> None:
    check = CheckResult(NODE, ("AUTH-6",), outcome="passed")
    findings = [{"clause": "AUTH-6", "severity": "low", "text": f"no throttling ({SENHA})", "check": NODE}]
    observations = [
        {"clause": "AUTH-6", "what": "throttling", "value": {"verdict": "none"}, "check": NODE},
        {"clause": "AUTH-2", "what": "source_ip/insert", "value": ["Status", "x"], "check": NODE},
        {"clause": "AUTH-2", "what": "token", "value": 1, "check": "someone else"},
    ]
    views = clause_views(check, observations, findings)
    assert [(v.clause, v.outcome) for v in views] == [("AUTH-6", "passed"), ("AUTH-2", OBSERVATION)]
    results = per_clause(_allure_result(Status.PASSED), views, Redactor((SENHA,)))
    auth6, auth2 = (_labels(r) for r in results)
    assert auth6["finding"] == ["low"] and auth6["unspecified"] == ["observed throttling"]
    assert {"finding (low)", "unspecified: observed"} <= set(auth6["tag"])
    assert results[0].status == Status.PASSED
    message = results[0].statusDetails.message
    assert message.startswith("finding (low): no throttling ([redacted])") and SENHA not in message
    assert 'unspecified: observed throttling = {"verdict": "none"}' in message
    # seen while checking another clause: shown under AUTH-2, never counted as one of its checks
    assert results[1].status == Status.UNKNOWN and auth2["outcome"] == [OBSERVATION]
    assert "token" not in results[1].statusDetails.message


def test_junit_properties_and_names(tmp_path: Path) -> None:
    check = CheckResult(NODE, ("AUTH-2", "AUTH-5"), outcome="failed", failed_clauses=["AUTH-2"])
    assert junit_properties(check) == [
        ("clause", "AUTH-2"),
        ("clause", "AUTH-5"),
        ("clause.AUTH-2", "failed"),
        ("clause.AUTH-5", "blocked by AUTH-2"),
    ]
    xml = tmp_path / "junit.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest" tests="2" failures="1">'
        '<testcase name="test_a"><properties><property name="clause" value="AUTH-2"/>'
        '<property name="clause" value="AUTH-5"/></properties><failure message="m"/></testcase>'
        '<testcase name="test_plain"/></testsuite></testsuites>',
        encoding="utf-8",
    )
    table = {"clauses": {"SIP-WS-1": {"failures": [{"check": None, "message": "[gate] require: not run"}]}}}
    assert name_testcases(xml, gate_failures(table)) == 2
    assert name_testcases(xml) == 0  # once only
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "2"
    names = [c.get("name", "") for c in suite.iter("testcase")]
    assert names == ["[AUTH-2 AUTH-5] test_a", "test_plain", "[SIP-WS-1] [gate] require SIP-WS-1"]
    assert unprefixed(names[0]) == "test_a" and unprefixed(names[1]) == "test_plain"
    gate = gate_result("SIP-WS-1", "[gate] require: not run")
    assert gate.status == Status.FAILED and _labels(gate)["clause"] == ["SIP-WS-1"]
