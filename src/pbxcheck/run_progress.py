"""Progress by clause while ``pbxcheck run``'s pytest works: the tally of the events its progress
plugin sends (``checks.progress``) and their display. On a terminal: a live bar (clauses done of
all, checks, clauses failed so far, the clause being checked), each failed clause printed above it
as it completes. Elsewhere (CI logs, tests): one plain line per clause as it completes, no spinner.

The display is indicative: the verdicts (findings, unspecified answers, the gate) are the clause
table's, read once pytest is done.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column
from rich.text import Text

from .checks.progress import COLLECTED, DONE, FAILED_OUTCOMES, START


@dataclass
class ClauseTally:
    """Which clauses are done (every check marked with them finished) and how they went."""

    clauses_of: dict[str, list[str]] = field(default_factory=dict)  # check -> its clauses
    remaining: dict[str, int] = field(default_factory=dict)  # clause -> its checks not finished yet
    checks_of: Counter[str] = field(default_factory=Counter)  # clause -> its checks
    failed: Counter[str] = field(default_factory=Counter)  # clause -> checks that failed it
    passed: Counter[str] = field(default_factory=Counter)  # clause -> its checks that passed
    checks_done: int = 0
    current: str = ""  # the check running now

    def collected(self, checks: dict[str, list[str]]) -> None:
        self.clauses_of = dict(checks)
        for clauses in checks.values():
            self.checks_of.update(clauses)
        self.remaining = dict(self.checks_of)

    @property
    def checks_total(self) -> int:
        return len(self.clauses_of)

    @property
    def clauses_total(self) -> int:
        return len(self.checks_of)

    @property
    def clauses_done(self) -> int:
        return sum(1 for n in self.remaining.values() if n == 0)

    def finished(self, check: str, outcome: str, failed: list[str]) -> list[str]:
        """Count one finished check; the clauses it was the last check of."""
        self.checks_done += 1
        self.failed.update(set(failed) if outcome in FAILED_OUTCOMES else ())
        completed = []
        for cid in self.clauses_of.get(check, []):
            if outcome == "passed":
                self.passed[cid] += 1
            if self.remaining.get(cid, 0) > 0:
                self.remaining[cid] -= 1
                if self.remaining[cid] == 0:
                    completed.append(cid)
        return completed

    def percent(self) -> int:
        return 100 * self.checks_done // self.checks_total if self.checks_total else 0

    def clause_line(self, cid: str) -> str:
        """A completed clause, as rich markup: its ID, how its checks went."""
        n, bad, good = self.checks_of[cid], self.failed[cid], self.passed[cid]
        other = n - good - bad
        if bad:
            word, style, how = "FAILED", "bold red", f"{bad} of {n} check{'s' if n != 1 else ''} failed"
        elif good:
            word, style = "ok", "green"
            how = f"{good} check{'s' if good != 1 else ''} passed" + (
                f", {other} not applicable or blocked" if other > 0 else ""
            )
        else:
            word, style, how = "not checked", "yellow", f"{n} check{'s' if n != 1 else ''} not applicable or blocked"
        return f"{escape(cid):<10} [{style}]{word:<11}[/] {how}"


class ProgressDisplay:
    """Fed the plugin's events and pytest's lines; ``live`` on a terminal, plain lines otherwise.
    ``show_pytest``: pytest's own lines go to the terminal too (``-v``); without a terminal the
    per-clause lines are then left out (pytest's dots already say how far it is)."""

    def __init__(self, console: Console, *, show_pytest: bool) -> None:
        self.console = console
        self.live = console.is_terminal
        self.show_pytest = show_pytest
        self.tally = ClauseTally()
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            fixed = Column(no_wrap=True)
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.fields[clauses]}", table_column=fixed),
                BarColumn(bar_width=20),
                TextColumn("{task.fields[checks]}", table_column=fixed),
                TextColumn("{task.fields[failures]}", table_column=fixed),
                TimeElapsedColumn(),
                # the check running takes what width is left, cut short on a narrow terminal
                TextColumn("{task.description}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
                console=self.console,
                expand=True,
                redirect_stdout=False,
                redirect_stderr=False,
                refresh_per_second=4,  # every frame is kept for the leak scan: a long run stays small
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "collecting the checks…", total=None, clauses="clauses", checks="", failures=""
            )
        else:
            self.console.print("collecting the checks…")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()

    def pytest_line(self, line: str) -> None:
        if self.show_pytest:
            self.console.print(Text(line.rstrip("\n")), soft_wrap=True)

    def event(self, ev: dict[str, Any]) -> None:
        t = self.tally
        kind = ev.get("event")
        if kind == COLLECTED:
            t.collected(ev.get("checks") or {})
            if not self.live:
                self.console.print(f"running {t.checks_total} checks of {t.clauses_total} clauses")
        elif kind == START:
            t.current = str(ev.get("check", ""))
        elif kind == DONE:
            for cid in t.finished(str(ev.get("check", "")), str(ev.get("outcome", "")), list(ev.get("failed") or [])):
                if self.live and t.failed[cid]:
                    self.console.print(t.clause_line(cid))
                elif not self.live and not self.show_pytest:
                    self.console.print(f"{t.clause_line(cid)}  {escape(f'[{t.percent():>3}%]')}")
        self._refresh()

    def _refresh(self) -> None:
        if self.progress is None or self.task is None:
            return
        t = self.tally
        now = t.current.rsplit("/", 1)[-1]
        marked = " ".join(t.clauses_of.get(t.current, []))
        failed = sum(1 for n in t.failed.values() if n)
        self.progress.update(
            self.task,
            total=t.clauses_total or None,
            completed=t.clauses_done,
            clauses=f"clauses {t.clauses_done}/{t.clauses_total}" if t.clauses_total else "clauses",
            description=escape(f"{marked} {now}") if t.current else "collecting the checks…",
            checks=f"checks {t.checks_done}/{t.checks_total}" if t.checks_total else "",
            failures=f"[bold red]{failed} failed[/]" if failed else "",
        )
