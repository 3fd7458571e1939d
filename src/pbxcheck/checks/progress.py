"""Progress by clause for ``pbxcheck run``: a pytest plugin (``-p pbxcheck.checks.progress``) that
writes one JSON line per event to the file descriptor given by ``--progress-fd``.

The runner reads these lines to draw its own display (clauses done, the clause being checked,
failures so far) while pytest's stream goes to reports/pytest.log: parsing pytest's terminal output
instead would tie the display to its format and to -q/-v. Events, in order:

- ``{"event": "collected", "checks": {nodeid: [clause IDs]}}`` once the checks are known;
- ``{"event": "start", "check": nodeid}`` as each check begins;
- ``{"event": "done", "check": nodeid, "outcome": ..., "failed": [clause IDs]}`` once its teardown
  is over (``outcome`` as in clauses.json's checks: passed, failed, error, skipped, xfailed,
  blocked; ``failed`` the clauses it failed, which may include clauses it is not marked with).

Only checks with a ``clause`` marker are reported. The display is a convenience: a write that fails
(the runner gone) is dropped and never breaks the run.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import IO, Any

import pytest

from .session import STATE_KEY

COLLECTED, START, DONE = "collected", "start", "done"
FAILED_OUTCOMES = ("failed", "error")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("pbxcheck").addoption(
        "--progress-fd",
        dest="pbx_progress_fd",
        type=int,
        default=None,
        metavar="FD",
        help="write one JSON line per finished check to this file descriptor (pbxcheck run's display)",
    )


def pytest_configure(config: pytest.Config) -> None:
    fd = config.getoption("pbx_progress_fd")
    if fd is not None:
        config.pluginmanager.register(ProgressWriter(config, fd), "pbxcheck-progress")


class ProgressWriter:
    def __init__(self, config: pytest.Config, fd: int) -> None:
        self.config = config
        # Not inherited: a peer pytest starts (kamailio, baresip) holding it would keep the
        # runner's read end from seeing the end of the stream.
        os.set_inheritable(fd, False)
        self.stream: IO[str] | None = os.fdopen(fd, "w", encoding="utf-8", buffering=1)

    def _send(self, event: dict[str, Any]) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(json.dumps(event, ensure_ascii=False) + "\n")
        except (OSError, ValueError):  # the runner stopped reading: no display, the run goes on
            self._close()

    def _close(self) -> None:
        if self.stream is not None:
            with contextlib.suppress(OSError, ValueError):
                self.stream.close()
            self.stream = None

    def _results(self) -> dict[str, Any]:
        session = self.config.stash.get(STATE_KEY, None)
        return session.results if session is not None else {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        results = self._results()  # session.items: after -k and the run-last ordering
        checks = {it.nodeid: list(results[it.nodeid].clauses) for it in session.items if it.nodeid in results}
        self._send({"event": COLLECTED, "checks": checks})

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        if nodeid in self._results():
            self._send({"event": START, "check": nodeid})

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        result = self._results().get(nodeid)
        if result is None:
            return
        failed = list(result.failed_clauses or result.clauses) if result.outcome in FAILED_OUTCOMES else []
        self._send({"event": DONE, "check": nodeid, "outcome": result.outcome, "failed": failed})

    def pytest_unconfigure(self) -> None:
        self._close()
