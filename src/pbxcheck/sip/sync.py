"""The blocking runner over the sans-IO engine (``sip.engine``): for the gevent Locust SIP user and
scripts that talk to one SIP server over one blocking connection (``drivers.blocking``).

Like the asyncio runner it holds no SIP rule: it sends what the engine queued, waits on the socket
no longer than ``engine.next_deadline()`` (so the engine's retransmission timers fire on time) and
hands the engine whatever came, or the timer firing when nothing did. Under gevent the socket wait
yields to the other greenlets, as ``drivers.blocking`` explains::

    with BlockingUdp(server) as conn:
        sip = BlockingEndpoint(conn)
        resp = sip.request(register)          # final Response, or None (Timer F, or ``timeout``)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from pbxcheck.sip.engine import ClientTimedOut, Engine, Event, IncomingRequest, IncomingResponse
from pbxcheck.sip.flow import Addr, Flow
from pbxcheck.sip.ladder import IN, OUT, MessageLog
from pbxcheck.sip.message import Request, Response
from pbxcheck.sip.transaction import T1

__all__ = ["BlockingConnection", "BlockingEndpoint"]


class BlockingConnection(Protocol):
    """What ``drivers.blocking.BlockingUdp`` / ``BlockingTcp`` offer."""

    transport: str
    remote: Addr
    local: Addr

    def send(self, data: bytes) -> None: ...

    def recv(self, timeout: float | None = None) -> bytes | None: ...


class BlockingEndpoint:
    """One engine over one blocking connection. Requests from the server (an OPTIONS, a NOTIFY) land
    in ``incoming``; the caller answers them with ``respond`` or leaves them (they expire)."""

    def __init__(
        self,
        conn: BlockingConnection,
        *,
        t1: float = T1,
        log: MessageLog | None = None,
        clock: Callable[[], float] = time.monotonic,
        lazy_responses: bool = False,
    ) -> None:
        self.conn = conn
        self.engine = Engine(t1=t1, lazy_responses=lazy_responses)
        self.log = log
        self.clock = clock
        self.flow = Flow(conn.transport, conn.local, conn.remote, conn.send)
        self.incoming: list[Request] = []

    def request(
        self, req: Request, timeout: float | None = None, on_provisional: Callable[[Response], None] | None = None
    ) -> Response | None:
        """Run a client transaction to its end: the final response, or None when the engine's Timer
        B/F fired or ``timeout`` seconds (the caller's own bound) passed first."""
        now = self.clock()
        handle = self.engine.send_request(req, self.flow, now)
        self._flush()
        give_up = None if timeout is None else now + timeout
        while True:
            deadline = self.engine.next_deadline()
            if give_up is not None and (deadline is None or give_up < deadline):
                deadline = give_up
            wait = 1.0 if deadline is None else max(deadline - self.clock(), 0.0)
            data = self.conn.recv(wait) if wait > 0 else None
            now = self.clock()
            if data is not None:
                if self.log is not None:
                    self.log.record(IN, self.flow.transport, self.flow.local, self.flow.remote, data)
                events = self.engine.receive(data, self.flow, now)
            else:
                events = self.engine.timer_fired(now)
            self._flush()
            for event in events:
                if isinstance(event, IncomingResponse) and event.handle is handle:
                    if event.response.status >= 200:
                        return event.response
                    if on_provisional is not None:
                        on_provisional(event.response)
                elif isinstance(event, ClientTimedOut) and event.handle is handle:
                    return None
                else:
                    self._other(event)
            if give_up is not None and now >= give_up:
                self.engine.forget(handle)
                return None

    def respond(self, req: Request, resp: Response) -> None:
        self.engine.send_response(req, resp, self.flow, self.clock())
        self._flush()

    def send_ack(self, ack: Request) -> None:
        self.engine.send_ack(ack, self.flow, self.clock())
        self._flush()

    def _other(self, event: Event) -> None:
        if isinstance(event, IncomingRequest):
            self.incoming.append(event.request)
        # stray responses and unparseable bytes: nothing a blocking caller waits for

    def _flush(self) -> None:
        for data, flow in self.engine.data_to_send():
            if self.log is not None:
                self.log.record(OUT, flow.transport, flow.local, flow.remote, data)
            flow.send(data)
