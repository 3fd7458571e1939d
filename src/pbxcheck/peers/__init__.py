"""Real third-party SIP peers, started and stopped by our code, for checking our SIP side both ways.

- :mod:`pbxcheck.peers.kamailio`: ``KamailioProcess`` — Kamailio 5.6 as a registrar/proxy with digest
  auth (Debian package ``kamailio``), config in ``fixtures/peers/kamailio/``.
- :mod:`pbxcheck.peers.baresip`: ``BaresipPhone`` — baresip 1.0 as a real SIP phone driven through its
  ``ctrl_tcp`` control socket (Debian package ``baresip-core``).

This module holds what both share: ``require`` (the skip-or-fail rule for tests), ``find_binary``,
``free_port``, ``stop_process_group``, ``log_tail`` and ``PeerError``.

Every peer runs as a foreground child in its own process group (``start_new_session``), with all
runtime state in a temp dir; ``__exit__``/``stop()`` terminates the whole group (SIGTERM, then SIGKILL)
and an ``atexit`` hook stops any peer a crashed caller forgot.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Self

from pbxcheck.errors import PbxcheckError

__all__ = [
    "PeerError",
    "ManagedPeer",
    "require",
    "find_binary",
    "free_port",
    "stop_process_group",
    "log_tail",
    "PEER_BINARIES",
]

#: peer name → executable name (``require`` and ``find_binary`` accept either)
PEER_BINARIES = {"kamailio": "kamailio", "baresip": "baresip"}
_EXTRA_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin", "/usr/local/bin")


class PeerError(PbxcheckError):
    """A third-party peer could not be started, did not answer, or reported a failure."""


def find_binary(name: str) -> str | None:
    """Absolute path of the peer's executable, or None. Looks in PATH, then the sbin dirs (root's PATH
    may lack /usr/sbin where Debian puts kamailio)."""
    exe = PEER_BINARIES.get(name, name)
    found = shutil.which(exe)
    if found:
        return found
    for d in _EXTRA_DIRS:
        candidate = Path(d) / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require(name: str) -> str:
    """For tests: the peer's binary path. When it is missing, the test is skipped, except under
    ``CI=true``, where a missing peer fails the test (CI installs the Debian packages; a skip there
    would hide a broken install step)."""
    import pytest

    path = find_binary(name)
    if path:
        return path
    pkg = {"kamailio": "kamailio", "baresip": "baresip-core"}.get(name, name)
    msg = f"{name} not found (Debian package {pkg!r}; .ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{msg}: under CI=true a missing peer is a failure", pytrace=False)
    pytest.skip(msg)


def free_port(host: str = "127.0.0.1", *, udp: bool = True, tcp: bool = True, span: int = 1, tries: int = 100) -> int:
    """A port P such that, right now, UDP P (if ``udp``) and TCP P..P+span-1 (if ``tcp``) can be bound on
    ``host``. (baresip also listens for TLS on P+1, hence ``span``.) Racy by nature, like every free-port
    pick; callers that lose the race get a bind error and a clear message."""
    for _ in range(tries):
        socks: list[socket.socket] = []
        try:
            first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
            socks.append(first)
            first.bind((host, 0))
            port: int = first.getsockname()[1]
            if port + span > 65535:
                continue
            if tcp:
                for p in range(port, port + span):
                    if not udp and p == port:
                        continue
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(s)
                    s.bind((host, p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise PeerError(f"no free port on {host} after {tries} tries")


def stop_process_group(
    proc: subprocess.Popen[Any], *, steps: tuple[tuple[int, float], ...] = ((signal.SIGTERM, 3.0),)
) -> None:
    """Signal the process group ``proc`` leads (it was started with ``start_new_session=True``): each
    ``(signal, seconds)`` step in turn until the group is gone, then SIGKILL. Idempotent; never raises
    for an already gone group."""
    pgid = proc.pid
    for sig, wait in (*steps, (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        except PermissionError:  # pragma: no cover - not our group any more
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; children of the group may linger a moment (kamailio's workers)
        if not _group_alive(pgid, wait=wait):
            break
    try:
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


def _group_alive(pgid: int, *, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a peer's log file ('' if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ManagedPeer:
    """What every peer shares: a temp work dir, the context-manager protocol, and a place in the
    registry the ``atexit`` safety net stops. Subclasses implement ``start`` and ``stop``; ``stop``
    ends with ``self._release()``."""

    workdir: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> Self:
        """Start the peer. A start that lost a free-port race ("Address already in use" on a port we
        picked ourselves) is retried on fresh ports, twice at most."""
        if self.proc is not None:
            raise PeerError(f"{type(self).__name__} already started")
        for attempt in range(3):
            try:
                self._start_once()  # stops and cleans up itself when it fails
                return self
            except PeerError as e:
                if attempt == 2 or "already in use" not in str(e) or not self._repick_ports():
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        raise NotImplementedError

    def _start_once(self) -> None:
        raise NotImplementedError

    def _repick_ports(self) -> bool:
        """Forget the ports we picked ourselves, so that the next start picks new ones; False when the
        caller chose them (then a bind failure is theirs to see)."""
        return False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until_exit_or_interrupt(self) -> None:
        """For by-hand runs (``python -m pbxcheck.peers.kamailio``): block until the peer exits or Ctrl-C."""
        try:
            while self.proc is not None and self.proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass

    def _acquire(self, prefix: str) -> Path:
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.workdir = Path(self._tmp.name)
        _RUNNING.add(self)
        return self.workdir

    def _release(self) -> None:
        _RUNNING.discard(self)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.workdir = None


_RUNNING: weakref.WeakSet[ManagedPeer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:  # pragma: no cover - safety net
    for peer in list(_RUNNING):
        try:
            peer.stop()
        except Exception:
            pass
