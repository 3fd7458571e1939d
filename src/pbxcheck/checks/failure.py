"""One failure formatter for HTTP and SIP checks.

A failed check reads the same whichever side it probed: the clause (ID, summary, the document's
section), what went wrong, then what was sent and what came back with a way to reproduce it: the
request, the answer and a curl line for HTTP (``Exchange.describe``), the ladder and the raw
messages for SIP (``sipsession.SipSession``). Every text goes through the run's redactor here, whoever
built it, before pytest formats anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..contract import CLAUSES, ClauseId
from ..redact import Redactor

_NO_SECRETS = Redactor(())
_active: Redactor = _NO_SECRETS


def active_redactor() -> Redactor:
    """The redactor of the running session (one with no secrets outside a session)."""
    return _active


def set_active_redactor(redactor: Redactor | None) -> None:
    """Set by the session once it knows the target's secrets; ``None`` when the session ends."""
    global _active
    _active = redactor if redactor is not None else _NO_SECRETS


def format_failure(
    clause_id: ClauseId, what: str, sections: Iterable[str] = (), *, redactor: Redactor | None = None
) -> str:
    """The text of a failed expectation: ``[ID] summary``, the section, what went wrong, then each
    non-empty section (exchanges with their curl lines; a SIP ladder, notes, raw messages)."""
    c = CLAUSES[clause_id]
    parts = [f"[{clause_id}] {c.summary}\n  ({c.section})\n\n  {what}", *(s for s in sections if s)]
    return (redactor or _active).text("\n\n".join(parts))


def failure_headline(clause_id: ClauseId, what: str, *, redactor: Redactor | None = None) -> str:
    """The one line the clause table shows: what went wrong, not the clause's summary."""
    said = (what.strip().splitlines() or [CLAUSES[clause_id].summary])[0]
    return (redactor or _active).text(f"[{clause_id}] {said}")
