"""How a check fails: :class:`ClauseFailure` (one clause's expectation not met), :func:`blocked_by`
(another clause's failure stops this check), and :class:`Checker`, the expectations the HTTP suites use.

A check carrying several clause markers that fails in any other way counts against all of them
(:func:`failed_clauses_of`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from ..client import Exchange
from ..contract import CLAUSES, STATUS, ClauseId
from ..redact import Redactor
from ..target import Target
from .failure import active_redactor, failure_headline, format_failure

if TYPE_CHECKING:
    from .recorder import Recorder


class ClauseFailure(AssertionError):
    """A failed expectation of one clause; the message is redacted here, whoever built it."""

    def __init__(self, clause_id: ClauseId, message: str, *, headline: str | None = None) -> None:
        self.clause_id = clause_id
        # the one line the clause table shows: what went wrong, not the clause's summary
        first = (message.strip().splitlines() or [str(clause_id)])[0]
        self.headline = active_redactor().text(headline or first)
        super().__init__(active_redactor().text(message))


class Blocked(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """A check that stopped because another clause (``clause_id``) failed first: a skip to pytest,
    JUnit and Allure ("blocked by C2C-1: ..."), *blocked* in the clause table."""

    def __init__(self, clause_id: ClauseId, why: str) -> None:
        if clause_id not in CLAUSES:
            raise KeyError(f"unknown clause ID {clause_id!r}")
        self.clause_id = clause_id
        super().__init__(active_redactor().text(f"blocked by {clause_id}: {why}"), _use_item_location=True)


def blocked_by(clause_id: ClauseId, why: str) -> NoReturn:
    """End the running check as *blocked by* ``clause_id``: a step it needs belongs to that clause
    and failed (a click-to-call whose C2C-1 answer is broken, a registrar that takes no password)."""
    __tracebackhide__ = True
    raise Blocked(clause_id, why)


def failed_clauses_of(exc: BaseException | None, marked: tuple[str, ...]) -> list[str]:
    """Which clauses an exception fails: the ones ClauseFailures name, else every marked clause."""
    if exc is None:
        return []
    found: list[str] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, ClauseFailure):
            found.append(e.clause_id)
        elif isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)

    walk(exc)
    if not found:
        return list(marked)
    return sorted(set(found))


class Checker:
    """Expectations that fail like a Schemathesis check: the clause, what was sent and got, a curl line."""

    def __init__(self, target: Target, redactor: Redactor, recorder: Recorder | None = None) -> None:
        self.target = target
        self.redactor = redactor
        self.recorder = recorder

    def describe(self, *exchanges: Exchange) -> str:
        return "\n\n".join(
            ex.describe(self.redactor, insecure=self.target.insecure, ca_file=self.target.ca_file) for ex in exchanges
        )

    def fail(self, clause_id: ClauseId, what: str, *exchanges: Exchange) -> NoReturn:
        __tracebackhide__ = True  # the failure shows at the check's line, not in here
        raise ClauseFailure(
            clause_id,
            format_failure(clause_id, what, [self.describe(*exchanges)], redactor=self.redactor),
            headline=failure_headline(clause_id, what, redactor=self.redactor),
        )

    def __call__(self, condition: object, clause_id: ClauseId, what: str, *exchanges: Exchange) -> None:
        __tracebackhide__ = True
        if not condition:
            self.fail(clause_id, what, *exchanges)

    def no_server_error(self, ex: Exchange, clause_id: ClauseId) -> None:
        __tracebackhide__ = True
        self(ex.status_code is not None and ex.status_code < 500, clause_id, f"server error: HTTP {ex.status_code}", ex)

    def value(self, ex: Exchange, clause_id: ClauseId) -> Any:
        """The parsed answer, failing the clause when there is none or it is a server error."""
        __tracebackhide__ = True
        self.no_server_error(ex, clause_id)
        if ex.answer is None:
            self.fail(clause_id, f"the answer is not JSON: {ex.parse_error}", ex)
        if ex.answer.lenient and self.recorder is not None:
            # AMB-5/AMB-6: read anyway, but the report says what had to be forgiven.
            self.recorder.observe(clause_id, "lenient_answer", "; ".join(ex.answer.lenient))
        return ex.answer.value

    def status(self, ex: Exchange, clause_id: ClauseId, text: str) -> None:
        """The answer is exactly ["Status", text]."""
        __tracebackhide__ = True
        got = self.value(ex, clause_id)
        expected = [STATUS, text]
        self(
            got == expected,
            clause_id,
            f"expected exactly {json.dumps(expected, ensure_ascii=False)}, got {short(got)}",
            ex,
        )

    def records(self, ex: Exchange, clause_id: ClauseId) -> list[dict[str, Any]]:
        """The answer is a JSON array of objects."""
        __tracebackhide__ = True
        got = self.value(ex, clause_id)
        self(
            isinstance(got, list) and all(isinstance(r, dict) for r in got),
            clause_id,
            f"expected a JSON array of records, got {short(got)}",
            ex,
        )
        return list(got)


def short(value: Any, limit: int = 300) -> str:
    """JSON text of ``value``, cut at ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"
