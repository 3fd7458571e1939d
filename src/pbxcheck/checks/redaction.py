"""Secrets out of everything pytest and its plugins report: the terminal stream, the reports
(``longrepr`` redacted in place, keeping the type junitxml, allure-pytest and the terminal expect), the
exceptions readers of ``call.excinfo`` see, and allure-commons' results before they are written."""

from __future__ import annotations

import io
from contextlib import ExitStack
from typing import Any

import pytest
from _pytest._code.code import TerminalRepr

from ..redact import Redactor


def redact_terminal(config: pytest.Config, redactor: Redactor) -> None:
    """Everything pytest writes to the terminal from now on goes through the redactor, its own
    lines included (a login such as "root" can sit in any path it prints)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    tw = getattr(reporter, "_tw", None)
    if tw is None or getattr(tw, "_pbxcheck_redacted", False):
        return
    write = tw.write

    def redacted_write(msg: str, **markup: Any) -> None:
        write(redactor.text(msg), **markup)

    tw.write = redacted_write
    tw._pbxcheck_redacted = True


def redact_allure(stack: ExitStack, redactor: Redactor) -> None:
    """allure-pytest writes each result as the check ends, with texts it took from the exception
    itself (``call.excinfo.exconly()``) and from fixtures' errors: they are redacted just before
    it writes them, as pytest's own texts are (redact_tree, afterwards, spares IDs)."""
    register_allure_plugin(stack, _AllureScrubber(redactor), "pbxcheck-allure-scrubber")


def register_allure_plugin(stack: ExitStack, plugin: object, name: str) -> None:
    """An allure-commons plugin for this session, unregistered when ``stack`` closes."""
    try:
        import allure_commons
    except ImportError:  # allure-pytest is a dependency; without it nothing is written
        return
    try:
        allure_commons.plugin_manager.register(plugin, name)
    except ValueError:  # already registered (a pytest run inside a pytest run)
        return
    stack.callback(allure_commons.plugin_manager.unregister, plugin)


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
        _AllureScrubber.report_container
    )
except ImportError:  # allure-pytest is a dependency; without it there is nothing to scrub
    pass


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
    before = render(longrepr)
    if redactor.text(before) == before:
        return longrepr
    _scrub(longrepr, redactor, set())
    after = render(longrepr)
    if redactor.text(after) == after:
        return longrepr
    # An object our walk does not know: its terminal text, redacted, in a repr of pytest's own kind.
    return _RedactedRepr(redactor.text(after), getattr(longrepr, "reprcrash", None), redactor)


def render(longrepr: Any) -> str:
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

            reprcrash = ReprFileLocation(
                redactor.text(str(reprcrash.path)), reprcrash.lineno, redactor.text(str(reprcrash.message))
            )
        self.reprcrash = reprcrash

    def toterminal(self, tw: Any) -> None:
        for line in self.text.rstrip("\n").splitlines():
            tw.line(line)


def redact_exception(exc: BaseException, redactor: Redactor) -> None:
    """Redact the text of the exception itself where we can (its args, its notes), for readers of
    ``call.excinfo`` such as allure-pytest; the reports folder is redacted again afterwards."""
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            redact_exception(sub, redactor)
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
