"""The asyncio runner over the sans-IO engine (``sip.engine``), for the central and the user agent.

It does three things and knows no SIP rule: it feeds the engine what a driver delivered (with the
loop's clock as ``now``), sends and logs what the engine queued, and keeps exactly one
``loop.call_at`` armed at ``engine.next_deadline()``. Retransmission counts, intervals, Timer J,
2xx-until-ACK: all in the engine's tables.

The transaction user sees the calls the central and the UA were written against::

    ep = SipEndpoint(on_request=handler, on_parse_error=..., log=MessageLog())
    UdpEndpoint.open(host, port, ep.receive)      # drivers call ep.receive(data, flow)
    tx = ep.request(req, flow, on_provisional=cb)  # client transaction
    resp = await tx.wait(timeout)                  # final response, or SipTimeout
    ep.respond(req, flow, resp)                    # server transaction (2xx kept until the ACK)
    ep.send_ack(ack, flow); ep.send(msg, flow)     # outside transactions
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from pbxcheck.errors import SipError
from pbxcheck.sip.engine import (
    AckTimedOut,
    ClientHandle,
    ClientTimedOut,
    Engine,
    Event,
    IncomingRequest,
    IncomingResponse,
    StrayResponse,
    Unparseable,
)
from pbxcheck.sip.errors import SipParseError
from pbxcheck.sip.flow import Flow
from pbxcheck.sip.ids import new_branch, new_call_id, new_tag
from pbxcheck.sip.ladder import IN, OUT, MessageLog
from pbxcheck.sip.message import Message, Request, Response, to_bytes
from pbxcheck.sip.transaction import T1

TIMEOUT = 64 * T1  # how long ``wait`` waits by default: Timer B/F's span

__all__ = ["TIMEOUT", "ClientTransaction", "SipEndpoint", "SipTimeout", "new_branch", "new_call_id", "new_tag"]


class SipTimeout(SipError):
    """No final response within the time allowed."""


@dataclass(eq=False)
class ClientTransaction:
    """The TU's view of a client transaction: ``final`` resolves with the final response (or
    SipTimeout when Timer B/F fires); provisional responses go to ``on_provisional``."""

    request: Request
    flow: Flow
    final: asyncio.Future[Response]
    handle: ClientHandle
    on_provisional: Callable[[Response], None] | None = None
    provisional: list[Response] = field(default_factory=list)

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    async def wait(self, timeout: float | None = TIMEOUT) -> Response:
        """The final response; SipTimeout after ``timeout`` seconds (None: as long as it takes)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.final), timeout)
        except TimeoutError:
            raise SipTimeout(f"no final response to {self.request.method} within {timeout} s") from None


class SipEndpoint:
    """One engine on the running loop. Callbacks: ``on_request(req, flow)`` for every new request
    (an ACK for a 2xx included), ``on_parse_error(data, flow, exc)``, ``on_stray_response(resp, flow)``,
    ``on_ack_timeout(invite, response)`` (no ACK for our 2xx in 64*T1: §13.3.1.4 says send BYE)."""

    def __init__(
        self,
        *,
        on_request: Callable[[Request, Flow], None],
        on_parse_error: Callable[[bytes, Flow, SipParseError], None] | None = None,
        on_stray_response: Callable[[Response, Flow], None] | None = None,
        on_ack_timeout: Callable[[Request, Response], None] | None = None,
        log: MessageLog | None = None,
        t1: float = T1,
        engine: Engine | None = None,
    ) -> None:
        self.on_request = on_request
        self.on_parse_error = on_parse_error
        self.on_stray_response = on_stray_response
        self.on_ack_timeout = on_ack_timeout
        self.log = log
        self.engine = engine if engine is not None else Engine(t1=t1)
        self._client: dict[ClientHandle, ClientTransaction] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.received = 0
        self.handler_errors = 0
        self.last_error: BaseException | None = None
        self.closed = False
        self._depth = 0  # > 0 while handlers run: their calls leave the flush and re-arm to the outer one

    # --- the loop -----------------------------------------------------------------------------------

    def _now(self) -> float:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop.time()

    def _after(self, events: list[Event]) -> None:
        """Hand the engine's events to the TU, send what it queued, re-arm the one timer."""
        if events:
            self._depth += 1
            try:
                for event in events:
                    try:
                        self._dispatch(event)
                    except SipParseError as exc:  # a header the TU needed turned out malformed
                        if self.on_parse_error is not None and isinstance(event, IncomingRequest):
                            self.on_parse_error(to_bytes(event.request), event.flow, exc)
                    except Exception as exc:  # a bug in a handler must not take the socket down
                        self.handler_errors += 1
                        self.last_error = exc
            finally:
                self._depth -= 1
        if self._depth:
            # a handler answering within the dispatch (a REGISTER's 401/200): the outer call sends
            # it and re-arms once, not once per answer (the engine's queue keeps the order)
            return
        self._flush()
        self._arm()

    def _flush(self) -> None:
        for data, flow in self.engine.data_to_send():
            if self.log is not None:
                self.log.record(OUT, flow.transport, flow.local, flow.remote, data)
            flow.send(data)

    def _arm(self) -> None:
        deadline = self.engine.next_deadline()
        if deadline == self._timer_at or self.closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            assert self._loop is not None
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._after(self.engine.timer_fired(self._now()))

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, IncomingRequest):
            self.on_request(event.request, event.flow)
        elif isinstance(event, IncomingResponse):
            tx = self._client.get(event.handle)
            if tx is None:
                return
            resp = event.response
            if resp.status < 200:
                tx.provisional.append(resp)
                if tx.on_provisional is not None:
                    tx.on_provisional(resp)
                return
            if not tx.final.done():
                tx.final.set_result(resp)
            self._client.pop(event.handle, None)
        elif isinstance(event, ClientTimedOut):
            tx = self._client.pop(event.handle, None)
            if tx is not None and not tx.final.done():
                tx.final.set_exception(
                    SipTimeout(
                        f"no final response to {tx.request.method} in {64 * self.engine.t1} s (Timer {event.timer})"
                    )
                )
                tx.final.exception()  # retrieved: a caller that stopped waiting is not an error
        elif isinstance(event, StrayResponse):
            if self.on_stray_response is not None:
                self.on_stray_response(event.response, event.flow)
        elif isinstance(event, Unparseable):
            if self.on_parse_error is not None:
                self.on_parse_error(event.data, event.flow, event.error)
        elif isinstance(event, AckTimedOut):
            if self.on_ack_timeout is not None:
                self.on_ack_timeout(event.invite, event.response)

    # --- input --------------------------------------------------------------------------------------

    def receive(self, data: bytes, flow: Flow) -> None:
        """The driver's handler: one complete message from ``flow``."""
        self.received += 1
        if self.log is not None:
            self.log.record(IN, flow.transport, flow.local, flow.remote, data)
        self._after(self.engine.receive(data, flow, self._now()))

    # --- output -------------------------------------------------------------------------------------

    def request(
        self, req: Request, flow: Flow, *, on_provisional: Callable[[Response], None] | None = None
    ) -> ClientTransaction:
        """Start a client transaction; ``await tx.wait(timeout)`` for the final response."""
        now = self._now()
        assert self._loop is not None
        handle = self.engine.send_request(req, flow, now)
        tx = ClientTransaction(req, flow, self._loop.create_future(), handle, on_provisional)
        self._client[handle] = tx
        self._after([])
        return tx

    def respond(self, req: Request, flow: Flow, resp: Response) -> None:
        """Answer ``req`` through its server transaction."""
        self.engine.send_response(req, resp, flow, self._now())
        self._after([])

    def send_ack(self, ack: Request, flow: Flow) -> None:
        """Send the ACK for a 2xx; the engine re-sends it to the 2xx's retransmissions."""
        self.engine.send_ack(ack, flow, self._now())
        self._after([])

    def send(self, msg: Message, flow: Flow) -> bytes:
        """Send a message outside any transaction (a stateless answer, a crafted request)."""
        data = to_bytes(msg)
        self.send_bytes(data, flow)
        return data

    def send_bytes(self, data: bytes, flow: Flow) -> None:
        """Send raw bytes outside any transaction (a stateless 400 built by ``validate``)."""
        self.engine.send_stateless(data, flow)
        self._flush()

    def forget(self, tx: ClientTransaction) -> None:
        """Drop a client transaction the TU gave up on (e.g. a ring timeout after CANCEL)."""
        self.engine.forget(tx.handle)
        self._client.pop(tx.handle, None)
        if not tx.final.done():
            tx.final.cancel()

    def awaiting_ack(self, call_id: str, cseq: int) -> bool:
        return self.engine.awaiting_ack(call_id, cseq)

    def close(self) -> None:
        """Stop every timer and fail every pending client transaction (the socket is going away)."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for tx in list(self._client.values()):
            if not tx.final.done():
                tx.final.cancel()
        self._client.clear()
