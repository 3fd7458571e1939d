"""Running the audited command once: its environment, a time bound, its output (redacted)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..redact import Redactor
from ..signals import stop_tree

OUTPUT_LINES = 200  # the tail kept as evidence
POLL_S = 0.2


@dataclass
class CommandRun:
    phase: str
    exit_code: int | None  # None: stopped by the audit (timed out or interrupted)
    timed_out: bool  # stopped by the audit: the time bound, or ``enough`` said so
    seconds: float
    output: list[str] = field(default_factory=list)  # the last OUTPUT_LINES lines, redacted


def find_command(argv: Sequence[str]) -> str | None:
    """Why ``argv`` cannot run (one line), or None."""
    if not argv:
        return "no command: pbxcheck audit [OPTIONS] -- CMD [ARGS...] (or --serve)"
    exe = argv[0]
    if os.sep in exe:
        path = Path(exe)
        if not path.is_file():
            return f"command not found: {exe}"
        if not os.access(path, os.X_OK):
            return f"command not executable: {exe}"
        return None
    if shutil.which(exe) is None:
        return f"command not found: {exe} (not on PATH)"
    return None


def run_command(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    phase: str,
    timeout: float,
    redactor: Redactor,
    out: TextIO | None,
    enough: Callable[[], bool] | None = None,
) -> CommandRun:
    """Run ``argv`` with ``env`` over this environment, at most ``timeout`` seconds, or until
    ``enough()`` (polled) says the verdict is clear; then its whole process group is stopped. Each
    line it prints is redacted before it is shown or kept."""
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = redactor.text(raw.decode("utf-8", "replace").rstrip("\n"))
            lines.append(line)
            del lines[:-OUTPUT_LINES]
            if out is not None:
                out.write(f"  [{phase}] {line}\n")
                out.flush()

    reader = threading.Thread(target=pump, name=f"audit-{phase}-output", daemon=True)
    reader.start()
    timed_out = False
    code: int | None = None
    deadline = started + timeout
    try:
        while code is None and not timed_out:
            try:
                code = proc.wait(min(POLL_S, max(deadline - time.monotonic(), 0.0)))
            except subprocess.TimeoutExpired:
                timed_out = time.monotonic() >= deadline or (enough is not None and enough())
    finally:  # what it left running in its group goes too (and all of it on a timeout or Ctrl-C)
        stop_tree(proc, first=signal.SIGTERM, grace=3.0)
        reader.join(5.0)
        if proc.stdout is not None:
            proc.stdout.close()
    return CommandRun(phase, code, timed_out, time.monotonic() - started, list(lines))
