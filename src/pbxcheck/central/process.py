"""Starting a reference central for a test or a run, and stopping it.

``CentralProcess`` runs ``python -m pbxcheck central`` as a subprocess on free ports and yields the
Target it writes; ``CentralThread`` runs one in this process on a background thread (faster to
start, for the central's own tests). Both stop it on exit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, TypeVar

from ..errors import PbxcheckError
from ..signals import HANDLED, stop_tree
from ..target import Target, load_target
from .server import Central, CentralConfig, ServiceFactory, new_loop, serve

T = TypeVar("T")


class CentralStartError(PbxcheckError):
    """The central did not come up; the message carries the tail of its log."""


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


# Every listener on a port the kernel picks, so centrals never collide with each other or a real one.
EPHEMERAL_PORTS = ("--api-port", "0", "--plain-port", "0", "--sip-port", "0", "--ws-port", "0", "--ws-plain-port", "0")


class CentralProcess:
    """``with CentralProcess(faults=["ignore-token"]) as target: ...``"""

    def __init__(
        self,
        *,
        faults: Iterable[str] = (),
        clock_speed: float | None = None,
        db: str | os.PathLike[str] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        timeout: float = 20.0,
        pin_cpu: int | None = None,
    ) -> None:
        self.faults = list(faults)
        self.clock_speed = clock_speed
        self.db = str(db) if db else None
        self.timeout = timeout
        self.pin_cpu = pin_cpu
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pbxcheck-central-")
            state_dir = self._tmp.name
        self.state_dir = Path(state_dir)
        self.target_path = self.state_dir / "target.toml"
        self.log_path = self.state_dir / "central.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "pbxcheck",
            "central",
            *EPHEMERAL_PORTS,
            "--state-dir",
            str(self.state_dir),
            "--write-target",
            str(self.target_path),
            "--exit-with-parent",
            str(os.getpid()),
        ]
        for f in self.faults:
            cmd += ["--fault", f]
        if self.clock_speed is not None:
            cmd += ["--clock-speed", str(self.clock_speed)]
        if self.db:
            cmd += ["--db", self.db]
        if self.pin_cpu is not None:
            cmd = ["taskset", "-c", str(self.pin_cpu), *cmd]
        return cmd

    def start(self) -> Target:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.target_path.unlink(missing_ok=True)
        self._log = open(self.log_path, "ab")
        # Its own session: a Ctrl-C typed in the terminal reaches only the harness, which stops
        # the central after pytest (whose finalizers still need it), not at the same moment.
        # A signal raised inside Popen would leave a child we hold no handle on, which then refills
        # the state folder after it was removed: the handled signals wait until self.proc is set
        # (the child inherits the mask; `pbxcheck central` unblocks them first thing).
        held = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.target_path.exists():
                return load_target(self.target_path)
            if self.proc.poll() is not None:
                self._close_log()
                raise CentralStartError(
                    f"the reference central exited with code {self.proc.returncode} before it was ready;"
                    f" its log ({self.log_path}):\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)
        self.stop()
        raise CentralStartError(
            f"the reference central was not ready after {self.timeout:.0f} s;"
            f" its log ({self.log_path}):\n{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """SIGTERM to the central's process group, SIGKILL after 10 s; a second interrupt meanwhile
        cuts the wait short, never the kill."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None:
                stop_tree(proc, first=signal.SIGTERM, grace=10.0)
        finally:
            self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Target:
        try:
            return self.start()
        except BaseException:
            try:
                self.stop()
            finally:
                self._cleanup()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


class CentralThread:
    """The central on a background thread of this process: ``with CentralThread(cfg) as central``.

    ``central.target()`` describes it; ``call(fn)`` runs ``fn()`` on the central's loop thread
    (the store belongs to that thread)."""

    def __init__(
        self, config: CentralConfig, *, services: list[ServiceFactory] | None = None, timeout: float = 20.0
    ) -> None:
        self.config = config
        self.services = services if services is not None else []
        self.timeout = timeout
        self.central: Central | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="central", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def ready(central: Central) -> None:
                self.central = central
                self._ready.set()

            await serve(self.config, on_ready=ready, stop=self._stop, services=self.services)

        try:
            with asyncio.Runner(loop_factory=new_loop) as runner:
                runner.run(main())
        except BaseException as exc:  # reported by __enter__, or lost at shutdown
            self._error = exc
            self._ready.set()

    def __enter__(self) -> Central:
        self._thread.start()
        if not self._ready.wait(self.timeout) or self._error is not None or self.central is None:
            raise CentralStartError(f"in-process central did not start: {self._error!r}")
        return self.central

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the central's loop thread and return its result."""
        assert self._loop is not None

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(self.timeout)

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(self.timeout)
