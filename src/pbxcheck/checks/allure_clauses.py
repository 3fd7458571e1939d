"""Allure results per clause, agreeing with ``clauses.json``.

allure-pytest writes one result per check; a check marked with several clauses would then count its
failure under each of them. Just before each result is written it is split into one result per
clause the check is charged with (the same per-clause outcome ``clauses.json`` uses): the failure
stays under the clause it failed, the check's other clauses get a *skipped* "blocked by" result, and
a check's findings and [unspecified] observations show as labels, tags and the status message of its
result under that clause. The labels (parentSuite = the contract section, suite = clause ID and its
summary) make Allure's tree group by clause (``allurerc.mjs`` at the repo root).

A check that records an observation or finding under a clause it does not check gets an *unknown*
result there (outcome ``observation``): the clause shows what was seen, without counting as checked.
"""

from __future__ import annotations

import copy
import hashlib
import time
import uuid
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import report
from ..contract import CLAUSES, ClauseId, ClauseKind
from ..redact import Redactor
from .checker import short
from .junit_clauses import gate_failures
from .redaction import register_allure_plugin

if TYPE_CHECKING:
    from .session import CheckResult, Session

CLAUSE = "clause"  # label: the clause ID of this result
OUTCOME = "outcome"  # label: what the check did for the clause (OUTCOMES)
FINDING = "finding"  # label, one per finding: its severity
UNSPECIFIED = "unspecified"  # label, one per observation: "observed <what>"
OBSERVATION = "observation"  # the outcome of a result that only records what a check saw
OUTCOMES = ("passed", "failed", report.BLOCKED, report.NOT_APPLICABLE, report.NOT_RUN, OBSERVATION)
SEVERITY_OF_KIND = {
    ClauseKind.AUTH: "blocker",
    ClauseKind.CONTRACT: "critical",
    ClauseKind.UNSPECIFIED: "normal",
    ClauseKind.HARDENING: "minor",
}
# allure-pytest's grouping labels (by file, by marker): replaced by the clause's own
REPLACED = {"parentSuite", "suite", "subSuite", "epic", "feature", "story", "severity", CLAUSE, OUTCOME}
TITLE_CHARS = 70  # a suite's name: the clause ID and its summary, cut here


@dataclass
class ClauseView:
    """One check under one clause: its outcome there, why (blocked / not applicable), and what it
    recorded for that clause."""

    clause: str
    outcome: str
    reason: str = ""
    blocked_by: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)


def clause_views(
    check: CheckResult, observations: Iterable[dict[str, Any]], findings: Iterable[dict[str, Any]]
) -> list[ClauseView]:
    """The check under every clause it is charged with (marked, or failed though unmarked), as the
    clause table sees it, then under each clause it only recorded something for."""
    mine_obs = [o for o in observations if o["check"] == check.nodeid]
    mine_fin = [f for f in findings if f["check"] == check.nodeid]
    views = []
    for cid in dict.fromkeys([*check.clauses, *check.failed_clauses]):
        entry = report._check_entry(vars(check), cid)  # the clause table's own reading
        views.append(ClauseView(cid, entry["outcome"], str(entry.get("reason", "")), list(entry.get("blocked_by", []))))
    charged = {v.clause for v in views}
    for cid in dict.fromkeys(str(r["clause"]) for r in [*mine_obs, *mine_fin]):
        if cid not in charged:
            views.append(ClauseView(cid, OBSERVATION))
    for v in views:
        v.observations = [o for o in mine_obs if o["clause"] == v.clause]
        v.findings = [f for f in mine_fin if f["clause"] == v.clause]
    return views


def suite_title(cid: str) -> str:
    text = f"{cid} {CLAUSES[cid].summary}"
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def labels_of(view: ClauseView) -> list[tuple[str, str]]:
    """The labels that place a result under its clause and say what it found there."""
    c = CLAUSES[view.clause]
    title = suite_title(view.clause)
    labels = [
        ("parentSuite", c.section),
        ("suite", title),
        ("epic", c.section),
        ("feature", title),
        ("severity", SEVERITY_OF_KIND[c.kind]),
        (CLAUSE, view.clause),
        (OUTCOME, view.outcome),
    ]
    labels += [(FINDING, s) for s in dict.fromkeys(str(f["severity"]) for f in view.findings)]
    labels += [(UNSPECIFIED, f"observed {w}") for w in dict.fromkeys(str(o["what"]) for o in view.observations)]
    labels += [("tag", f"finding ({s})") for s in dict.fromkeys(str(f["severity"]) for f in view.findings)]
    if view.observations:
        labels.append(("tag", "unspecified: observed"))
    if view.outcome == OBSERVATION:
        labels.append(("tag", "observation only"))
    return labels


def notes_of(view: ClauseView, redactor: Redactor) -> list[str]:
    """The status message lines of a finding or an observed [unspecified] answer."""
    lines = [f"finding ({f['severity']}): {f['text']}" for f in view.findings]
    lines += [f"unspecified: observed {o['what']} = {short(o['value'], 200)}" for o in view.observations]
    return [redactor.text(line) for line in lines]


def per_clause(result: Any, views: list[ClauseView], redactor: Redactor) -> list[Any]:
    """``result`` (an allure-commons TestResult) as one result per view: the first one failed (else
    the first) is ``result`` itself, changed in place (the containers of its fixtures name its UUID);
    the others are copies with their own UUID. Every history ID names its clause, so Allure never
    takes two clauses' results for retries of one test."""
    from allure_commons.model2 import Label, Status, StatusDetails

    if not views:
        return [result]
    first = next((v for v in views if v.outcome == "failed"), views[0])
    original = copy.deepcopy(result)
    out = []
    for view in [first, *(v for v in views if v is not first)]:
        r = result if view is first else copy.deepcopy(original)
        if view is not first:
            r.uuid = str(uuid.uuid4())
        r.historyId = _md5(str(original.historyId), view.clause)
        r.testCaseId = _md5(str(original.testCaseId), view.clause)
        r.labels = [lb for lb in r.labels if lb.name not in REPLACED and not _ours(lb)]
        r.labels += [Label(name=n, value=v) for n, v in labels_of(view)]
        if view.outcome == report.BLOCKED and original.status in (Status.FAILED, Status.BROKEN):
            # the check failed under another clause and stopped before it finished with this one
            r.status = Status.SKIPPED
            r.statusDetails = StatusDetails(message=f"blocked by {', '.join(view.blocked_by)}: {view.reason}")
        elif view.outcome == OBSERVATION:
            r.status = Status.UNKNOWN
            r.statusDetails = StatusDetails(
                message=f"recorded by a check of {', '.join(v.clause for v in views if v.outcome != OBSERVATION)}"
            )
        notes = notes_of(view, redactor)
        if notes:
            details = r.statusDetails or StatusDetails()
            details.message = "\n".join([*notes, *([details.message] if details.message else [])])
            r.statusDetails = details
        out.append(r)
    return out


def _md5(*parts: str) -> str:
    return hashlib.md5("".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()


def _ours(label: Any) -> bool:
    return label.name in (FINDING, UNSPECIFIED) or (
        label.name == "tag"
        and (str(label.value).startswith(("finding (", "unspecified: ")) or label.value == "observation only")
    )


def gate_result(cid: str, message: str) -> Any:
    """A failed result for a clause the target's ``[gate] require`` needed but no check checked, so
    Allure fails it as clauses.json does."""
    from allure_commons.model2 import Label, Status, StatusDetails, TestResult

    view = ClauseView(cid, "failed")
    at = int(time.time() * 1000)
    return TestResult(
        name=f"[gate] require {cid}",
        fullName=f"pbxcheck.gate#{cid}",
        uuid=str(uuid.uuid4()),
        historyId=_md5("pbxcheck.gate", cid),
        testCaseId=_md5("pbxcheck.gate", cid),
        status=Status.FAILED,
        statusDetails=StatusDetails(message=message),
        labels=[Label(name=n, value=v) for n, v in labels_of(view)],
        start=at,
        stop=at,
    )


def report_gate(table: dict[str, Any]) -> None:
    """Allure results for the clauses the gate failed (a failure with no check behind it)."""
    try:
        from allure_commons import plugin_manager
    except ImportError:
        return
    for cid, message in gate_failures(table):
        plugin_manager.hook.report_result(result=gate_result(ClauseId(cid), message))


class ClauseSplitter:
    """An allure-commons plugin: each result, before the file logger writes it, as one per clause."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def report_result(self, result: Any) -> None:
        if any(lb.name == CLAUSE for lb in result.labels):  # one of ours (a copy, a gate result)
            return
        s = self.session
        check = s.results.get(s.current or "")
        if check is None:
            return
        from allure_commons import plugin_manager

        views = clause_views(check, s.observations, s.findings)
        for r in per_clause(result, views, s.redactor)[1:]:
            plugin_manager.hook.report_result(result=r)


try:  # run before the file logger writes the result
    from allure_commons import hookimpl as _allure_hookimpl

    ClauseSplitter.report_result = _allure_hookimpl(tryfirst=True)(ClauseSplitter.report_result)  # type: ignore[method-assign]
except ImportError:  # allure-pytest is a dependency; without it there is nothing to split
    pass


def split_allure_results(stack: ExitStack, session: Session) -> None:
    register_allure_plugin(stack, ClauseSplitter(session), "pbxcheck-allure-clauses")
