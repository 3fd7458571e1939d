"""Observations of [unspecified] answers and hardening findings, and the pins that turn them into
failures (the target file's ``[pins]`` and ``[findings] fail_on``)."""

from __future__ import annotations

import json
from typing import Any, Protocol

from ..contract import CLAUSES, ClauseId
from ..redact import Redactor
from ..target import Target
from .checker import ClauseFailure

SEVERITIES = ("info", "low", "medium", "high", "critical")


class RecordSink(Protocol):
    """Where a recorder puts what it records (the session; a stand-in in unit tests)."""

    observations: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    redactor: Redactor


class Recorder:
    """Observations of [unspecified] answers and hardening findings, for the clause table.

    Both can turn into failures the target file asks for: a pin ``"<CLAUSE>.<what>"`` that the
    observed answer does not match, or a finding on a clause listed in ``[findings] fail_on``.
    """

    def __init__(self, state: RecordSink, target: Target, nodeid: str) -> None:
        self.state, self.target, self.nodeid = state, target, nodeid

    def _entry(self, clause_id: ClauseId, **fields: Any) -> dict[str, Any]:
        if clause_id not in CLAUSES:
            raise KeyError(f"unknown clause ID {clause_id!r}")
        return {"clause": str(clause_id), **fields, "check": self.nodeid}

    def observe(self, clause_id: ClauseId, what: str, value: Any) -> None:
        self.state.observations.append(self._entry(clause_id, what=what, value=self.state.redactor.data(value)))
        pin = self.target.pins.get(f"{clause_id}.{what}")
        if pin is None and "/" in what:  # "token/insert": a pin on "token" covers every acao
            pin = self.target.pins.get(f"{clause_id}.{what.split('/', 1)[0]}")
        if pin is not None and not pin_matches(pin, value):
            raise ClauseFailure(
                clause_id,
                self.state.redactor.text(
                    f"[{clause_id}] pinned answer not given: {what}\n"
                    f"  pinned:   {pin}\n  observed: {json.dumps(value, ensure_ascii=False)}"
                ),
            )

    def finding(self, clause_id: ClauseId, severity: str, text: str) -> None:
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}")
        shown = self.state.redactor.text(text)
        self.state.findings.append(self._entry(clause_id, severity=severity, text=shown))
        if clause_id in self.target.fail_on_findings:
            raise ClauseFailure(
                clause_id, f"[{clause_id}] finding ({severity}), failing as [findings] fail_on asks: {shown}"
            )


def pin_matches(pin: str, value: Any) -> bool:
    """A pin is JSON text or a bare string; it matches a value equal to either reading."""
    if isinstance(value, str) and pin == value:
        return True
    try:
        return bool(json.loads(pin) == value)
    except ValueError:
        return pin == json.dumps(value, ensure_ascii=False)
