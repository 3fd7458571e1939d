"""The run's terminal, offline: the display fed synthetic progress events (clause tally, plain lines,
the live bar), the redacting stream everything shown goes through, the banner and closing lines."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pbxcheck.checks.progress import COLLECTED, DONE, START
from pbxcheck.console import RunStream, failed_clause_lines, run_console, summary_line, target_lines
from pbxcheck.redact import Redactor
from pbxcheck.run_progress import ClauseTally, ProgressDisplay

CHECKS = {
    "suites/test_a.py::test_one[x]": ["AUTH-1"],
    "suites/test_a.py::test_one[y]": ["AUTH-1"],
    "suites/test_a.py::test_two": ["AUTH-1", "AUTH-2"],
    "suites/test_b.py::test_three": ["REC-1"],
}
EVENTS: list[dict[str, Any]] = [
    {"event": COLLECTED, "checks": CHECKS},
    {"event": START, "check": "suites/test_a.py::test_one[x]"},
    {"event": DONE, "check": "suites/test_a.py::test_one[x]", "outcome": "passed", "failed": []},
    {"event": DONE, "check": "suites/test_a.py::test_one[y]", "outcome": "failed", "failed": ["AUTH-1"]},
    {"event": DONE, "check": "suites/test_a.py::test_two", "outcome": "passed", "failed": []},
    {"event": DONE, "check": "suites/test_b.py::test_three", "outcome": "skipped", "failed": []},
]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _feed(out: io.StringIO, *, show_pytest: bool = False) -> ProgressDisplay:
    with ProgressDisplay(run_console(RunStream(out)), show_pytest=show_pytest) as display:
        display.pytest_line("....F [100%]\n")
        for event in EVENTS:
            display.event(event)
    return display


def test_a_clause_is_done_when_its_last_check_is() -> None:
    tally = ClauseTally()
    tally.collected(CHECKS)
    assert (tally.checks_total, tally.clauses_total) == (4, 3)
    assert tally.finished("suites/test_a.py::test_one[x]", "passed", []) == []
    assert tally.finished("suites/test_a.py::test_two", "failed", ["AUTH-2", "C5-1"]) == ["AUTH-2"]
    assert tally.finished("suites/test_a.py::test_one[y]", "passed", []) == ["AUTH-1"]
    assert tally.failed["C5-1"] == 1  # a clause the check is not marked with still counts as failed
    assert "ok" in tally.clause_line("AUTH-1") and "2 checks passed" in tally.clause_line("AUTH-1")
    assert "FAILED" in tally.clause_line("AUTH-2") and "1 of 1 check failed" in tally.clause_line("AUTH-2")
    assert tally.percent() == 75


def test_without_a_terminal_one_plain_line_per_clause() -> None:
    out = io.StringIO()
    _feed(out)
    lines = out.getvalue().splitlines()
    assert lines == [
        "collecting the checks…",
        "running 4 checks of 3 clauses",
        "AUTH-1     FAILED      1 of 3 checks failed  [ 75%]",
        "AUTH-2     ok          1 check passed  [ 75%]",
        "REC-1      not checked 1 check not applicable or blocked  [100%]",
    ]


def test_with_verbose_and_no_terminal_pytest_s_lines_replace_the_clause_lines() -> None:
    out = io.StringIO()
    _feed(out, show_pytest=True)
    assert "....F [100%]" in out.getvalue() and "AUTH-1     FAILED " not in out.getvalue()


def test_on_a_terminal_a_live_bar_and_the_failed_clauses_above_it() -> None:
    out = _Tty()
    display = _feed(out)
    assert display.live
    text = out.getvalue()
    assert "\x1b[" in text  # drawn in place
    assert "clauses 3/3" in text and "checks 4/4" in text and "1 failed" in text
    assert "AUTH-1" in text and "FAILED" in text
    assert "REC-1      not checked" not in text  # only failures are printed above the bar


def test_what_is_shown_is_redacted_and_recorded() -> None:
    out = io.StringIO()
    stream = RunStream(out)
    stream.redactor = Redactor(("s3cr3t-t0ken-value",))
    run_console(stream).print("token s3cr3t-t0ken-value and a piece: t0ken-val")
    assert "s3cr3t" not in out.getvalue() and "t0ken-val" not in out.getvalue()
    assert stream.text() == out.getvalue()


def _plain(markup: str) -> str:
    out = io.StringIO()
    run_console(RunStream(out)).print(markup)
    return out.getvalue().rstrip("\n")


def test_the_banner_says_tls_verification_per_service() -> None:
    info = {
        "target": "staging",
        "embedded": False,
        "endpoints": [{"name": "API", "url": "https://pbx.example/api.php"}, {"name": "SIP WSS", "url": "wss://x/ws"}],
        "tls_verify_api": True,
        "tls_verify_sip": False,
        "faults": [],
    }
    lines = [_plain(line) for line in target_lines(info, Path("reports"))]
    assert lines == [
        "  target      staging",
        "  API         https://pbx.example/api.php  TLS verified",
        "  SIP WSS     wss://x/ws  TLS verification OFF (insecure = true)",
        "  reports     reports",
    ]


def test_a_failed_clause_without_a_failure_file_says_why() -> None:
    table = {
        "clauses": {
            "SIP-WS-1": {
                "status": "failed",
                "failures": [{"check": None, "file": None, "message": "[gate] require: SIP-WS-1 must be checked"}],
            },
            "AUTH-1": {"status": "passed", "failures": []},
        },
        "counts": {"failed": 1, "passed": 1},
    }
    (line,) = [_plain(x) for x in failed_clause_lines(table)]
    assert line.startswith("FAILED SIP-WS-1 ") and line.endswith(
        "1 distinct failure  [gate] require: SIP-WS-1 must be checked"
    )
    summary = _plain(summary_line(table))
    assert summary.startswith("Does not conform: 1 clause failed (SIP-WS-1)") and "1 passed, 1 failed" in summary
