"""The per-run state of the checks: the target (loaded once), the redactor, the results per check,
what the recorder collected, the clients whose exchanges go into a failure file."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .. import report
from ..client import ApiClient, Exchange
from ..redact import Redactor
from ..target import Target, load_target
from .allure_clauses import split_allure_results
from .failure import set_active_redactor
from .redaction import redact_allure, redact_terminal

FAILURE_EXCHANGES = 12  # the last N exchanges of a failed check go into its failure file


@dataclass
class CheckResult:
    nodeid: str
    clauses: tuple[str, ...]
    outcome: str = "not-run"  # passed | failed | error | skipped | xfailed | blocked | not-run
    failed_clauses: list[str] = field(default_factory=list)
    blocked_by: list[str] = field(default_factory=list)
    message: str = ""
    failure_file: str | None = None
    duration_s: float = 0.0


@dataclass
class Session:
    config: pytest.Config
    reports_dir: Path
    target_path: str | None
    faults: list[str]
    active: bool = False  # some collected item carries a clause marker
    target: Target | None = None
    redactor: Redactor = field(default_factory=lambda: Redactor(()))
    stack: ExitStack = field(default_factory=ExitStack)
    results: dict[str, CheckResult] = field(default_factory=dict)
    observations: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    exchanges: dict[str, list[tuple[ApiClient, int]]] = field(default_factory=dict)
    table: dict[str, Any] | None = None
    raised: dict[tuple[str, str], BaseException | None] = field(default_factory=dict)  # (nodeid, when)
    current: str | None = None  # the check running (allure-pytest writes its result before the next starts)

    def load(self) -> Target:
        """The target: --target's file, or (the harness's own tests running pytest directly) the
        embedded central, started by the very function ``pbxcheck run`` uses."""
        if self.target is not None:
            return self.target
        if self.target_path:
            self.target = load_target(self.target_path)
        else:
            from ..runner import start_central

            self.target = start_central(self.stack, self.faults)[0]
        self.redactor = Redactor(self.target.secrets)
        set_active_redactor(self.redactor)
        redact_terminal(self.config, self.redactor)
        redact_allure(self.stack, self.redactor)
        split_allure_results(self.stack, self)
        return self.target

    def watch(self, nodeid: str, client: ApiClient) -> ApiClient:
        """Keep ``client``'s exchanges for ``nodeid``'s failure file."""
        self.exchanges.setdefault(nodeid, []).append((client, 0))
        return client

    def exchanges_of(self, nodeid: str) -> list[Exchange]:
        out: list[Exchange] = []
        for client, start in self.exchanges.get(nodeid, []):
            out.extend(client.exchanges[start:])
        return out

    def write_failure(self, nodeid: str, clauses: tuple[str, ...], text: str) -> str | None:
        """reports/failures/<check>.txt: the failure text and the check's last exchanges."""
        if self.target is None:
            return None
        t = self.target
        exchanges = self.exchanges_of(nodeid)[-FAILURE_EXCHANGES:]
        described = [ex.describe(self.redactor, insecure=t.insecure, ca_file=t.ca_file) for ex in exchanges]
        return report.write_failure(self.reports_dir, nodeid, clauses, text, described, self.redactor)


STATE_KEY = pytest.StashKey[Session]()


def state(config: pytest.Config) -> Session:
    return config.stash[STATE_KEY]
