"""Blocking-socket drivers for Locust (gevent) and for multi-process benches.

Plain ``socket`` objects with timeouts and nothing else: under Locust, gevent's monkey-patching
replaces ``socket.socket`` so these calls yield to other greenlets instead of blocking the process.
That is why the module looks the class up as ``socket.socket`` at call time (never ``from socket
import socket``, which would keep the unpatched class) and uses no threads or selectors of its own.
"""

from __future__ import annotations

import socket
import time

from .base import Addr


class BlockingUdp:
    """A UDP socket talking to one SIP server."""

    transport = "UDP"

    def __init__(self, remote: Addr, *, local: Addr = ("127.0.0.1", 0), timeout: float = 2.0) -> None:
        self.remote = remote
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(local)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        name = self.sock.getsockname()
        self.local: Addr = (name[0], name[1])

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.remote)

    def recv(self, timeout: float | None = None) -> bytes | None:
        """The next datagram from the server, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                return None
            if (addr[0], addr[1]) == self.remote:
                return data
            # a datagram from someone else (a stray peer) is not our answer: keep waiting

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> BlockingUdp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlockingTcp:
    """A TCP connection to one SIP server, framed with the core's StreamFramer."""

    transport = "TCP"

    def __init__(self, remote: Addr, *, local: Addr | None = None, timeout: float = 2.0) -> None:
        from ..parser import StreamFramer

        self.remote = remote
        self.timeout = timeout
        self.sock = socket.create_connection(remote, timeout=timeout, source_address=local)
        name = self.sock.getsockname()
        self.local: Addr = (name[0], name[1])
        self.framer = StreamFramer()
        self.pending: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: float | None = None) -> bytes | None:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionError(f"SIP server {self.remote[0]}:{self.remote[1]} closed the connection")
            self.pending.extend(self.framer.feed(chunk))
        return self.pending.pop(0)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> BlockingTcp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def register_once(
    conn: BlockingUdp | BlockingTcp, user: str, password: str, domain: str, *, expires: int = 90, timeout: float = 2.0
) -> int:
    """One complete registration on a blocking connection (REGISTER, 401, REGISTER with digest),
    run by the engine through the blocking runner (``sip.sync``): the final status, 0 when an answer
    did not come in ``timeout``. For Locust users and scripts; the asyncio ``UserAgent`` is the
    full-featured client."""
    from ..digest import Challenge, build_authorization
    from ..ids import new_call_id, new_tag
    from ..register import make_register
    from ..sync import BlockingEndpoint

    sip = BlockingEndpoint(conn)
    call_id = new_call_id()
    tag = new_tag()
    auth: str | None = None
    for cseq in (1, 2):
        req = make_register(
            domain,
            user,
            sent_by=conn.local,
            transport=conn.transport,
            call_id=call_id,
            cseq=cseq,
            from_tag=tag,
            expires=expires,
            authorization=auth,
            user_agent=None,
        )
        resp = sip.request(req, timeout)
        if resp is None:
            return 0
        value = resp.headers.get("WWW-Authenticate")
        if resp.status != 401 or value is None or auth:
            return resp.status
        auth = str(build_authorization(Challenge.parse(value), user, password, "REGISTER", f"sip:{domain}"))
    return 401
