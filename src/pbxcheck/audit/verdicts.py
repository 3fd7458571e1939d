"""One verdict per client-side clause, and what the judges share: the audit's evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import report
from ..contract import ClauseId
from .command import CommandRun
from .recorder import TLS, Exchange

NORMAL = "normal"
IMPOSTOR_PHASE = "impostor"
CHAOS_PREFIX = "chaos-"


@dataclass
class Failure:
    check: str  # where: "<phase>/<acao>" or "<phase>"
    message: str  # one line; the same problem in two places reads the same (the certificate groups them)
    exchanges: list[Exchange] = field(default_factory=list)  # the requests that show it


@dataclass
class ClauseVerdict:
    clause: ClauseId
    checked: list[str] = field(default_factory=list)  # the checks (phases, calls) that exercised it
    failures: list[Failure] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)  # named ones: "AMB-3: `inicio` instead of `datainicial`"
    observations: list[tuple[str, Any]] = field(default_factory=list)
    not_applicable: str = ""  # why the client never exercised it

    @property
    def status(self) -> str:
        if self.failures:
            return report.FAILED
        if not self.checked:
            return report.NOT_APPLICABLE
        return report.PASSED

    def fail(self, check: str, message: str, *exchanges: Exchange) -> None:
        """One failure per (check, message): the same problem again adds its requests to it."""
        same = next((f for f in self.failures if f.check == check and f.message == message), None)
        if same is None:
            self.failures.append(Failure(check, message, list(exchanges)))
        else:
            same.exchanges += exchanges

    def deviation(self, name: str) -> None:
        if name not in self.deviations:
            self.deviations.append(name)

    def line(self) -> str:
        """The verdict line the terminal prints for this clause."""
        head = f"{self.clause.value:9} {self.status.replace('-', ' ')}"
        if self.failures:
            distinct = list(dict.fromkeys(f.message for f in self.failures))
            tail = "; ".join(distinct[:3]) + (f"; and {len(distinct) - 3} more" if len(distinct) > 3 else "")
            return f"{head}: {tail}"
        if self.status == report.NOT_APPLICABLE:
            return f"{head}: {self.not_applicable}"
        return head


@dataclass
class Evidence:
    """What the audit saw: the runs of the command and every request, by phase."""

    runs: dict[str, CommandRun]
    exchanges: list[Exchange]  # the audit central's (HTTPS and plain HTTP)
    impostor: list[Exchange] = field(default_factory=list)
    impostor_connections: int = 0
    impostor_handshakes: int = 0
    impostor_refusals: list[str] = field(default_factory=list)

    def of(self, phase: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.phase == phase]

    def api_calls(self) -> list[Exchange]:
        """HTTPS requests of the phases that talked to the audit central (normal and chaos)."""
        return [e for e in self.exchanges if e.port == TLS and e.phase != IMPOSTOR_PHASE]

    def chaos_phases(self) -> list[str]:
        return [p for p in self.runs if p.startswith(CHAOS_PREFIX)]


def check_name(ex: Exchange) -> str:
    return f"{ex.phase}/{ex.acao or ex.line()}"
