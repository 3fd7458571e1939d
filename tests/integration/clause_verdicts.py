"""Each clause's verdict rebuilt from what Allure and JUnit were given (for the tests that compare
them with clauses.json): from the Allure results' ``clause``/``outcome``/``finding``/``unspecified``
labels and statuses, as Allure's tree groups them, and from JUnit's ``clause.<ID>`` properties."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from pbxcheck import report
from pbxcheck.contract import CLAUSES


def labels(result: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for label in result.get("labels", []):
        out.setdefault(label["name"], []).append(label["value"])
    return out


def allure_verdicts(results: list[dict[str, Any]]) -> dict[str, str]:
    """Each clause's verdict from the results grouped under it: failed if any is failed or broken;
    else, with no passed result, blocked / not applicable by the ``outcome`` labels; else a finding
    (hardening clause) or an observed answer (an [unspecified] one) when a result's labels say so."""
    by_clause: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        ids = labels(r).get("clause", [])
        assert len(ids) == 1, f"{r['name']}: clause labels {ids}"
        by_clause.setdefault(ids[0], []).append(r)
    verdicts = {}
    for cid, rs in by_clause.items():
        statuses = {r["status"] for r in rs}
        outcomes = {o for r in rs for o in labels(r).get("outcome", [])}
        if statuses & {"failed", "broken"}:
            verdict = report.FAILED
        elif "passed" not in statuses:
            verdict = next((s for s in (report.BLOCKED, report.NOT_APPLICABLE) if s in outcomes), report.NOT_RUN)
        elif CLAUSES[cid].hardening and any(labels(r).get("finding") for r in rs):
            verdict = report.FINDING
        elif CLAUSES[cid].unspecified and any(labels(r).get("unspecified") for r in rs):
            verdict = report.UNSPECIFIED_OBSERVED
        else:
            verdict = report.PASSED
        verdicts[cid] = verdict
    return verdicts


def junit_verdicts(suite: ET.Element) -> dict[str, str]:
    """Each clause's verdict from the testcases' ``clause.<ID>`` properties (JUnit has no findings)."""
    seen: dict[str, set[str]] = {}
    for case in suite.iter("testcase"):
        for p in case.iter("property"):
            name = p.get("name", "")
            if name.startswith("clause."):
                seen.setdefault(name.removeprefix("clause."), set()).add(p.get("value", "").split(" by ")[0])
    verdicts = {}
    for cid, outcomes in seen.items():
        order = ("failed", "passed", report.BLOCKED, report.NOT_APPLICABLE)
        verdicts[cid] = next((o for o in order if o in outcomes), report.NOT_RUN)
    return verdicts


def agree(table: dict[str, Any], allure: list[dict[str, Any]], junit: ET.Element) -> dict[str, tuple[str, str, str]]:
    """The clauses on which Allure or JUnit disagree with clauses.json: clause -> (json, allure, junit).
    JUnit has no findings nor observations: there those verdicts read *passed*."""
    plain = {report.FINDING: report.PASSED, report.UNSPECIFIED_OBSERVED: report.PASSED}
    by_allure, by_junit = allure_verdicts(allure), junit_verdicts(junit)
    out = {}
    for cid, row in table["clauses"].items():
        a, j = by_allure.get(cid, report.NOT_RUN), by_junit.get(cid, report.NOT_RUN)
        if a != row["status"] or j != plain.get(row["status"], row["status"]):
            out[cid] = (row["status"], a, j)
    unknown = (set(by_allure) | set(by_junit)) - set(table["clauses"])
    out.update({cid: ("absent", by_allure.get(cid, "-"), by_junit.get(cid, "-")) for cid in unknown})
    return out
