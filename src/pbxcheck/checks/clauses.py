"""Clause bookkeeping: which clauses a check is marked with, its outcome per clause (passed, failed,
blocked by another clause, not applicable), the clause table with its gate. (Allure's labels are set
per clause as each result is written: ``allure_clauses``; JUnit's in ``junit_clauses``.)"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from .. import report
from ..contract import CLAUSES, ClauseId
from ..redact import Redactor
from .checker import Blocked, ClauseFailure, failed_clauses_of
from .junit_clauses import junit_properties
from .redaction import redact_report
from .session import CheckResult, Session

NOT_APPLICABLE = "not applicable: "
RUN_LAST = (ClauseId.AUTH_6,)  # bursts of wrong credentials may get our IP blocked: after every other check


_MARK = re.compile(r"""mark\.clause\(([^)]*)\)""")
_MARKED_ID = re.compile(r'"([A-Z0-9-]+)"|ClauseId\.([A-Z0-9_]+)')


def modules_marking(folder: Path, clauses: Iterable[str] | None = None) -> list[str]:
    """The ``test_*.py`` modules of ``folder`` holding a check marked with any of ``clauses`` (every
    module for None), read from the source without importing it. Marks are spelled ``"AUTH-2"`` or
    ``ClauseId.AUTH_2``; both are read, so a quality run never falls back to every module."""
    wanted = None if clauses is None else {str(c) for c in clauses}
    found = []
    for path in sorted(folder.glob("test_*.py")):
        marked = {
            quoted or member.replace("_", "-")
            for m in _MARK.finditer(path.read_text(encoding="utf-8"))
            for quoted, member in _MARKED_ID.findall(m.group(1))
        }
        if wanted is None or marked & wanted:
            found.append(path.name)
    return found


def marked_clauses(item: pytest.Item) -> tuple[str, ...]:
    ids: list[str] = []
    for mark in item.iter_markers("clause"):
        ids.extend(str(a) for a in mark.args)
    return tuple(dict.fromkeys(ids))


def take_items(state: Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every collected check with a clause marker gets a result (not-run until it reports); an
    unknown ID is a usage error."""
    marked = []
    for item in items:
        ids = marked_clauses(item)
        if not ids:
            continue
        marked.append(item)
        for cid in ids:
            if cid not in CLAUSES:
                raise pytest.UsageError(f"{item.nodeid}: unknown clause ID {cid!r} in @pytest.mark.clause")
        state.results[item.nodeid] = CheckResult(item.nodeid, ids)
    # --collect-only runs no check: it must not leave a clause report (of nothing) behind.
    state.active = bool(marked) and not config.option.collectonly
    items.sort(key=lambda it: any(c in marked_clauses(it) for c in RUN_LAST))


def count_report(state: Session, rep: pytest.TestReport) -> None:
    """The final report (after the xfail/xpass rewriting of pytest's skipping plugin, which runs
    after our makereport): redacted once more before junitxml and the terminal read it, then counted."""
    if state.target is not None:
        redact_report(rep, state.redactor)
    result = state.results.get(rep.nodeid)
    if result is None:
        return
    exc = state.raised.pop((rep.nodeid, rep.when), None)
    result.duration_s += rep.duration
    if rep.when == "call" or rep.outcome != "passed":
        if rep.outcome == "passed":
            if result.outcome == "not-run":
                result.outcome = "passed"
        elif rep.outcome == "skipped":
            if result.outcome in ("not-run", "passed"):
                if isinstance(exc, Blocked):
                    result.outcome = "blocked"
                    result.blocked_by = [exc.clause_id]
                else:
                    result.outcome = "xfailed" if hasattr(rep, "wasxfail") else "skipped"
                result.message = skip_reason(rep)
        else:
            result.outcome = "failed" if rep.when == "call" else "error"
            # no exception at all (an XPASS(strict)): the check failed every clause it is marked with
            failed = failed_clauses_of(exc, result.clauses) if exc is not None else list(result.clauses)
            result.failed_clauses = sorted(set(result.failed_clauses) | set(failed))
            text = state.redactor.text(rep.longreprtext)
            result.message = headline(exc, text, state.redactor)
            result.failure_file = state.write_failure(rep.nodeid, result.clauses, text)
    if rep.when == "teardown":  # the check's last report: junitxml reads its properties
        rep.user_properties += junit_properties(result)


def say_not_applicable(rep: pytest.TestReport, exc: BaseException | None) -> None:
    """A skipped clause check reads "not applicable: <reason>" in JUnit, Allure and the terminal."""
    lr = rep.longrepr
    if (
        isinstance(lr, tuple)
        and len(lr) == 3
        and not str(lr[2]).startswith(("Skipped: " + NOT_APPLICABLE, NOT_APPLICABLE))
    ):
        reason = str(lr[2]).removeprefix("Skipped: ")
        rep.longrepr = (lr[0], lr[1], "Skipped: " + NOT_APPLICABLE + reason)
    if isinstance(exc, pytest.skip.Exception) and not str(exc.msg or "").startswith(NOT_APPLICABLE):
        exc.msg = NOT_APPLICABLE + str(exc.msg or "")


def skip_reason(rep: pytest.TestReport) -> str:
    if hasattr(rep, "wasxfail"):
        return "expected to fail" + (f": {rep.wasxfail}" if rep.wasxfail else "")
    lr = rep.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2]).removeprefix("Skipped: ").removeprefix(NOT_APPLICABLE)
    return str(lr or "")


def headline(exc: BaseException | None, text: str, redactor: Redactor) -> str:
    """The line the clause table shows for a failed check."""
    if isinstance(exc, ClauseFailure):
        return redactor.text(exc.headline)
    if exc is not None:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return redactor.text(f"{type(exc).__name__}: {first}")
    lines = [ln for ln in text.splitlines() if ln.startswith("E ")]
    return lines[0][2:].strip() if lines else (text.strip().splitlines() or [""])[-1]


def clause_table(state: Session) -> dict[str, Any]:
    """The clause table of the run (with the target's gate, ``[gate] require``)."""
    return report.clause_table(
        results=[vars(r) for r in state.results.values()],
        observations=state.observations,
        findings=state.findings,
        target_name=state.target.name if state.target else None,
        insecure=bool(state.target and state.target.insecure),
        require=state.target.gate_require if state.target else (),
    )
