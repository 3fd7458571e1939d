"""The pytest hooks behind ``pbxcheck run`` (the ``pytest11`` entry point ``pbxcheck``).

It loads in *every* pytest run of an environment where pbxcheck is installed, the harness's own
``tests/`` included, so it does nothing on its own: the target is loaded when a check asks for the
``target`` fixture (or --target is given), and the clause reports are written only when at least one
collected item carries a ``clause`` marker.

Nothing in the reporting path may crash the run: every report pytest makes keeps the type of
``longrepr`` pytest and its plugins expect, with every secret and every 6+-character fragment of one
cut out of its text (``redaction``). The state lives in ``session``, the outcomes per clause in
``clauses``, the fixtures in ``fixtures``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .. import report
from ..errors import TargetError
from . import fixtures, profiles
from .allure_clauses import report_gate
from .checker import Blocked
from .clauses import clause_table, count_report, say_not_applicable, take_items
from .failure import active_redactor, set_active_redactor
from .junit_clauses import gate_failures, name_testcases
from .redaction import redact_exception, redact_report
from .session import STATE_KEY, Session, state


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pbxcheck", "pbxcheck conformance checks")
    group.addoption(
        "--target",
        dest="pbx_target",
        default=None,
        metavar="FILE",
        help="target TOML file; without it the embedded reference central is started",
    )
    group.addoption(
        "--central-fault",
        dest="pbx_faults",
        action="append",
        default=[],
        metavar="NAME",
        help="start the embedded central with this fault switch (repeatable; not with --target)",
    )
    group.addoption(
        "--reports",
        dest="pbx_reports",
        default="reports",
        metavar="DIR",
        help="where clauses.json, clauses.md and failures/ go (default: reports)",
    )


@pytest.hookimpl(trylast=True)  # after the terminal reporter exists, so its output can be redacted
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clause(*ids): the contract clause IDs a check verifies")
    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, "pbxcheck-fixtures")
    target_path = config.getoption("pbx_target")
    faults = list(config.getoption("pbx_faults") or [])
    if target_path and faults:
        raise pytest.UsageError("--central-fault applies only to the embedded central, not with --target")
    if faults:
        from ..central.faults import validate

        try:
            validate(faults)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    session = Session(
        config=config, reports_dir=Path(config.getoption("pbx_reports")), target_path=target_path, faults=faults
    )
    config.stash[STATE_KEY] = session
    config.pluginmanager.register(_ReportCounter(session), "pbxcheck-report-counter")
    if target_path:
        try:  # a bad target file is one clear line, before any check runs
            session.load()
        except TargetError as exc:
            raise pytest.UsageError(str(exc)) from None
    profiles.load_from_environment(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(STATE_KEY, None)
    if session is None:
        return
    session.stack.close()
    if active_redactor() is session.redactor:  # a later session in this process starts clean
        set_active_redactor(None)
    if session.active and session.target is not None:
        # junitxml writes its file in pytest_sessionfinish and allure writes as it goes: both are done now.
        xmlpath = getattr(config.option, "xmlpath", None)
        if xmlpath:
            name_testcases(Path(xmlpath), gate_failures(session.table))
        report.redact_tree(session.reports_dir, session.redactor)


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = config.stash.get(STATE_KEY, None)
    if session is None or session.target is None:
        return []
    t = session.target
    tls = "TLS verification OFF (insecure = true)" if t.insecure else "TLS verified"
    return [f"pbxcheck target: {t.name} {t.api_url} ({tls})"]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    take_items(state(config), config, items)


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # trylast: as the innermost wrapper this runs first after the report exists, so allure-pytest
    # (which reads the report and call.excinfo in its own wrapper) sees the redacted text.
    outcome = yield
    rep: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    session = state(item.config)
    exc = call.excinfo.value if call.excinfo is not None else None
    if item.nodeid in session.results:
        session.raised[(item.nodeid, rep.when)] = exc
        if rep.skipped and isinstance(exc, Blocked) and isinstance(rep.longrepr, tuple):
            # pytest names a Skipped subclass by its module path; the reason alone reads better
            rep.longrepr = (rep.longrepr[0], rep.longrepr[1], f"Skipped: {exc.msg}")
        elif rep.skipped:
            say_not_applicable(rep, exc)
    if session.target is not None:
        redact_report(rep, session.redactor)
        if exc is not None:
            redact_exception(exc, session.redactor)  # allure-pytest reads call.excinfo.exconly()


class _ReportCounter:
    """pytest_runtest_logreport gets no config: this per-session plugin object carries the state."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.session.current = nodeid  # whose Allure result comes next

    @pytest.hookimpl(tryfirst=True)  # before junitxml reads the report (its clause properties)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        count_report(self.session, report)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = state(session.config)
    if not run.active:
        return
    run.table = clause_table(run)
    report.write_clause_reports(run.reports_dir, run.table, run.redactor)
    if run.target is not None:
        report_gate(run.table)  # a clause [gate] require failed has no check: Allure gets one


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    run = config.stash.get(STATE_KEY, None)
    if run is None or run.table is None:
        return
    width = getattr(terminalreporter, "_tw", None)
    text = report.render_summary(run.table, width=getattr(width, "fullwidth", 100))
    terminalreporter.write(run.redactor.text(text))
    terminalreporter.write_line(f"clause reports: {run.reports_dir / 'clauses.md'}")
