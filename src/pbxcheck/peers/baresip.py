"""baresip 1.0 (Debian ``baresip-core``) as a real SIP phone, driven non-interactively.

Typical use (a registrar at 127.0.0.1:7048, e.g. ``KamailioProcess`` or the reference central)::

    from pbxcheck.peers.baresip import BaresipPhone

    with BaresipPhone("2002", "pw", "127.0.0.1", 7048, transport="tcp", auto_answer=True) as phone:
        phone.wait_registered(timeout=10)         # REGISTER_OK, or PeerError (with the failure reason)
        call = phone.wait_incoming_call(timeout=10)   # an event with .call_id and .peer
        phone.wait_established(timeout=10)        # auto_answer=True answers by itself ...
        phone.answer()                            # ... with auto_answer=False, answer by hand
        phone.hangup()                            # or wait for the far end: phone.wait_closed(timeout=10)
        phone.events                              # every event baresip reported so far

    with BaresipPhone("2001", "pw", "127.0.0.1", 7048) as caller:
        caller.wait_registered(10)
        caller.dial("2002")                       # or a full URI "sip:2002@127.0.0.1:7048"
        caller.wait_established(10); caller.hangup(); caller.wait_closed(10)

    BaresipPhone("2001", "wrong", ...).wait_registration(10)   # → the REGISTER_FAIL event
                                                               #   (.param '401 Unauthorized', '403 ...')

API (all waits are bounded by ``timeout`` seconds and raise ``PeerError`` on timeout, with the
phone's recent events and log in the message):

- ``BaresipPhone(user, password, registrar_host, registrar_port, transport="udp"|"tcp", local_port=0,
  auto_answer=False, *, regint=60, auth_user=None, display_name=None, sip_trace=False,
  max_lifetime=300, start_timeout=10)``. ``local_port=0`` picks a free port (baresip listens on it
  over UDP and TCP, and for TLS on port+1). ``sip_trace=True`` writes every SIP message to the log.
- ``start()`` / ``stop()`` (also the context manager). ``stop()`` quits baresip (which unregisters),
  then signals its process group; always safe to call.
- ``wait_registration(timeout)`` → the next REGISTER_OK or REGISTER_FAIL event since the last
  registration wait; ``wait_registered(timeout)`` → REGISTER_OK, ``PeerError`` on REGISTER_FAIL;
  ``registered`` (bool, the latest registration outcome).
- ``wait_incoming_call(timeout)`` → the first event of a new incoming call (CALL_INCOMING, or, with
  auto-answer where baresip 1.0 sends no CALL_INCOMING, the call's first event).
- ``wait_established(timeout, call_id=None)``, ``wait_closed(timeout, call_id=None)`` →
  CALL_ESTABLISHED / CALL_CLOSED (``.param`` holds the reason, e.g. 'Connection reset by peer',
  '486 Busy Here').
- ``wait_event(types, timeout, predicate=None, start=0)`` → the first matching event at index ≥ start.
- ``unregister()`` (un-REGISTER, Expires 0) and ``register()`` (a fresh REGISTER now, e.g. after a
  403 once the registrar lets the user in again).
- ``dial(uri)``, ``answer()``, ``hangup()``: baresip's menu commands over ctrl_tcp; ``command(name,
  params)`` sends any other (``reginfo``, ``listcalls``, ``callstat`` ...) and returns its text.
- ``events``: list of ``BaresipEvent(type, klass, call_id, peer, direction, param, at, raw)`` (``at``
  is ``time.monotonic()``), ``aor``, ``local_port``, ``log_tail()``, ``workdir`` (the ``-f`` dir).

How it is driven: a temp config dir (``-f DIR``) with ``config`` (no sound card: audio source and
player are ``aubridge`` null devices, codecs g711; ``sip_listen 127.0.0.1:PORT``; ``net_interface``
the same IP; ``dns_server 127.0.0.1:53``, no STUN/TURN/ICE modules, so nothing leaves loopback)
and an empty ``accounts`` file. Modules: ``g711``, ``aubridge``, ``account``, ``uuid``, ``menu``
(the commands) and ``ctrl_tcp`` (a TCP socket of netstring-framed JSON: commands in, responses and
events out). The account is created with ``uanew`` *after* we are connected to ctrl_tcp, so no
registration event is missed. stdout/stderr go to ``DIR/baresip.log``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbxcheck.peers import ManagedPeer, PeerError, find_binary, free_port, log_tail, stop_process_group

__all__ = ["BaresipPhone", "BaresipEvent", "find_baresip", "MODULE_DIR"]

MODULE_DIR = "/usr/lib/baresip/modules"
_NEEDED_MODULES = ("g711.so", "aubridge.so", "account.so", "uuid.so", "menu.so", "ctrl_tcp.so")

REGISTER_OK = "REGISTER_OK"
REGISTER_FAIL = "REGISTER_FAIL"
CALL_INCOMING = "CALL_INCOMING"
CALL_ESTABLISHED = "CALL_ESTABLISHED"
CALL_CLOSED = "CALL_CLOSED"


def find_baresip() -> str | None:
    """Path of the ``baresip`` binary, or None."""
    return find_binary("baresip")


@dataclass(frozen=True)
class BaresipEvent:
    """One event baresip reported over ctrl_tcp."""

    type: str
    klass: str = ""
    call_id: str | None = None
    peer: str | None = None
    direction: str | None = None
    param: str | None = None
    at: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, obj: dict[str, Any], at: float) -> BaresipEvent:
        return cls(
            type=str(obj.get("type", "")),
            klass=str(obj.get("class", "")),
            call_id=obj.get("id"),
            peer=obj.get("peeruri"),
            direction=obj.get("direction"),
            param=obj.get("param"),
            at=at,
            raw=obj,
        )

    def __str__(self) -> str:
        parts = [self.type]
        if self.direction:
            parts.append(self.direction)
        if self.peer:
            parts.append(self.peer)
        if self.param:
            parts.append(repr(self.param))
        return " ".join(parts)


class _NetstringReader:
    """Incremental netstring (``LEN:DATA,``) decoder."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out: list[bytes] = []
        while True:
            colon = self.buf.find(b":")
            if colon < 0:
                if len(self.buf) > 12:
                    raise PeerError(f"ctrl_tcp: not a netstring: {self.buf[:40]!r}")
                return out
            try:
                n = int(self.buf[:colon])
            except ValueError as e:
                raise PeerError(f"ctrl_tcp: bad netstring length {self.buf[:colon][:20]!r}") from e
            end = colon + 1 + n
            if len(self.buf) < end + 1:
                return out
            if self.buf[end : end + 1] != b",":
                raise PeerError("ctrl_tcp: netstring without its trailing comma")
            out.append(self.buf[colon + 1 : end])
            self.buf = self.buf[end + 1 :]


def _netstring(obj: dict[str, Any]) -> bytes:
    data = json.dumps(obj).encode()
    return str(len(data)).encode() + b":" + data + b","


class BaresipPhone(ManagedPeer):
    """A baresip phone registered (by ``start()``) at ``registrar_host:registrar_port``. See the module
    docstring for the whole API."""

    def __init__(
        self,
        user: str,
        password: str,
        registrar_host: str,
        registrar_port: int,
        transport: str = "udp",
        local_port: int = 0,
        auto_answer: bool = False,
        *,
        regint: int = 60,
        auth_user: str | None = None,
        display_name: str | None = None,
        local_host: str = "127.0.0.1",
        sip_trace: bool = False,
        max_lifetime: int = 300,
        start_timeout: float = 10.0,
        binary: str | None = None,
    ) -> None:
        if transport not in ("udp", "tcp"):
            raise ValueError("transport must be 'udp' or 'tcp'")
        for name, value in (("user", user), ("password", password), ("auth_user", auth_user or "")):
            if any(c in value for c in '<>;"\r\n '):
                raise ValueError(f"baresip {name} must not contain <, >, ;, quotes, spaces or newlines")
        self.user = user
        self.password = password
        self.registrar_host = registrar_host
        self.registrar_port = registrar_port
        self.transport = transport
        self.local_port = local_port
        self._local_port_arg = local_port
        self.local_host = local_host
        self.auto_answer = auto_answer
        self.regint = regint
        self.auth_user = auth_user
        self.display_name = display_name
        self.sip_trace = sip_trace
        self.max_lifetime = max_lifetime
        self.start_timeout = start_timeout
        self.binary = binary
        self.ctrl_port = 0
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._events: list[BaresipEvent] = []
        self._responses: dict[str, dict[str, Any]] = {}
        self._token = 0
        self._reg_cursor = 0
        self._call_cursor = 0
        self._seen_incoming: set[str] = set()
        self._reader_error: BaseException | None = None
        self._closed = False
        self._has_ua = False
        self._log_snapshot = ""

    # -- properties ----------------------------------------------------------------------------
    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.registrar_host}:{self.registrar_port}"

    @property
    def events(self) -> list[BaresipEvent]:
        with self._cond:
            return list(self._events)

    @property
    def registered(self) -> bool:
        with self._cond:
            for ev in reversed(self._events):
                if ev.type in (REGISTER_OK, REGISTER_FAIL):
                    return ev.type == REGISTER_OK
        return False

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "baresip.log" if self.workdir else None

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path:
            return log_tail(self.log_path, lines)
        return "\n".join(self._log_snapshot.splitlines()[-lines:])

    def account_line(self, *, mask_password: bool = False) -> str:
        """The baresip account line (what an ``accounts`` file would hold)."""
        name = f'"{self.display_name}" ' if self.display_name else ""
        line = (
            f"{name}<sip:{self.user}@{self.registrar_host}:{self.registrar_port};transport={self.transport}>"
            f";auth_pass={'***' if mask_password else self.password};regint={self.regint}"
            f";answermode={'auto' if self.auto_answer else 'manual'}"
        )
        if self.auth_user:
            line += f";auth_user={self.auth_user}"
        return line

    def config_text(self) -> str:
        assert self.workdir is not None
        lines = [
            "poll_method\tepoll",
            f"sip_listen\t{self.local_host}:{self.local_port}",
            f"net_interface\t{self.local_host}",
            "dns_server\t127.0.0.1:53",
            "call_local_timeout\t120",
            "call_max_calls\t4",
            "audio_player\taubridge,nil",
            "audio_source\taubridge,nil",
            "audio_alert\taubridge,nil",
            f"module_path\t{MODULE_DIR}",
            "module\tg711.so",
            "module\taubridge.so",
            "module_tmp\tuuid.so",
            "module_tmp\taccount.so",
            "module_app\tmenu.so",
            "module_app\tctrl_tcp.so",
            f"ctrl_tcp_listen\t127.0.0.1:{self.ctrl_port}",
        ]
        return "\n".join(lines) + "\n"

    # -- lifecycle -----------------------------------------------------------------------------
    def _start_once(self) -> None:
        binary = self.binary or find_baresip()
        if not binary:
            raise PeerError("baresip not found (Debian package 'baresip-core')")
        missing = [m for m in _NEEDED_MODULES if not (Path(MODULE_DIR) / m).exists()]
        if missing:
            raise PeerError(f"baresip modules missing from {MODULE_DIR}: {', '.join(missing)}")
        workdir = self._acquire(f"pbxcheck-baresip-{self.user}-")
        try:
            if self.local_port == 0:
                self.local_port = free_port(self.local_host, udp=True, tcp=True, span=2)
            self.ctrl_port = free_port("127.0.0.1", udp=False, tcp=True)
            (workdir / "config").write_text(self.config_text())
            # the account is added with `uanew` once we listen to events; kept here for by-hand runs
            (workdir / "accounts").write_text(
                f"# pbxcheck adds this account with uanew:\n# {self.account_line(mask_password=True)}\n"
            )
            (workdir / "contacts").write_text("")
            cmd = [binary, "-f", str(self.workdir), "-t", str(self.max_lifetime)]
            if self.sip_trace:
                cmd.append("-s")
            with open(workdir / "baresip.log", "wb") as log:
                self.proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    start_new_session=True,
                )
            self._connect_ctrl()
            self.register()
        except BaseException:
            self.stop()
            raise

    def _repick_ports(self) -> bool:
        if self._local_port_arg != 0:
            return False
        self.local_port = 0
        return True

    def stop(self) -> None:
        """Quit baresip (it unregisters), then make sure its process group is gone; idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None and self._sock is not None:
                try:
                    self._send({"command": "quit"})
                    proc.wait(timeout=2.0)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            # baresip's first SIGTERM waits for un-REGISTER answers; a second one forces the exit
            stop_process_group(proc, steps=((signal.SIGTERM, 1.0), (signal.SIGTERM, 1.5)))
        self._closed = True
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        if self._reader is not None:
            self._reader.join(timeout=2.0)
            self._reader = None
        if self.workdir is not None:
            self._log_snapshot = log_tail(self.workdir / "baresip.log", 200)
        self._release()

    # -- commands ------------------------------------------------------------------------------
    def command(self, name: str, params: str | None = None, timeout: float = 5.0) -> str:
        """Send a ctrl_tcp command; returns its response text; PeerError if baresip says not ok."""
        with self._cond:
            self._token += 1
            token = f"t{self._token}"
        msg: dict[str, Any] = {"command": name, "token": token}
        if params is not None:
            msg["params"] = params
        self._send(msg)
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                self._check_alive()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"baresip gave no response to {name!r} within {timeout}s{self._context()}")
                self._cond.wait(min(left, 0.2))
            resp = self._responses.pop(token)
        if not resp.get("ok", False):
            raise PeerError(f"baresip refused {name!r}: {resp.get('data')!r}{self._context()}")
        return str(resp.get("data", ""))

    def register(self) -> str:
        """(Re-)create the account, which sends a fresh REGISTER at once (baresip 1.0 has no re-register
        command; after a REGISTER_FAIL it would only retry after a back-off). Pair with
        ``wait_registered``/``wait_registration``."""
        if self._has_ua:
            self.unregister()
        out = self.command("uanew", self.account_line())
        self._has_ua = True
        return out

    def unregister(self) -> str:
        """Delete the account: baresip un-REGISTERs it (Expires 0) and stops refreshing."""
        out = self.command("uadel", self.aor)
        self._has_ua = False
        return out

    def dial(self, uri: str) -> str:
        """Call ``uri`` ('2002' or 'sip:2002@host:port'); a TCP phone adds ';transport=tcp' to a SIP URI
        without a transport parameter, so that the call leaves over TCP like its registration."""
        if uri.startswith("sip:") and self.transport != "udp" and "transport=" not in uri:
            uri += f";transport={self.transport}"
        return self.command("dial", uri)

    def answer(self) -> str:
        return self.command("accept")

    def hangup(self) -> str:
        return self.command("hangup")

    # -- waits ---------------------------------------------------------------------------------
    def wait_event(
        self,
        types: str | Iterable[str],
        timeout: float,
        predicate: Callable[[BaresipEvent], bool] | None = None,
        start: int = 0,
    ) -> BaresipEvent:
        """The first event at index ≥ ``start`` whose type is in ``types`` (and that ``predicate``
        accepts); PeerError after ``timeout`` seconds."""
        wanted = {types} if isinstance(types, str) else set(types)
        idx, ev = self._wait_index(
            lambda e: e.type in wanted and (predicate is None or predicate(e)), timeout, start, "/".join(sorted(wanted))
        )
        return ev

    def wait_registration(self, timeout: float = 10.0) -> BaresipEvent:
        """The next REGISTER_OK or REGISTER_FAIL (each is returned once)."""
        idx, ev = self._wait_index(
            lambda e: e.type in (REGISTER_OK, REGISTER_FAIL), timeout, self._reg_cursor, "REGISTER_OK/REGISTER_FAIL"
        )
        self._reg_cursor = idx + 1
        return ev

    def wait_registered(self, timeout: float = 10.0) -> BaresipEvent:
        """REGISTER_OK; PeerError if the registration failed (the reason is in the message)."""
        ev = self.wait_registration(timeout)
        if ev.type != REGISTER_OK:
            raise PeerError(f"{self.aor} failed to register: {ev.param}{self._context()}")
        return ev

    def wait_incoming_call(self, timeout: float = 10.0) -> BaresipEvent:
        """The first event of a new incoming call."""

        def is_new_incoming(e: BaresipEvent) -> bool:
            return e.direction == "incoming" and bool(e.call_id) and e.call_id not in self._seen_incoming

        idx, ev = self._wait_index(
            lambda e: e.type == CALL_INCOMING or is_new_incoming(e), timeout, self._call_cursor, "an incoming call"
        )
        self._call_cursor = idx + 1
        if ev.call_id:
            self._seen_incoming.add(ev.call_id)
        return ev

    def wait_established(self, timeout: float = 10.0, call_id: str | None = None) -> BaresipEvent:
        return self.wait_event(CALL_ESTABLISHED, timeout, lambda e: call_id is None or e.call_id == call_id)

    def wait_closed(self, timeout: float = 10.0, call_id: str | None = None) -> BaresipEvent:
        return self.wait_event(CALL_CLOSED, timeout, lambda e: call_id is None or e.call_id == call_id)

    # -- internals -----------------------------------------------------------------------------
    def _wait_index(
        self, match: Callable[[BaresipEvent], bool], timeout: float, start: int, what: str
    ) -> tuple[int, BaresipEvent]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(start, len(self._events)):
                    if match(self._events[i]):
                        return i, self._events[i]
                start = max(start, len(self._events))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"{self.aor}: no {what} within {timeout}s{self._context()}")
                self._check_alive()
                self._cond.wait(min(left, 0.2))

    def _check_alive(self) -> None:
        if self._reader_error is not None:
            raise PeerError(f"baresip control connection failed: {self._reader_error}{self._context()}")
        if self.proc is None:
            raise PeerError("baresip is not running")
        if self.proc.poll() is not None:
            raise PeerError(f"baresip exited with {self.proc.returncode}{self._context()}")

    def _context(self) -> str:
        evs = self.events[-12:]
        shown = "\n  ".join(str(e) for e in evs) or "(none)"
        return f"\nlast events:\n  {shown}\nbaresip log:\n{self.log_tail(25)}"

    def _connect_ctrl(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise PeerError(f"baresip exited with {self.proc.returncode} at start:\n{self.log_tail()}")
            try:
                sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=0.5)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise PeerError(
                        f"baresip's ctrl_tcp did not open on 127.0.0.1:{self.ctrl_port} within "
                        f"{self.start_timeout}s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)
        sock.settimeout(None)
        self._sock = sock
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, args=(sock,), name=f"baresip-{self.user}", daemon=True)
        self._reader.start()

    def _send(self, obj: dict[str, Any]) -> None:
        if self._sock is None:
            raise PeerError("baresip control connection is not open")
        self._sock.sendall(_netstring(obj))

    def _read_loop(self, sock: socket.socket) -> None:
        reader = _NetstringReader()
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for frame in reader.feed(data):
                    obj = json.loads(frame)
                    with self._cond:
                        if obj.get("event"):
                            self._events.append(BaresipEvent.from_json(obj, time.monotonic()))
                        elif obj.get("response") and "token" in obj:
                            self._responses[str(obj["token"])] = obj
                        self._cond.notify_all()
        except (OSError, ValueError, PeerError) as e:
            if not self._closed:
                self._reader_error = e
        finally:
            with self._cond:
                self._cond.notify_all()


if __name__ == "__main__":  # pragma: no cover - by hand: python -m pbxcheck.peers.baresip USER PW HOST PORT [udp|tcp]
    import sys

    _u, _pw, _h, _p = sys.argv[1:5]
    _t = sys.argv[5] if len(sys.argv) > 5 else "udp"
    with BaresipPhone(_u, _pw, _h, int(_p), transport=_t, auto_answer=True, sip_trace=True) as _ph:
        print(_ph.wait_registration(10), flush=True)
        _ph.wait_until_exit_or_interrupt()
    os._exit(0)
