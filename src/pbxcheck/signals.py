"""SIGTERM and SIGHUP handled like Ctrl-C, and stopping a child's whole process tree.

CI cancels a job with SIGTERM, a closed terminal sends SIGHUP: ``pbxcheck run``, ``load`` and
``central`` treat both like SIGINT. Inside :func:`interrupts`, the first of the three raises
``KeyboardInterrupt`` in the main thread (so ``with`` blocks and ``finally`` clauses clean up as for
Ctrl-C) and the next ones are only counted, so that the cleanup itself is not cut short; a second
signal only shortens the grace :func:`stop_tree` gives a child (CI sends SIGINT, then SIGTERM, then
SIGKILL a few seconds apart), straight to its SIGKILL.

Children that must be stopped as a whole (pytest and whatever it started, Locust and its
``--processes`` workers, the embedded central) are started with ``start_new_session=True``: a Ctrl-C
typed in the terminal then reaches only pbxcheck, which stops them in order, and :func:`stop_tree`
stops the group they lead (the polite signal, a grace period, then SIGKILL) together with every
descendant that left the group (the SIP peers start their own sessions).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C; used for SIGTERM and SIGHUP too
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Interrupts:
    """What :func:`interrupts` saw: ``first`` is the signal that interrupted (None: none did)."""

    first: signal.Signals | None = None
    later: list[signal.Signals] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.first.name if self.first is not None else "SIGINT"


@contextlib.contextmanager
def interrupts() -> Iterator[Interrupts]:
    """SIGINT, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` once; the previous handlers come back on
    exit. Outside the main thread (where Python cannot set handlers) nothing changes."""
    global _current
    seen = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def handler(signum: int, frame: object) -> None:
        sig = signal.Signals(signum)
        if seen.first is None:
            seen.first = sig
            raise KeyboardInterrupt(sig.name)
        seen.later.append(sig)

    previous = {sig: signal.signal(sig, handler) for sig in HANDLED}
    outer, _current = _current, seen
    try:
        yield seen
    finally:
        _current = outer
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


_current: Interrupts | None = None  # the innermost interrupts() block of the main thread


def _hurried() -> bool:
    """A second signal came: no more grace."""
    return _current is not None and bool(_current.later)


# --- process trees -----------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgid, start time) of ``pid`` from /proc, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def _all() -> dict[int, tuple[str, int, int, int]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                out[int(entry)] = st
    return out


def descendants(pid: int) -> dict[int, int]:
    """Every live descendant of ``pid``: pid → start time (the pair names a process, a pid alone may be
    reused once it is gone)."""
    table = _all()
    found: dict[int, int] = {}
    frontier = {pid}
    while frontier:
        frontier = {p for p, st in table.items() if st[1] in frontier and p not in found and st[0] != "Z"}
        found.update({p: table[p][3] for p in frontier})
    return found


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group ``pgid``."""
    return [p for p, st in _all().items() if st[2] == pgid and st[0] != "Z"]


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_tree(proc: subprocess.Popen[Any], *, first: int = signal.SIGINT, grace: float = 10.0) -> int:
    """Stop ``proc`` (started with ``start_new_session=True``), its process group and every process it
    started: ``first`` to the group, up to ``grace`` seconds for the group to go, then SIGKILL to the
    group and to each descendant still alive. Returns the leader's exit code. Idempotent; a second
    signal inside :func:`interrupts` (or a ``KeyboardInterrupt``) cuts the grace short, never the
    SIGKILL."""
    pgid = proc.pid
    tree = descendants(pgid) if proc.poll() is None else {}
    try:
        if proc.poll() is None or group_members(pgid):
            _kill_group(pgid, first)
            deadline = time.monotonic() + grace
            refreshed = time.monotonic()
            while time.monotonic() < deadline and not _hurried():
                if proc.poll() is not None and not group_members(pgid):
                    break
                if proc.poll() is None and time.monotonic() - refreshed > 0.5:
                    tree.update(descendants(pgid))  # what it started since
                    refreshed = time.monotonic()
                time.sleep(0.05)
    finally:
        _kill_group(pgid, signal.SIGKILL)
        for pid, started in tree.items():
            st = _stat(pid)
            if st is not None and st[3] == started and st[0] != "Z":
                if st[2] == pid:  # a group leader of its own (a SIP peer): its workers too
                    _kill_group(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        code = proc.wait()
    return code
