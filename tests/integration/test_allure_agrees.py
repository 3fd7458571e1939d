"""Allure and JUnit agree with clauses.json on every clause: a run with one fault on (ignore-token
breaks AUTH-2 and AUTH-3; its checks marked AUTH-2 *and* AUTH-5 fail under AUTH-2 only) and a clean
run (findings, observed [unspecified] answers). Each clause's verdict is rebuilt from the Allure
results' labels and statuses, as Allure's tree groups them, and from JUnit's properties, then
compared with clauses.json's. No Allure CLI is run (no network): the results are read as written.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clause_verdicts import agree, labels

from pbxcheck import report, runner
from pbxcheck.bundled import bundled_dir
from pbxcheck.central.faults import HTTP_FAULTS
from pbxcheck.checks.clauses import modules_marking
from pbxcheck.contract import CLAUSES

pytestmark = pytest.mark.slow

FAULT = "ignore-token"


@dataclass
class Run:
    code: int
    output: str
    table: dict[str, Any]
    allure: list[dict[str, Any]]
    junit: ET.Element

    @property
    def status(self) -> dict[str, str]:
        return {cid: row["status"] for cid, row in self.table["clauses"].items()}


def _run(reports: Path, faults: list[str], paths: list[str] | None) -> Run:
    out = io.StringIO()
    code = runner.run(None, str(reports), faults=faults, paths=paths, out=out)
    results = [json.loads(p.read_text(encoding="utf-8")) for p in (reports / "allure-results").glob("*-result.json")]
    table = json.loads((reports / report.CLAUSES_JSON).read_text(encoding="utf-8"))
    return Run(code, out.getvalue(), table, results, ET.parse(reports / "junit.xml").getroot())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Run]:
    """``runs("fault")`` / ``runs("clean")``: each run once for the module, when first asked for."""
    root = tmp_path_factory.mktemp("allure-agrees")
    done: dict[str, Run] = {}

    def get(name: str) -> Run:
        if name not in done:
            if name == "fault":
                paths = modules_marking(bundled_dir("suites"), HTTP_FAULTS[FAULT].clauses)
                done[name] = _run(root / name, [FAULT], paths)
            else:
                done[name] = _run(root / name, [], None)
        return done[name]

    return get


@pytest.mark.parametrize("name", ["fault", "clean"])
def test_allure_and_junit_agree_with_clauses_json_on_every_clause(runs: Callable[[str], Run], name: str) -> None:
    run = runs(name)
    assert run.code == (1 if name == "fault" else 0), run.output[-3000:]
    assert agree(run.table, run.allure, run.junit) == {}  # clause -> (clauses.json, Allure, JUnit)


@pytest.mark.parametrize("name", ["fault", "clean"])
def test_junit_names_its_clauses(runs: Callable[[str], Run], name: str) -> None:
    run = runs(name)
    for case in run.junit.iter("testcase"):
        ids = [p.get("value") for p in case.iter("property") if p.get("name") == "clause"]
        assert ids and case.get("name", "").startswith(f"[{' '.join(str(i) for i in ids)}] "), case.get("name")
        outcomes = {p.get("name") for p in case.iter("property") if str(p.get("name")).startswith("clause.")}
        assert outcomes == {f"clause.{i}" for i in ids}


def test_the_tree_is_by_section_and_clause(runs: Callable[[str], Run]) -> None:
    """Every result sits under its clause (suite) inside the clause's section (parentSuite), never
    under allure-pytest's default by-file suites; each clause's results have their own history IDs."""
    run = runs("fault")
    for r in run.allure:
        lb = labels(r)
        cid = lb["clause"][0]
        assert lb["parentSuite"] == [CLAUSES[cid].section], r["name"]
        assert len(lb["suite"]) == 1 and lb["suite"][0].startswith(cid + " "), r["name"]
        assert "subSuite" not in lb and "story" not in lb and not any(s.startswith("test_") for s in lb["suite"])
    keys = [(r["historyId"], labels(r)["clause"][0]) for r in run.allure]
    assert len({h for h, _ in keys}) == len(keys)


def test_a_failure_counts_only_under_the_clause_it_failed(runs: Callable[[str], Run]) -> None:
    """ignore-token fails AUTH-2; the checks marked AUTH-2 and AUTH-5 that failed are, in Allure,
    failed under AUTH-2 and blocked (skipped, "blocked by AUTH-2") under AUTH-5, which passed."""
    run = runs("fault")
    assert run.status["AUTH-2"] == report.FAILED and run.status["AUTH-5"] == report.PASSED
    by_check: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in run.allure:
        by_check.setdefault((r["fullName"], r["name"]), {})[labels(r)["clause"][0]] = r
    split = [c for c in by_check.values() if {"AUTH-2", "AUTH-5"} <= set(c) and c["AUTH-2"]["status"] == "failed"]
    assert split, "no check marked AUTH-2 and AUTH-5 failed under AUTH-2"
    for check in split:
        assert check["AUTH-5"]["status"] == "skipped" and labels(check["AUTH-5"])["outcome"] == ["blocked"]
        assert check["AUTH-5"]["statusDetails"]["message"].startswith("blocked by AUTH-2: ")


def test_findings_and_observations_are_visible(runs: Callable[[str], Run]) -> None:
    """The clean run's findings and observed [unspecified] answers are tagged and said in Allure,
    not plain passes: every finding of clauses.json is a "finding (<severity>)" tag of a result of
    its clause, every observation an "unspecified: observed" one."""
    run = runs("clean")
    counts = run.table["counts"]
    assert counts[report.FINDING] and counts[report.UNSPECIFIED_OBSERVED]
    tags: dict[str, set[str]] = {}
    messages: dict[str, list[str]] = {}
    for r in run.allure:
        cid = labels(r)["clause"][0]
        tags.setdefault(cid, set()).update(labels(r).get("tag", []))
        messages.setdefault(cid, []).append((r.get("statusDetails") or {}).get("message") or "")
    for cid, row in run.table["clauses"].items():
        for f in row["findings"]:
            assert f"finding ({f['severity']})" in tags[cid], cid
            assert any(f"finding ({f['severity']}): {f['text']}" in m for m in messages[cid]), cid
        if row["observations"]:
            assert "unspecified: observed" in tags[cid], cid
            assert any(m.startswith("unspecified: observed ") or "\nunspecified: observed " in m for m in messages[cid])


def test_allurerc_groups_by_the_labels_the_results_carry() -> None:
    """The Allure 3 config at the repo root groups the tree by labels every result has."""
    import re

    config = (Path(__file__).resolve().parents[2] / "allurerc.mjs").read_text(encoding="utf-8")
    group_by = re.search(r"groupBy: \[([^\]]*)\]", config)
    assert group_by is not None
    assert re.findall(r'"(\w+)"', group_by.group(1)) == ["parentSuite", "suite"]
