"""The pytest plugin behind ``pbxcheck run``: the target, the clients, clause bookkeeping, the reports.

It is registered as a ``pytest11`` entry point, so it loads in *every* pytest run of an environment
where pbxcheck is installed, the harness's own ``tests/`` included. It therefore does nothing on its
own: the central starts only when a check asks for the ``target`` fixture, and the clause reports
are written only when at least one collected item carries a ``clause`` marker.

Checks fail through :class:`ClauseFailure` (raised by the ``check`` fixture), which names the one
clause a failed expectation belongs to; a check carrying several clause markers that fails in any
other way counts against all of them. A check that cannot apply to the target skips (the clause is
then *not applicable*, with the reason); one that cannot go on because another clause failed calls
:func:`blocked_by` (the clause is then *blocked by* that one).

Nothing in the reporting path may crash the run: every report pytest makes (passed, failed, skipped
at setup or call, xfail, xpass, errors in setup or teardown) keeps the type of ``longrepr`` pytest
and its plugins (junitxml, allure-pytest, the terminal) expect, with every secret and every
6+-character fragment of one cut out of its text.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
import pytest
from _pytest._code.code import TerminalRepr
from hypothesis import HealthCheck, Phase, settings

from . import report
from .client import ApiClient, Exchange, ssl_context
from .contract import CLAUSES, STATUS, Clause
from .errors import TargetError
from .redact import Redactor
from .target import Target, load_target

# --- Hypothesis profiles --------------------------------------------------------------------------
# Registered at import time, because hypothesis's own plugin loads --hypothesis-profile during
# pytest_configure and the entry points are imported before that.
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture,
             HealthCheck.filter_too_much, HealthCheck.large_base_example]
# ci does not shrink: against a central every shrink step is a few HTTP calls on a growing campaign,
# and a conformance run needs "this failed, with this example", not the smallest example.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=8, stateful_step_count=8,
                          database=None, print_blob=False, suppress_health_check=_SUPPRESS,
                          phases=(Phase.explicit, Phase.reuse, Phase.generate))
settings.register_profile("thorough", deadline=None, max_examples=200, stateful_step_count=40,
                          database=None, suppress_health_check=_SUPPRESS)
PROFILE_ENV = "PBXCHECK_HYPOTHESIS_PROFILE"

_STATE_KEY = pytest.StashKey["_Session"]()
FAILURE_EXCHANGES = 12  # the last N exchanges of a failed check go into its failure file


# --- Failures that name their clause ---------------------------------------------------------------


# The redactor of the running session, so that failure texts are redacted where they are built,
# before pytest formats anything (ClauseFailure, blocked_by), whoever builds them.
_ACTIVE_REDACTOR: Redactor = Redactor(())


class ClauseFailure(AssertionError):
    """A failed expectation of one clause; the message is redacted here, whoever built it."""

    def __init__(self, clause_id: str, message: str, *, headline: str | None = None) -> None:
        self.clause_id = clause_id
        # the one line the clause table shows: what went wrong, not the clause's summary
        first = (message.strip().splitlines() or [clause_id])[0]
        self.headline = _ACTIVE_REDACTOR.text(headline or first)
        super().__init__(_ACTIVE_REDACTOR.text(message))


class Blocked(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """A check that stopped because another clause (``clause_id``) failed first: a skip to pytest,
    JUnit and Allure ("blocked by C2C-1: ..."), *blocked* in the clause table."""

    def __init__(self, clause_id: str, why: str) -> None:
        if clause_id not in CLAUSES:
            raise KeyError(f"unknown clause ID {clause_id!r}")
        self.clause_id = clause_id
        super().__init__(_ACTIVE_REDACTOR.text(f"blocked by {clause_id}: {why}"), _use_item_location=True)


def blocked_by(clause_id: str, why: str) -> NoReturn:
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


# --- Session state -----------------------------------------------------------------------------------


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
class _Session:
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

    def load(self) -> Target:
        if self.target is not None:
            return self.target
        if self.target_path:
            self.target = load_target(self.target_path)
        else:
            self.target = _start_embedded_central(self.stack, self.faults)
        global _ACTIVE_REDACTOR
        self.redactor = _ACTIVE_REDACTOR = Redactor(self.target.secrets)
        self._redact_terminal()
        self._redact_allure()
        return self.target

    def _redact_terminal(self) -> None:
        """Everything pytest writes to the terminal from now on goes through the redactor, its own
        lines included (a login such as "root" can sit in any path it prints)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        tw = getattr(reporter, "_tw", None)
        if tw is None or getattr(tw, "_pbxcheck_redacted", False):
            return
        write = tw.write
        redactor = self.redactor

        def redacted_write(msg: str, **markup: Any) -> None:
            write(redactor.text(msg), **markup)

        tw.write = redacted_write
        tw._pbxcheck_redacted = True


    def _redact_allure(self) -> None:
        """allure-pytest writes each result as the check ends, with texts it took from the exception
        itself (``call.excinfo.exconly()``) and from fixtures' errors: they are redacted just before
        it writes them, as pytest's own texts are (redact_tree, afterwards, spares IDs)."""
        try:
            import allure_commons
        except ImportError:
            return
        scrubber = _AllureScrubber(self.redactor)
        try:
            allure_commons.plugin_manager.register(scrubber, "pbxcheck-allure-scrubber")
        except ValueError:  # already registered (a pytest run inside a pytest run)
            return
        self.stack.callback(allure_commons.plugin_manager.unregister, scrubber)


class _AllureScrubber:
    """An allure-commons plugin: the texts of a result (status message and trace, name, description,
    parameter values, steps; fixtures' in containers) redacted before the file logger writes them.
    UUIDs, history IDs and attachment file names are left as they are."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def _item(self, item: Any) -> None:
        r = self.redactor
        details = getattr(item, "statusDetails", None)
        if details is not None:
            for name in ("message", "trace"):
                if isinstance(getattr(details, name, None), str):
                    setattr(details, name, r.text(getattr(details, name)))
        for name in ("name", "description", "descriptionHtml", "fullName"):
            if isinstance(getattr(item, name, None), str):
                setattr(item, name, r.text(getattr(item, name)))
        for param in getattr(item, "parameters", None) or []:
            if isinstance(getattr(param, "value", None), str):
                param.value = r.text(param.value)
        for attachment in getattr(item, "attachments", None) or []:
            if isinstance(getattr(attachment, "name", None), str):
                attachment.name = r.text(attachment.name)
        for step in getattr(item, "steps", None) or []:
            self._item(step)

    def report_result(self, result: Any) -> None:
        self._item(result)

    def report_container(self, container: Any) -> None:
        for fixture in [*(getattr(container, "befores", None) or []), *(getattr(container, "afters", None) or [])]:
            self._item(fixture)


try:  # mark the two methods as allure-commons hooks run before the file logger's
    from allure_commons import hookimpl as _allure_hookimpl

    _AllureScrubber.report_result = _allure_hookimpl(tryfirst=True)(_AllureScrubber.report_result)  # type: ignore[method-assign]
    _AllureScrubber.report_container = _allure_hookimpl(tryfirst=True)(  # type: ignore[method-assign]
        _AllureScrubber.report_container)
except ImportError:  # allure-pytest is a dependency; without it there is nothing to scrub
    pass


def _start_embedded_central(stack: ExitStack, faults: list[str]) -> Target:
    try:
        from .central.process import CentralProcess
    except ImportError as exc:  # the central is someone else's module: say what is missing
        raise pytest.UsageError(f"no --target given and the embedded central is unavailable: {exc}") from None
    return stack.enter_context(CentralProcess(faults=list(faults)))


def _state(config: pytest.Config) -> _Session:
    return config.stash[_STATE_KEY]


# --- Options and configuration ---------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pbxcheck", "pbxcheck conformance checks")
    group.addoption("--target", dest="pbx_target", default=None, metavar="FILE",
                    help="target TOML file; without it the embedded reference central is started")
    group.addoption("--central-fault", dest="pbx_faults", action="append", default=[], metavar="NAME",
                    help="start the embedded central with this fault switch (repeatable; not with --target)")
    group.addoption("--reports", dest="pbx_reports", default="reports", metavar="DIR",
                    help="where clauses.json, clauses.md and failures/ go (default: reports)")


@pytest.hookimpl(trylast=True)  # after the terminal reporter exists, so its output can be redacted
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clause(*ids): the contract clause IDs a check verifies")
    target_path = config.getoption("pbx_target")
    faults = list(config.getoption("pbx_faults") or [])
    if target_path and faults:
        raise pytest.UsageError("--central-fault applies only to the embedded central, not with --target")
    if faults:
        from .central.faults import validate

        try:
            validate(faults)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    state = _Session(config=config, reports_dir=Path(config.getoption("pbx_reports")),
                     target_path=target_path, faults=faults)
    config.stash[_STATE_KEY] = state
    config.pluginmanager.register(_ReportCounter(state), "pbxcheck-report-counter")
    if target_path:
        try:  # a bad target file is one clear line, before any check runs
            state.load()
        except TargetError as exc:
            raise pytest.UsageError(str(exc)) from None
    profile = os.environ.get(PROFILE_ENV)
    if profile and not config.getoption("hypothesis_profile", None):
        settings.load_profile(profile)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _ACTIVE_REDACTOR
    state = config.stash.get(_STATE_KEY, None)
    if state is None:
        return
    state.stack.close()
    if _ACTIVE_REDACTOR is state.redactor:  # a later session in this process starts clean
        _ACTIVE_REDACTOR = Redactor(())
    if state.active and state.target is not None:
        # junitxml writes its file in pytest_sessionfinish and allure writes as it goes: both are done now.
        report.redact_tree(state.reports_dir, state.redactor)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash.get(_STATE_KEY, None)
    if state is None or state.target is None:
        return []
    t = state.target
    tls = "TLS verification OFF (insecure = true)" if t.insecure else "TLS verified"
    return [f"pbxcheck target: {t.name} {t.api_url} ({tls})"]


def _marked_clauses(item: pytest.Item) -> tuple[str, ...]:
    ids: list[str] = []
    for mark in item.iter_markers("clause"):
        ids.extend(str(a) for a in mark.args)
    return tuple(dict.fromkeys(ids))


_SEVERITY_OF_KIND = {"auth": "blocker", "contract": "critical", "unspecified": "normal", "hardening": "minor"}


def clause_kind(c: Clause) -> str:
    if c.hardening:
        return "hardening"
    if c.unspecified:
        return "unspecified"
    return "auth" if c.id.startswith("AUTH-") else "contract"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _state(config)
    try:
        import allure
    except ImportError:  # allure-pytest is a dependency, but the labels are an extra
        allure = None  # type: ignore[assignment]
    marked = []
    for item in items:
        ids = _marked_clauses(item)
        if not ids:
            continue
        marked.append(item)
        for cid in ids:
            if cid not in CLAUSES:
                raise pytest.UsageError(f"{item.nodeid}: unknown clause ID {cid!r} in @pytest.mark.clause")
        state.results[item.nodeid] = CheckResult(item.nodeid, ids)
        if allure is not None:
            first = CLAUSES[ids[0]]
            item.add_marker(allure.epic(first.section))
            for cid in ids:
                item.add_marker(allure.story(cid))
            kinds = [clause_kind(CLAUSES[c]) for c in ids]
            best = min(kinds, key=list(_SEVERITY_OF_KIND).index)
            item.add_marker(allure.severity(_SEVERITY_OF_KIND[best]))
    # --collect-only runs no check: it must not leave a clause report (of nothing) behind.
    state.active = bool(marked) and not config.option.collectonly
    # Throttling probes send bursts of wrong credentials; a real central may then block our IP for a
    # while, so they run after every other check.
    items.sort(key=lambda it: "AUTH-6" in _marked_clauses(it))


# --- Running checks --------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # trylast: as the innermost wrapper this runs first after the report exists, so allure-pytest
    # (which reads the report and call.excinfo in its own wrapper) sees the redacted text.
    outcome = yield
    rep: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    state = _state(item.config)
    exc = call.excinfo.value if call.excinfo is not None else None
    if item.nodeid in state.results:
        state.raised[(item.nodeid, rep.when)] = exc
        if rep.skipped and isinstance(exc, Blocked) and isinstance(rep.longrepr, tuple):
            # pytest names a Skipped subclass by its module path; the reason alone reads better
            rep.longrepr = (rep.longrepr[0], rep.longrepr[1], f"Skipped: {exc.msg}")
        elif rep.skipped:
            _say_not_applicable(rep, exc)
    if state.target is not None:
        redact_report(rep, state.redactor)
        if exc is not None:
            _redact_exception(exc, state.redactor)  # allure-pytest reads call.excinfo.exconly()


class _ReportCounter:
    """pytest_runtest_logreport gets no config: this per-session plugin object carries the state."""

    def __init__(self, state: _Session) -> None:
        self.state = state

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        _count_report(self.state, report)


def _count_report(state: _Session, rep: pytest.TestReport) -> None:
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
                result.message = _skip_reason(rep)
        else:
            result.outcome = "failed" if rep.when == "call" else "error"
            # no exception at all (an XPASS(strict)): the check failed every clause it is marked with
            failed = failed_clauses_of(exc, result.clauses) if exc is not None else list(result.clauses)
            result.failed_clauses = sorted(set(result.failed_clauses) | set(failed))
            text = state.redactor.text(rep.longreprtext)
            result.message = _headline(exc, text, state.redactor)
            result.failure_file = _write_failure(state, rep.nodeid, result.clauses, text)


NOT_APPLICABLE = "not applicable: "


def _say_not_applicable(rep: pytest.TestReport, exc: BaseException | None) -> None:
    """A skipped clause check reads "not applicable: <reason>" in JUnit, Allure and the terminal."""
    lr = rep.longrepr
    if isinstance(lr, tuple) and len(lr) == 3 and not str(lr[2]).startswith(("Skipped: " + NOT_APPLICABLE,
                                                                           NOT_APPLICABLE)):
        reason = str(lr[2]).removeprefix("Skipped: ")
        rep.longrepr = (lr[0], lr[1], "Skipped: " + NOT_APPLICABLE + reason)
    if isinstance(exc, pytest.skip.Exception) and not str(exc.msg or "").startswith(NOT_APPLICABLE):
        exc.msg = NOT_APPLICABLE + str(exc.msg or "")


def redact_report(rep: pytest.TestReport, redactor: Redactor) -> None:
    """Redact a report in place, keeping every field the type pytest and its plugins expect: a skip's
    ``(path, lineno, reason)`` stays a tuple (junitxml asserts it), a failure's ExceptionChainRepr
    stays one (its reprcrash, entries, locals and sections redacted), a string stays a string."""
    rep.longrepr = redact_longrepr(rep.longrepr, redactor)
    rep.sections = [(redactor.text(title), redactor.text(content)) for title, content in rep.sections]
    if isinstance(getattr(rep, "wasxfail", None), str):
        rep.wasxfail = redactor.text(rep.wasxfail)


def redact_longrepr(longrepr: Any, redactor: Redactor) -> Any:
    if longrepr is None:
        return None
    if isinstance(longrepr, str):
        return redactor.text(longrepr)
    if isinstance(longrepr, tuple):
        return tuple(redactor.text(v) if isinstance(v, str) else v for v in longrepr)
    before = _render(longrepr)
    if redactor.text(before) == before:
        return longrepr
    _scrub(longrepr, redactor, set())
    after = _render(longrepr)
    if redactor.text(after) == after:
        return longrepr
    # An object our walk does not know: its terminal text, redacted, in a repr of pytest's own kind.
    return _RedactedRepr(redactor.text(after), getattr(longrepr, "reprcrash", None), redactor)


def _render(longrepr: Any) -> str:
    from _pytest._io import TerminalWriter

    buf = io.StringIO()
    tw = TerminalWriter(buf)
    tw.hasmarkup = False
    if hasattr(longrepr, "toterminal"):
        longrepr.toterminal(tw)
    else:
        tw.line(str(longrepr))
    return buf.getvalue()


def _scrub(obj: Any, redactor: Redactor, seen: set[int]) -> Any:
    """Every string inside one of pytest's repr objects (ReprEntry lines, ReprFuncArgs, ReprLocals,
    ReprFileLocation, chain descriptions, sections), redacted in place."""
    if isinstance(obj, str):
        return redactor.text(obj)
    if id(obj) in seen:
        return obj
    seen.add(id(obj))
    if isinstance(obj, list):
        obj[:] = [_scrub(v, redactor, seen) for v in obj]
        return obj
    if isinstance(obj, tuple):
        items = [_scrub(v, redactor, seen) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, dict):
        return {_scrub(k, redactor, seen): _scrub(v, redactor, seen) for k, v in obj.items()}
    if type(obj).__module__.startswith("_pytest") and hasattr(obj, "__dict__"):
        for name, value in list(vars(obj).items()):
            object.__setattr__(obj, name, _scrub(value, redactor, seen))
    return obj


class _RedactedRepr(TerminalRepr):
    """The already-redacted terminal text of a repr object we could not redact in place."""

    def __init__(self, text: str, reprcrash: Any, redactor: Redactor) -> None:
        self.text = text
        if reprcrash is not None and hasattr(reprcrash, "message"):
            from _pytest._code.code import ReprFileLocation

            reprcrash = ReprFileLocation(redactor.text(str(reprcrash.path)), reprcrash.lineno,
                                         redactor.text(str(reprcrash.message)))
        self.reprcrash = reprcrash

    def toterminal(self, tw: Any) -> None:
        for line in self.text.rstrip("\n").splitlines():
            tw.line(line)


def _redact_exception(exc: BaseException, redactor: Redactor) -> None:
    """Redact the text of the exception itself where we can (its args, its notes), for readers of
    ``call.excinfo`` such as allure-pytest; the reports folder is redacted again afterwards."""
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            _redact_exception(sub, redactor)
        return
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        notes[:] = [redactor.text(n) if isinstance(n, str) else n for n in notes]
    if isinstance(exc, pytest.skip.Exception | pytest.fail.Exception):
        exc.msg = redactor.text(str(exc.msg or ""))
        return
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ is not ours to fix
        return
    clean = redactor.text(text)
    if clean != text and len(exc.args) == 1:
        try:
            exc.args = (clean,)
        except (AttributeError, TypeError):
            pass


def _skip_reason(rep: pytest.TestReport) -> str:
    if hasattr(rep, "wasxfail"):
        return "expected to fail" + (f": {rep.wasxfail}" if rep.wasxfail else "")
    lr = rep.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2]).removeprefix("Skipped: ").removeprefix(NOT_APPLICABLE)
    return str(lr or "")


def _headline(exc: BaseException | None, text: str, redactor: Redactor) -> str:
    if isinstance(exc, ClauseFailure):
        return redactor.text(exc.headline)
    if exc is not None:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return redactor.text(f"{type(exc).__name__}: {first}")
    lines = [ln for ln in text.splitlines() if ln.startswith("E ")]
    return lines[0][2:].strip() if lines else (text.strip().splitlines() or [""])[-1]


def _exchanges_of(state: _Session, nodeid: str) -> list[Exchange]:
    out: list[Exchange] = []
    for client, start in state.exchanges.get(nodeid, []):
        out.extend(client.exchanges[start:])
    return out


def _write_failure(state: _Session, nodeid: str, clauses: tuple[str, ...], text: str) -> str | None:
    if state.target is None:
        return None
    t = state.target
    exchanges = _exchanges_of(state, nodeid)[-FAILURE_EXCHANGES:]
    described = [ex.describe(state.redactor, insecure=t.insecure, ca_file=t.ca_file) for ex in exchanges]
    return report.write_failure(state.reports_dir, nodeid, clauses, text, described, state.redactor)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    if not state.active:
        return
    state.table = report.clause_table(
        results=[vars(r) for r in state.results.values()],
        observations=state.observations,
        findings=state.findings,
        target_name=state.target.name if state.target else None,
        insecure=bool(state.target and state.target.insecure),
        require=state.target.gate_require if state.target else (),
    )
    report.write_clause_reports(state.reports_dir, state.table, state.redactor)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if state is None or state.table is None:
        return
    width = getattr(terminalreporter, "_tw", None)
    text = report.render_summary(state.table, width=getattr(width, "fullwidth", 100))
    terminalreporter.write(state.redactor.text(text))
    terminalreporter.write_line(f"clause reports: {state.reports_dir / 'clauses.md'}")


# --- Fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    """The central under test: --target FILE, or the embedded reference central (started once)."""
    state = _state(pytestconfig)
    try:
        return state.load()
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def redactor(target: Target, pytestconfig: pytest.Config) -> Redactor:
    return _state(pytestconfig).redactor


_SSL_CONTEXTS: dict[tuple[str | None, bool], Any] = {}


def new_client(target: Target, *, source_ip: str | None, plain: bool = False) -> ApiClient:
    """An ApiClient sharing one TLS context per CA setting: building a context (loading the system
    store) costs more than the handful of calls a check makes."""
    key = (target.ca_file, target.insecure)
    if key not in _SSL_CONTEXTS:
        _SSL_CONTEXTS[key] = ssl_context(target)
    transport = httpx.HTTPTransport(verify=_SSL_CONTEXTS[key], local_address=source_ip, retries=0)
    return ApiClient(target, source_ip=source_ip, plain=plain, transport=transport)


def _client(request: pytest.FixtureRequest, target: Target, **kw: Any) -> Iterator[ApiClient]:
    state = _state(request.config)
    client = new_client(target, **kw)
    state.exchanges.setdefault(request.node.nodeid, []).append((client, 0))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def api(request: pytest.FixtureRequest, target: Target) -> Iterator[ApiClient]:
    """A client with the target's credentials, bound to the source IP its token belongs to."""
    yield from _client(request, target, source_ip=target.source_ip)


@pytest.fixture
def plain_api(request: pytest.FixtureRequest, target: Target) -> Iterator[ApiClient]:
    """The same credentials over the plain-http URL (AUTH-4)."""
    yield from _client(request, target, source_ip=target.source_ip, plain=True)


def is_loopback(host: str | None) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def target_is_local(target: Target) -> bool:
    """Both ends on loopback: the reference central, or one a test started."""
    return is_loopback(urlsplit(target.api_url).hostname) and is_loopback(target.source_ip)


def other_loopback(ip: str) -> str:
    """A loopback address other than ``ip`` (all of 127/8 reaches lo on Linux without setup)."""
    return "127.0.0.2" if ip != "127.0.0.2" else "127.0.0.3"


@dataclass(frozen=True)
class ForeignProbe:
    """How 'valid credentials, wrong source IP' is produced against this target (AUTH-3)."""

    client: ApiClient
    how: str
    # A client for which the same token IS valid from where it connects, when we can build one:
    # the positive control that proves the denial is about the IP, not about a dead token.
    control: ApiClient | None


def foreign_probe(request: pytest.FixtureRequest, target: Target) -> ForeignProbe | None:
    state = _state(request.config)

    def register(c: ApiClient) -> ApiClient:
        state.exchanges.setdefault(request.node.nodeid, []).append((c, 0))
        request.addfinalizer(c.close)
        return c

    if target_is_local(target):
        other = target.foreign_source_ip or other_loopback(target.source_ip)
        if other == target.source_ip:
            other = other_loopback(target.source_ip)
        client = register(new_client(target, source_ip=other))
        control = None
        if target.foreign_token and target.foreign_source_ip == other:
            control = register(new_client(target.with_(token=target.foreign_token), source_ip=other))
        return ForeignProbe(client, f"our token, sent from {other} instead of {target.source_ip}", control)
    if target.foreign_token:
        client = register(new_client(target.with_(token=target.foreign_token), source_ip=target.source_ip))
        return ForeignProbe(client, f"the foreign token (bound to {target.foreign_source_ip or 'another IP'}), "
                                    f"sent from our IP {target.source_ip}", None)
    return None


@pytest.fixture
def foreign_ip_api(request: pytest.FixtureRequest, target: Target) -> ForeignProbe:
    """Valid credentials from the wrong source IP; skips when the target gives no way to produce that."""
    probe = foreign_probe(request, target)
    if probe is None:
        pytest.skip("remote target without [foreign] token: cannot send valid credentials from a foreign IP")
    return probe


SEVERITIES = ("info", "low", "medium", "high", "critical")


class Recorder:
    """Observations of [unspecified] answers and hardening findings, for the clause table.

    Both can turn into failures the target file asks for: a pin ``"<CLAUSE>.<what>"`` that the
    observed answer does not match, or a finding on a clause listed in ``[findings] fail_on``.
    """

    def __init__(self, state: _Session, target: Target, nodeid: str) -> None:
        self.state, self.target, self.nodeid = state, target, nodeid

    def _entry(self, clause_id: str, **fields: Any) -> dict[str, Any]:
        if clause_id not in CLAUSES:
            raise KeyError(f"unknown clause ID {clause_id!r}")
        return {"clause": clause_id, **fields, "check": self.nodeid}

    def observe(self, clause_id: str, what: str, value: Any) -> None:
        self.state.observations.append(self._entry(clause_id, what=what, value=self.state.redactor.data(value)))
        pin = self.target.pins.get(f"{clause_id}.{what}")
        if pin is None and "/" in what:  # "token/insert": a pin on "token" covers every acao
            pin = self.target.pins.get(f"{clause_id}.{what.split('/', 1)[0]}")
        if pin is not None and not pin_matches(pin, value):
            raise ClauseFailure(clause_id, self.state.redactor.text(
                f"[{clause_id}] pinned answer not given: {what}\n"
                f"  pinned:   {pin}\n  observed: {json.dumps(value, ensure_ascii=False)}"))

    def finding(self, clause_id: str, severity: str, text: str) -> None:
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}")
        shown = self.state.redactor.text(text)
        self.state.findings.append(self._entry(clause_id, severity=severity, text=shown))
        if clause_id in self.target.fail_on_findings:
            raise ClauseFailure(clause_id, f"[{clause_id}] finding ({severity}), failing as [findings] "
                                           f"fail_on asks: {shown}")


@pytest.fixture
def recorder(request: pytest.FixtureRequest, target: Target) -> Recorder:
    return Recorder(_state(request.config), target, request.node.nodeid)


@pytest.fixture
def observe(recorder: Recorder) -> Callable[[str, str, Any], None]:
    """observe(clause, what, value): record what the target did on an [unspecified] point (a pin in
    the target file turns it into an assertion)."""
    return recorder.observe


@pytest.fixture
def finding(recorder: Recorder) -> Callable[[str, str, str], None]:
    """finding(clause, severity, text): a hardening result; fails the check only if the target asks."""
    return recorder.finding


def pin_matches(pin: str, value: Any) -> bool:
    """A pin is JSON text or a bare string; it matches a value equal to either reading."""
    if isinstance(value, str) and pin == value:
        return True
    try:
        return bool(json.loads(pin) == value)
    except ValueError:
        return pin == json.dumps(value, ensure_ascii=False)


# --- The check helper -----------------------------------------------------------------------------


class Checker:
    """Expectations that fail like a Schemathesis check: the clause, what was sent and got, a curl line."""

    def __init__(self, target: Target, redactor: Redactor, recorder: Recorder | None = None) -> None:
        self.target = target
        self.redactor = redactor
        self.recorder = recorder

    def describe(self, *exchanges: Exchange) -> str:
        return "\n\n".join(ex.describe(self.redactor, insecure=self.target.insecure, ca_file=self.target.ca_file)
                           for ex in exchanges)

    def fail(self, clause_id: str, what: str, *exchanges: Exchange) -> NoReturn:
        __tracebackhide__ = True  # the failure shows at the check's line, not in here
        c = CLAUSES[clause_id]
        head = f"[{clause_id}] {c.summary}\n  ({c.section})\n\n  {what}"
        body = self.describe(*exchanges)
        said = (what.strip().splitlines() or [c.summary])[0]
        raise ClauseFailure(clause_id, self.redactor.text(head + ("\n\n" + body if body else "")),
                            headline=self.redactor.text(f"[{clause_id}] {said}"))

    def __call__(self, condition: object, clause_id: str, what: str, *exchanges: Exchange) -> None:
        __tracebackhide__ = True
        if not condition:
            self.fail(clause_id, what, *exchanges)

    def no_server_error(self, ex: Exchange, clause_id: str) -> None:
        __tracebackhide__ = True
        self(ex.status_code is not None and ex.status_code < 500, clause_id,
             f"server error: HTTP {ex.status_code}", ex)

    def value(self, ex: Exchange, clause_id: str) -> Any:
        """The parsed answer, failing the clause when there is none or it is a server error."""
        __tracebackhide__ = True
        self.no_server_error(ex, clause_id)
        if ex.answer is None:
            self.fail(clause_id, f"the answer is not JSON: {ex.parse_error}", ex)
        if ex.answer.lenient and self.recorder is not None:
            # AMB-5/AMB-6: read anyway, but the report says what had to be forgiven.
            self.recorder.observe(clause_id, "lenient_answer", "; ".join(ex.answer.lenient))
        return ex.answer.value

    def status(self, ex: Exchange, clause_id: str, text: str) -> None:
        """The answer is exactly ["Status", text]."""
        __tracebackhide__ = True
        got = self.value(ex, clause_id)
        expected = [STATUS, text]
        self(got == expected, clause_id,
             f"expected exactly {json.dumps(expected, ensure_ascii=False)}, "
             f"got {_short(got)}", ex)

    def records(self, ex: Exchange, clause_id: str) -> list[dict[str, Any]]:
        """The answer is a JSON array of objects."""
        __tracebackhide__ = True
        got = self.value(ex, clause_id)
        self(isinstance(got, list) and all(isinstance(r, dict) for r in got), clause_id,
             f"expected a JSON array of records, got {_short(got)}", ex)
        return list(got)


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


@pytest.fixture
def check(target: Target, redactor: Redactor, recorder: Recorder) -> Checker:
    return Checker(target, redactor, recorder)


# --- Data the checks share --------------------------------------------------------------------------


@dataclass
class RunTag:
    """A short tag unique to this run, put in inserted values so a persistent central's old data never
    matches. Derandomised Hypothesis examples repeat across runs; the tag does not."""

    value: str
    counter: int = 0

    def next(self, prefix: str = "pbx") -> str:
        self.counter += 1
        return f"{prefix}{self.value}{self.counter:04d}"


@pytest.fixture(scope="session")
def run_tag() -> RunTag:
    return RunTag(format(int(time.time() * 1000) % 36**6, "x"))


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def is_datetime_text(value: Any) -> bool:
    return isinstance(value, str) and bool(_DATE.match(value))
