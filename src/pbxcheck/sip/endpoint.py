"""A transaction-keeping endpoint on the sans-IO core, shared by the user agent and the central.

It sits between a driver (which hands it one message at a time with its :class:`Flow`) and a
transaction user (the UA, the central's SIP side). It does the RFC 3261 chores both need, in the
smallest form that is correct on loopback and over lossy UDP alike:

* client transactions (§17.1): match responses by (top Via branch, CSeq method), retransmit on UDP
  (INVITE until a provisional, others until the final, T1 doubling up to T2), ACK a non-2xx final
  to an INVITE in the same transaction, re-ACK a retransmitted 2xx from the dialog's ACK;
* server transactions (§17.2): absorb retransmitted requests by resending the last response,
  retransmit an INVITE's final response on UDP until the ACK comes (Timer G for non-2xx, §13.3.1.4
  for 2xx), and hand everything new to the transaction user;
* the message log (``sip.ladder``) of everything that went in or out.

Timers run on the asyncio loop; every timer is bounded (64*T1), so nothing outlives a lost peer.
The core's table-driven ``sip.transaction`` is the reference model; this module keeps to the same
rules with the handful of states the harness needs and no per-message allocation beyond a dict entry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pbxcheck.errors import SipError
from pbxcheck.sip.errors import SipParseError
from pbxcheck.sip.ids import new_branch, new_call_id, new_tag
from pbxcheck.sip.message import Message, Request, Response, to_bytes
from pbxcheck.sip.parser import parse_message
from pbxcheck.sip.transaction import make_ack
from pbxcheck.sip.transaction import server_key as core_server_key

from .flow import Flow
from .ladder import IN, OUT, MessageLog

T1 = 0.5  # RFC 3261 §17.1.1.1 round-trip estimate
T2 = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
TIMEOUT = 64 * T1  # Timer B / F / H: a transaction gives up after 32 s

_SERVER_CACHE_MAX = 60_000  # bounded memory under a registration flood

__all__ = ["ClientTransaction", "SipEndpoint", "SipTimeout", "new_branch", "new_call_id", "new_tag", "server_key"]


class SipTimeout(SipError):
    """No final response within the time allowed."""


@dataclass(eq=False)
class ClientTransaction:
    request: Request
    flow: Flow
    data: bytes
    final: asyncio.Future[Response]
    on_provisional: Callable[[Response], None] | None = None
    provisional: list[Response] = field(default_factory=list)
    ack: bytes | None = None  # the ACK sent for a non-2xx final (resent on its retransmission)
    task: asyncio.Task[None] | None = None

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    async def wait(self, timeout: float | None = TIMEOUT) -> Response:
        """The final response; SipTimeout after ``timeout`` seconds (None: wait as long as it takes)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.final), timeout)
        except TimeoutError:
            raise SipTimeout(f"no final response to {self.request.method} within {timeout} s") from None


@dataclass(eq=False)
class _ServerEntry:
    created: float
    flow: Flow
    invite: bool
    last: bytes | None = None
    last_status: int = 0
    task: asyncio.Task[None] | None = None


def server_key(req: Request) -> tuple[str, ...]:
    """The core's server-transaction key (RFC 3261 §17.2.3, RFC 2543 fallback for RFC 4475
    badbranch/inv2543), memoised on the request like the message's own cached properties: the
    endpoint needs it twice per request."""
    cached = req.__dict__.get("_server_key")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    key = core_server_key(req)
    req.__dict__["_server_key"] = key
    return key


class SipEndpoint:
    def __init__(self, *, on_request: Callable[[Request, Flow], None],
                 on_parse_error: Callable[[bytes, Flow, SipParseError], None] | None = None,
                 on_stray_response: Callable[[Response, Flow], None] | None = None,
                 log: MessageLog | None = None, t1: float = T1) -> None:
        self.on_request = on_request
        self.on_parse_error = on_parse_error
        self.on_stray_response = on_stray_response
        self.log = log
        self.t1 = t1
        self._client: dict[tuple[str, str], ClientTransaction] = {}
        self._server: dict[tuple[str, ...], _ServerEntry] = {}
        self._await_ack: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._acks_2xx: dict[tuple[str, int], tuple[bytes, Flow, float]] = {}
        self._last_prune = time.monotonic()
        self.received = 0
        self.handler_errors = 0
        self.last_error: BaseException | None = None

    # --- input ------------------------------------------------------------------------------------

    def receive(self, data: bytes, flow: Flow) -> None:
        """The driver's handler: one complete message from ``flow``."""
        self.received += 1
        if self.log is not None:
            self.log.record(IN, flow.transport, flow.local, flow.remote, data)
        if not data.strip(b"\r\n"):
            return  # a CRLF keep-alive (RFC 5626 §4.4.1)
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            if self.on_parse_error is not None:
                self.on_parse_error(data, flow, exc)
            return
        try:
            if isinstance(msg, Response):
                self._on_response(msg, flow)
            else:
                self._on_request(msg, flow)
        except SipParseError as exc:  # a header the TU needed turned out malformed
            if self.on_parse_error is not None:
                self.on_parse_error(data, flow, exc)
        except Exception as exc:  # a bug in a handler must not take the socket down
            self.handler_errors += 1
            self.last_error = exc
        now = time.monotonic()
        if now - self._last_prune > 1.0:
            self._prune(now)

    def _on_response(self, resp: Response, flow: Flow) -> None:
        key = (resp.branch or "", resp.cseq.method)
        tx = self._client.get(key)
        if tx is None:
            if resp.cseq.method == "INVITE" and 200 <= resp.status < 300:
                sent = self._acks_2xx.get((resp.call_id, resp.cseq.number))
                if sent is not None:  # a retransmitted 2xx: the ACK got lost, send it again
                    self._raw(sent[0], sent[1])
                    return
            if self.on_stray_response is not None:
                self.on_stray_response(resp, flow)
            return
        if tx.final.done():
            # a retransmitted final: re-ACK a non-2xx (§17.1.1.2); 2xx are the dialog's business
            if tx.ack is not None and resp.status >= 300:
                self._raw(tx.ack, tx.flow)
            elif resp.status < 300 and resp.status >= 200 and self.on_stray_response is not None:
                sent = self._acks_2xx.get((resp.call_id, resp.cseq.number))
                if sent is not None:
                    self._raw(sent[0], sent[1])
            return
        if resp.status < 200:
            tx.provisional.append(resp)
            if tx.on_provisional is not None:
                tx.on_provisional(resp)
            return
        if tx.is_invite and resp.status >= 300:
            tx.ack = to_bytes(make_ack(tx.request, resp))
            self._raw(tx.ack, tx.flow)
            # keep the transaction a while to re-ACK retransmissions (Timer D), then drop it
            asyncio.get_running_loop().call_later(self.t1 * 64 if not flow.reliable else 0.1,
                                                  self._client.pop, key, None)
        else:
            self._client.pop(key, None)
        tx.final.set_result(resp)
        if tx.task is not None:
            tx.task.cancel()

    def _on_request(self, req: Request, flow: Flow) -> None:
        if req.method == "ACK":
            key = server_key(req)
            entry = self._server.get(key)
            if entry is not None and entry.last_status >= 300:
                # ACK of a non-2xx final: part of the INVITE transaction, absorbed here
                if entry.task is not None:
                    entry.task.cancel()
                return
            ack_key = (req.call_id, req.cseq.number)
            task = self._await_ack.pop(ack_key, None)
            if task is not None:
                task.cancel()
            self.on_request(req, flow)
            return
        key = server_key(req)
        entry = self._server.get(key)
        if entry is not None:
            if entry.last is not None:
                self._raw(entry.last, entry.flow)  # retransmission: same answer again
            return
        self._server[key] = _ServerEntry(time.monotonic(), flow, req.method == "INVITE")
        if len(self._server) > _SERVER_CACHE_MAX:
            for k in list(self._server)[: _SERVER_CACHE_MAX // 4]:
                e = self._server.pop(k)
                if e.task is not None:
                    e.task.cancel()
        self.on_request(req, flow)

    # --- output -----------------------------------------------------------------------------------

    def _raw(self, data: bytes, flow: Flow) -> None:
        if self.log is not None:
            self.log.record(OUT, flow.transport, flow.local, flow.remote, data)
        flow.send(data)

    def send(self, msg: Message, flow: Flow) -> bytes:
        """Send a message outside any transaction (an ACK, a stateless answer)."""
        data = to_bytes(msg)
        self._raw(data, flow)
        return data

    def send_ack(self, ack: Request, flow: Flow) -> None:
        """Send the ACK for a 2xx and remember it for the 2xx's retransmissions (§13.2.2.4)."""
        data = self.send(ack, flow)
        self._acks_2xx[(ack.call_id, ack.cseq.number)] = (data, flow, time.monotonic())

    def request(self, req: Request, flow: Flow, *,
                on_provisional: Callable[[Response], None] | None = None) -> ClientTransaction:
        """Start a client transaction; ``await tx.wait(timeout)`` for the final response."""
        data = to_bytes(req)
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        tx = ClientTransaction(req, flow, data, fut, on_provisional)
        key = (req.branch or "", req.method)
        self._client[key] = tx
        self._raw(data, flow)
        if not flow.reliable:
            tx.task = asyncio.get_running_loop().create_task(self._retransmit_request(tx, key))
        else:
            tx.task = asyncio.get_running_loop().create_task(self._expire_request(tx, key))
        return tx

    async def _retransmit_request(self, tx: ClientTransaction, key: tuple[str, str]) -> None:
        interval = self.t1
        deadline = time.monotonic() + 64 * self.t1
        try:
            while not tx.final.done() and time.monotonic() < deadline:
                await asyncio.sleep(interval)
                if tx.final.done():
                    return
                if tx.is_invite and tx.provisional:
                    break  # §17.1.1.2: a provisional stops INVITE retransmissions
                self._raw(tx.data, tx.flow)
                interval = min(interval * 2, T2) if not (tx.provisional and not tx.is_invite) else T2
            if tx.is_invite and tx.provisional:
                return  # now the TU's own timer (ring timeout / Timer C) bounds the wait
            if not tx.final.done():
                self._client.pop(key, None)
                tx.final.set_exception(SipTimeout(f"no final response to {tx.request.method} in {64 * self.t1} s"))
                tx.final.exception()  # mark retrieved: a caller that stopped waiting is not an error
        except asyncio.CancelledError:
            pass

    async def _expire_request(self, tx: ClientTransaction, key: tuple[str, str]) -> None:
        try:
            await asyncio.sleep(64 * self.t1)
            if not tx.final.done() and not (tx.is_invite and tx.provisional):
                self._client.pop(key, None)
                tx.final.set_exception(SipTimeout(f"no final response to {tx.request.method} in {64 * self.t1} s"))
                tx.final.exception()
        except asyncio.CancelledError:
            pass

    def forget(self, tx: ClientTransaction) -> None:
        """Drop a client transaction the TU gave up on (e.g. a ring timeout after CANCEL)."""
        self._client.pop((tx.request.branch or "", tx.request.method), None)
        if tx.task is not None:
            tx.task.cancel()
        if not tx.final.done():
            tx.final.cancel()

    def respond(self, req: Request, flow: Flow, resp: Response) -> None:
        """Answer ``req`` (server transaction): cached for retransmitted requests; an INVITE's final
        response is retransmitted on UDP until the ACK arrives."""
        data = to_bytes(resp)
        entry = self._server.get(server_key(req))
        if entry is not None:
            entry.last = data
            entry.last_status = resp.status
        self._raw(data, flow)
        if req.method != "INVITE" or resp.status < 200 or flow.reliable:
            return
        loop = asyncio.get_running_loop()
        if resp.status < 300:
            key = (req.call_id, req.cseq.number)
            old = self._await_ack.pop(key, None)
            if old is not None:
                old.cancel()
            self._await_ack[key] = loop.create_task(self._retransmit_response(data, flow, key))
        elif entry is not None:
            entry.task = loop.create_task(self._retransmit_response(data, flow, None))

    async def _retransmit_response(self, data: bytes, flow: Flow, ack_key: tuple[str, int] | None) -> None:
        interval = self.t1
        deadline = time.monotonic() + 64 * self.t1
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(interval)
                self._raw(data, flow)
                interval = min(interval * 2, T2)
        except asyncio.CancelledError:
            pass
        finally:
            if ack_key is not None and self._await_ack.get(ack_key) is asyncio.current_task():
                del self._await_ack[ack_key]

    def awaiting_ack(self, call_id: str, cseq: int) -> bool:
        return (call_id, cseq) in self._await_ack

    # --- helpers ------------------------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        self._last_prune = now
        horizon = now - 64 * self.t1
        for k in list(self._server):
            e = self._server[k]
            if e.created >= horizon:
                break  # insertion order == age order
            del self._server[k]
            if e.task is not None:
                e.task.cancel()
        for k2 in [k for k, v in self._acks_2xx.items() if v[2] < horizon]:
            del self._acks_2xx[k2]

    def close(self) -> None:
        for tx in list(self._client.values()):
            if tx.task is not None:
                tx.task.cancel()
            if not tx.final.done():
                tx.final.cancel()
        self._client.clear()
        for e in self._server.values():
            if e.task is not None:
                e.task.cancel()
        self._server.clear()
        for t in self._await_ack.values():
            t.cancel()
        self._await_ack.clear()
