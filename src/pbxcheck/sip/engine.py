"""The one SIP engine: bytes and timer firings in, events and bytes out (sans-IO, as h11's Connection).

It owns every transaction of one SIP endpoint (all its flows) and runs them on the core's tables:
the four RFC 3261 §17 machines (``sip.transaction``) and the UAS core's 2xx-until-ACK table
(``sip.uas_core``). A runner (``sip.aio`` on asyncio, ``sip.sync`` on blocking sockets) feeds it and
carries out what it says; no SIP rule lives in a runner::

    events = engine.receive(data, flow, now)      # one whole message from a driver
    handle = engine.send_request(request, flow, now)
    engine.send_response(request, response, flow, now)
    events = engine.timer_fired(now)              # whenever now >= engine.next_deadline()
    for data, flow in engine.data_to_send(): flow.send(data)

Time is always passed in (``now``: any monotonic clock, in seconds), never read here, so a test
drives 64*T1 of retransmissions in microseconds. Every public call first fires the timers due at
``now``: a transaction whose Timer J ran out is gone *before* a new request is matched (§17.2.2),
even if the runner had not yet woken up for that timer.

Matching (§17.1.3, §17.2.3) is ``transaction.client_key`` / ``server_key``; a lazy engine
(``lazy_responses=True``, the load generator's) reads a response's key off its header text
(``parser.response_key``) and parses the rest only when the TU asks. What the engine hands
up (frozen dataclasses below): a new request (:class:`IncomingRequest`, including the ACK of a 2xx
and CANCEL), a response a client transaction passes up (:class:`IncomingResponse`), a client
transaction's Timer B/F (:class:`ClientTimedOut`), a 2xx never ACKed (:class:`AckTimedOut`), a
response matching nothing (:class:`StrayResponse`), bytes that do not parse (:class:`Unparseable`).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

from pbxcheck.sip import events as ev
from pbxcheck.sip.errors import SipParseError
from pbxcheck.sip.flow import Flow
from pbxcheck.sip.message import Headers, Message, Request, Response, to_bytes
from pbxcheck.sip.parser import parse_message, response_key
from pbxcheck.sip.transaction import (
    CLIENT_NON_INVITE,
    SERVER_NON_INVITE,
    T1,
    T2,
    T4,
    ClientTransaction,
    Kind,
    ServerTransaction,
    State,
    Table,
    Timer,
    client_key,
    duration,
    server_key,
)
from pbxcheck.sip.uas_core import AckWait

__all__ = [
    "AckTimedOut",
    "ClientHandle",
    "ClientTimedOut",
    "Engine",
    "Event",
    "IncomingRequest",
    "IncomingResponse",
    "StrayResponse",
    "Unparseable",
    "server_key_of",
]

# A flood of requests the TU never answers must not grow memory without bound (the oldest go first).
SERVER_MAX = 60_000

# Timers that only end a wait (D, I, J, K) and the engine's own clean-ups fire on the next whole
# second after they are due, never earlier: a registrar then wakes once a second for all of them,
# not once per REGISTER (retransmission timers A, E, G and the time-outs B, F, H stay exact).
_COARSE = frozenset({"D", "I", "J", "K", "abandon", "forget"})
# The time-outs B, F and H are nearly always cancelled (a final response came), yet a cancelled
# timer's slot stays in the heap until its deadline (64*T1 later): rounded up to 1/64 s they share
# a few thousand slots instead of one each (a client at 2,000 transactions/s: 64,000 heap entries).
_TIMEOUTS = frozenset({"B", "F", "H"})
_TICK = 64.0

# What a server transaction holds as its final response once that went out: every transaction's
# resend then maps (by this one object's id) to its own entry's bytes. A registrar keeps 64*T1 of
# completed transactions (Timer J); with the parsed Response and its Headers each kept four more
# objects for the garbage collector to walk (bench_sip_register: ~20 µs CPU per REGISTER).
_SENT = Response(0, "sent", Headers(()), b"")


def _answered_at_once_rows() -> bool:
    """Whether figure 8's table still says what the engine's short path for a non-INVITE server
    transaction does (checked at import: change a row and the engine runs every one on the table).

    The short path, for the common request a TU answers with a final response before anything else
    happens (every REGISTER, OPTIONS, BYE...): Init -> Trying passes the request up; a retransmission
    in Trying is absorbed; the final response is sent and Timer J started (Completed); in Completed a
    retransmission gets the final response's bytes again, an answer is ignored, and Timer J ends it.
    The engine then keeps a key, the flow, those bytes and Timer J (``_Entry.lite``), not a machine;
    anything else (a provisional first) turns it into a real ``ServerTransaction`` in Trying."""
    S, K = State, Kind
    final = (S.COMPLETED, ["send_response", "start:J"])
    return (
        _row(S.INIT, K.START) == (S.TRYING, ["pass_request"])
        and _row(S.TRYING, K.REQUEST) == (S.TRYING, [])
        and _row(S.TRYING, K.SEND_2XX) == _row(S.TRYING, K.SEND_FINAL) == final
        and _row(S.COMPLETED, K.REQUEST) == (S.COMPLETED, ["resend_response"])
        and _row(S.COMPLETED, K.TIMER_J) == (S.TERMINATED, ["terminated"])
        and all(_row(S.COMPLETED, k) is None for k in (K.SEND_1XX, K.SEND_2XX, K.SEND_FINAL))
    )


def _answered_rows() -> bool:
    """Whether figure 6's table still says what the engine's short path for a non-INVITE client
    transaction does (checked at import, as figure 8's above). The short path, for the common
    request answered with a final response before its first retransmission (a load generator's
    REGISTER): Init -> Trying sends the request and starts Timers E (unreliable only) and F; a final
    response in Trying cancels both, is passed up and starts Timer K (Completed; at once Terminated
    when K is zero); in Completed every response is absorbed and Timer K ends it. The engine then
    keeps a key, the flow, the request's bytes and those timers (``_Entry.client_lite``); anything
    else in Trying (Timer E or F firing, a provisional) turns it into a real ``ClientTransaction``
    in Trying with E and F running, which the table takes from there."""
    S, K, t = State, Kind, CLIENT_NON_INVITE
    final = (S.COMPLETED, ["cancel:E", "cancel:F", "pass_response", "start:K"])
    return (
        _row(S.INIT, K.START, t) == (S.TRYING, ["send_request", "start:E", "start:F"])
        and _row(S.TRYING, K.R2XX, t) == _row(S.TRYING, K.FINAL, t) == final
        and all(_row(S.COMPLETED, k, t) is None for k in (K.R1XX, K.R2XX, K.FINAL))
        and _row(S.COMPLETED, K.TIMER_K, t) == (S.TERMINATED, ["terminated"])
    )


def _row(state: State, kind: Kind, table: Table | None = None) -> tuple[State, list[str]] | None:
    row = (SERVER_NON_INVITE if table is None else table).get((state, kind))
    return None if row is None else (row[0], [str(op) for op in row[1]])


_SHORT_PATH = _answered_at_once_rows()
_CLIENT_SHORT_PATH = _answered_rows()


# --- events out -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class ClientHandle:
    """A client transaction started by ``send_request`` (compared by identity)."""

    request: Request
    flow: Flow
    key: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """A request for the TU: one that created a server transaction, an ACK for a 2xx, or a
    request outside any transaction machinery (an ACK nobody waits for)."""

    request: Request
    flow: Flow


@dataclass(frozen=True, slots=True)
class IncomingResponse:
    """A response a client transaction passes up (1xx, the final; retransmissions are absorbed)."""

    handle: ClientHandle
    response: Response


@dataclass(frozen=True, slots=True)
class ClientTimedOut:
    """Timer B or F fired: no final response (the TU acts as if a 408 came, §8.1.3.1)."""

    handle: ClientHandle
    timer: str


@dataclass(frozen=True, slots=True)
class AckTimedOut:
    """No ACK for our 2xx within 64*T1 (§13.3.1.4): the TU SHOULD end the session with a BYE."""

    invite: Request
    response: Response


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response that matches no client transaction (and is not a 2xx we re-ACKed)."""

    response: Response
    flow: Flow


@dataclass(frozen=True, slots=True)
class Unparseable:
    """Bytes that are not a SIP message we accept (a request among them may deserve a 400)."""

    data: bytes
    flow: Flow
    error: SipParseError


Event = IncomingRequest | IncomingResponse | ClientTimedOut | AckTimedOut | StrayResponse | Unparseable


def server_key_of(req: Request) -> tuple[str, ...]:
    """``transaction.server_key`` (memoised on the request)."""
    return server_key(req)


# --- what the engine keeps per machine -----------------------------------------------------------


class _Entry:
    """A machine (transaction or AckWait) with the flow it talks on and its pending deadlines.
    (A plain slotted class: one is made per transaction, and a dataclass's default factories cost
    a REGISTER flood a microsecond each.)"""

    __slots__ = (
        "machine", "flow", "handle", "handle_id", "timers", "wire", "alive", "memo_key", "lite", "client_lite", "key",
    )  # fmt: skip

    def __init__(
        self,
        machine: ClientTransaction | ServerTransaction | AckWait | None,
        flow: Flow,
        handle: ClientHandle | None = None,
        handle_id: int = 0,
        *,
        wire: dict[int, bytes] | None = None,
        memo_key: tuple[str, int] | None = None,
    ) -> None:
        self.machine = machine
        self.flow = flow
        self.handle = handle
        self.handle_id = handle_id  # id() of the handle, kept when a completed client transaction lets go of it
        self.timers: dict[str, float] = {}
        self.wire: dict[int, bytes] = {} if wire is None else wire  # id(message) -> bytes: serialise once
        self.alive = True
        self.memo_key = memo_key  # an ACK memo's (Call-ID, CSeq number)
        # a non-INVITE server transaction on the short path (see _answered_at_once_rows): its
        # state (Trying or Completed) and server key; None for every machine-backed entry
        self.lite: State | None = None
        # a non-INVITE client transaction on the short path (see _answered_rows): Trying or
        # Completed; its client key is ``key``
        self.client_lite: State | None = None
        self.key: tuple[str, ...] = ()

    def bytes_of(self, msg: Message) -> bytes:
        data = self.wire.get(id(msg))
        if data is None:
            data = self.wire[id(msg)] = to_bytes(msg)
        return data


class Engine:
    """All transactions of one SIP endpoint. ``t1``/``t2``/``t4``: RFC 3261 table 4 (a test or a
    time-compressed run may shrink them; the rules scale with them)."""

    def __init__(
        self,
        *,
        t1: float = T1,
        t2: float = T2,
        t4: float = T4,
        server_max: int = SERVER_MAX,
        lazy_responses: bool = False,
        short_path: bool = True,
    ) -> None:
        self.t1, self.t2, self.t4 = t1, t2, t4
        self.server_max = server_max
        # lazy_responses: a response whose top-Via branch and CSeq match a client transaction is
        # handed up without parsing From, To, Contact or the Via (its properties parse on first use,
        # and a malformed one raises then, not here); one matching nothing is parsed in full as before
        self.lazy_responses = lazy_responses
        # short_path: a non-INVITE server transaction answered with a final response at once is
        # held as its key, flow, response bytes and Timer J until something else happens, and a
        # non-INVITE client transaction as its key, flow, request bytes and timers until a final
        # response or anything else (False: a ServerTransaction / ClientTransaction from the start,
        # what the tests compare the short paths against)
        self.short_path = short_path and _SHORT_PATH
        self.client_short_path = short_path and _CLIENT_SHORT_PATH
        # Timers J, E, F, K by reliable/unreliable, from the table's durations (looked up once)
        self._timer_j = {r: duration(Timer.J, reliable=r, t1=t1, t4=t4) for r in (False, True)}
        self._timer_e = {r: duration(Timer.E, reliable=r, t1=t1, t4=t4) for r in (False, True)}
        self._timer_f = {r: duration(Timer.F, reliable=r, t1=t1, t4=t4) for r in (False, True)}
        self._timer_k = {r: duration(Timer.K, reliable=r, t1=t1, t4=t4) for r in (False, True)}
        self._clients: dict[tuple[str, ...], _Entry] = {}
        self._servers: dict[tuple[str, ...], _Entry] = {}
        self._ack_waits: dict[tuple[str, int], _Entry] = {}
        self._acks_sent: dict[tuple[str, int], _Entry] = {}  # our ACKs for 2xx, for re-ACKing (§13.2.2.4)
        # timers by deadline: a heap of distinct deadlines, each with the entries due then (no
        # per-timer tuple: with 64*T1 of transactions the GC would walk one per timer)
        self._heap: list[float] = []
        self._buckets: dict[float, list[_Entry]] = {}
        self._out: list[tuple[bytes, Flow]] = []
        # (deadline, entry): Timer K of the short path's Completed client transactions, in order
        self._timer_k_fifo: deque[tuple[float, _Entry]] = deque()
        # (deadline, entry): the first Timer E of the short path's client transactions over UDP, in
        # order (each is T1 from a later now); nearly all are cancelled by the answer, and a heap
        # slot each cost a push, a pop and a bucket (the load generator sends thousands a second)
        self._timer_e_fifo: deque[tuple[float, _Entry]] = deque()
        self._events: list[Event] = []
        self._now = 0.0

    # --- input --------------------------------------------------------------------------------------

    def receive(self, data: bytes, flow: Flow, now: float) -> list[Event]:
        """One complete message (a datagram, a framed stream message, a WebSocket frame) from ``flow``."""
        self._advance(now)
        if data[:1] not in b"\r\n" or data.strip(b"\r\n"):  # else a CRLF keep-alive (RFC 5626 §4.4.1)
            try:
                if self.lazy_responses and data[:4] == b"SIP/" and self._on_lazy_response(data, flow):
                    return self._take_events()
                msg = parse_message(data)
                if isinstance(msg, Response):
                    self._on_response(msg, flow)
                else:
                    self._on_request(msg, flow)
            except SipParseError as exc:  # the parse, or a header matching needed (a bad Via)
                self._events.append(Unparseable(data, flow, exc))
        return self._take_events()

    def _on_lazy_response(self, data: bytes, flow: Flow) -> bool:
        """The fast path for a response to one of our transactions; False: take the full one."""
        resp = parse_message(data, validate=False)
        key = response_key(resp)
        entry = self._clients.get(key) if key is not None else None
        if entry is None or not isinstance(resp, Response):
            return False
        self._to_client(entry, resp)
        return True

    def _on_response(self, resp: Response, flow: Flow) -> None:
        entry = self._clients.get(client_key(resp))
        if entry is not None:
            self._to_client(entry, resp)
            return
        if resp.cseq.method == "INVITE" and 200 <= resp.status < 300:
            sent = self._acks_sent.get((resp.call_id, resp.cseq.number))
            if sent is not None:
                # §13.2.2.4: the UAC core answers every retransmission of the 2xx with its ACK
                self._out.append((sent.wire[0], sent.flow))
                return
        self._events.append(StrayResponse(resp, flow))

    def _to_client(self, entry: _Entry, resp: Response) -> None:
        """A response matched to a client transaction: figure 6 on the short path, else its table."""
        state = entry.client_lite
        if state is None:
            assert isinstance(entry.machine, ClientTransaction)
            self._apply(entry, entry.machine.handle(ev.ResponseIn(resp)))
        elif state is State.COMPLETED:
            return  # absorbed
        elif resp.status < 200:  # a provisional: the table from here
            self._apply(entry, self._client_machine(entry).handle(ev.ResponseIn(resp)))
        else:  # Trying -> Completed: cancel E and F, pass up, start K
            timers = entry.timers
            timers.pop("E", None)
            timers.pop("F", None)
            assert entry.handle is not None
            self._events.append(IncomingResponse(entry.handle, resp))
            k = self._timer_k[entry.flow.reliable]
            if not k:  # reliable: Timer K is zero, Terminated at once
                self._remove(entry)
                return
            entry.client_lite = State.COMPLETED
            entry.handle = None  # Timer K only absorbs retransmissions: keep the key, not the messages
            entry.wire.clear()
            # Timer K: its one effect is the entry's removal, and every K is the same length from a
            # later now, so a FIFO holds them in deadline order (no heap, bucket or timers slot)
            self._timer_k_fifo.append((self._deadline("K", k), entry))

    def _client_machine(self, entry: _Entry) -> ClientTransaction:
        """The short path's Trying as a ``ClientTransaction`` (its request sent, E and F running)."""
        assert entry.handle is not None
        reliable = entry.flow.reliable
        started = {name: self._timer_e[reliable] if name == "E" else self._timer_f[reliable] for name in entry.timers}
        if not reliable:  # over UDP E waited in its FIFO and F was only noted: the heap runs both from now on
            for name in ("E", "F"):
                deadline = entry.timers.get(name)
                if deadline is not None:
                    self._schedule(entry, name, deadline)
        tx = ClientTransaction.trying(
            entry.handle.request, entry.key, started, reliable=reliable, t1=self.t1, t2=self.t2, t4=self.t4
        )
        entry.machine, entry.client_lite = tx, None
        return tx

    def _on_request(self, req: Request, flow: Flow) -> None:
        key = server_key(req)
        entry = self._servers.get(key)
        if entry is not None:
            if entry.lite is not None:  # figure 8 on the short path: Trying absorbs, Completed resends
                if entry.lite is State.COMPLETED:
                    self._out.append((entry.wire[0], entry.flow))
                return
            # a retransmission, or the ACK of a non-2xx (§17.2.3: ACK matches as INVITE)
            assert isinstance(entry.machine, ServerTransaction)
            self._apply(entry, entry.machine.handle(ev.RequestIn(req)))
            return
        if req.method in ("ACK", "INVITE"):
            wait = self._ack_waits.get((req.call_id, req.cseq.number))
            if wait is not None and (req.method == "ACK" or server_key_of(wait.machine.invite) == key):  # type: ignore[union-attr]
                assert isinstance(wait.machine, AckWait)
                self._apply(wait, wait.machine.handle(ev.RequestIn(req)))
                return
            if req.method == "ACK":
                self._events.append(IncomingRequest(req, flow))  # no one waits: the TU decides
                return
        if self.short_path and req.method != "INVITE":
            # Init -> Trying (pass the request up) without a machine; the TU's answer decides
            entry = _Entry(None, flow)
            entry.lite = State.TRYING
            entry.key = key
            self._add_server(key, entry)
            self._set_timer(entry, "abandon", 64 * self.t1)
            self._events.append(IncomingRequest(req, flow))
            return
        tx = ServerTransaction(req, reliable=flow.reliable, t1=self.t1, t2=self.t2, t4=self.t4, auto_trying=False)
        entry = _Entry(tx, flow)
        self._add_server(key, entry)
        if not tx.is_invite:
            # not an RFC timer: a request the TU never answers is forgotten after 64*T1, as every
            # other transaction is by then (an INVITE is in Proceeding and waits for its answer)
            self._set_timer(entry, "abandon", 64 * self.t1)
        self._apply(entry, tx.start())
        tx.release_request()  # the TU has it; only the key and the last response stay (GC cost)

    def _add_server(self, key: tuple[str, ...], entry: _Entry) -> None:
        self._servers[key] = entry
        if len(self._servers) > self.server_max:
            for old in list(self._servers)[: self.server_max // 4]:
                self._drop(self._servers.pop(old))

    # --- output -------------------------------------------------------------------------------------

    def send_request(self, req: Request, flow: Flow, now: float) -> ClientHandle:
        """Start a client transaction (§17.1); its responses come back as IncomingResponse."""
        self._advance(now)
        if self.client_short_path and req.method != "INVITE" and req.method != "ACK":
            return self._send_lite(req, flow)
        tx = ClientTransaction(req, reliable=flow.reliable, t1=self.t1, t2=self.t2, t4=self.t4)
        handle = ClientHandle(req, flow, tx.key)
        entry = _Entry(tx, flow, handle, id(handle))
        old = self._clients.get(tx.key)
        if old is not None:
            self._drop(old)
        self._clients[tx.key] = entry
        self._apply(entry, tx.start())
        return handle

    def _send_lite(self, req: Request, flow: Flow) -> ClientHandle:
        """Init -> Trying on the short path: send, start E (unreliable) and F (figure 6)."""
        key = client_key(req)
        handle = ClientHandle(req, flow, key)
        data = to_bytes(req)
        entry = _Entry(None, flow, handle, id(handle), wire={id(req): data})
        entry.client_lite = State.TRYING
        entry.key = key
        old = self._clients.get(key)
        if old is not None:
            self._drop(old)
        self._clients[key] = entry
        self._out.append((data, flow))
        e = self._timer_e[flow.reliable]
        f = self._timer_f[flow.reliable]
        assert f is not None
        if e is None:
            self._set_timer(entry, "F", f)
        else:
            # Over UDP, Timer F's deadline is only noted: Timer E comes first, and a transaction still
            # without its final answer then leaves the short path, which schedules F. Nearly every
            # one is answered before, and its F never enters the heap (nor its cancelled slot).
            deadline = entry.timers["E"] = self._deadline("E", e)
            self._timer_e_fifo.append((deadline, entry))
            entry.timers["F"] = self._deadline("F", f)
        return handle

    def send_response(self, req: Request, resp: Response, flow: Flow, now: float) -> None:
        """Answer ``req`` through its server transaction (statelessly when it is gone); a 2xx to an
        INVITE is then retransmitted by the UAS core until the ACK (§13.3.1.4)."""
        self._advance(now)
        entry = self._servers.get(server_key(req)) if req.method != "ACK" else None
        if entry is not None and entry.lite is not None:
            if entry.lite is State.COMPLETED:
                return  # figure 8 has no answer in Completed: ignored
            if resp.status >= 200:
                self._complete_lite(entry, to_bytes(resp))
                return
            # a provisional first: from here on the table runs it, in Trying as the short path left it
            entry.machine = ServerTransaction.answerless(
                entry.key, reliable=entry.flow.reliable, t1=self.t1, t2=self.t2, t4=self.t4
            )
            entry.lite = None
        if entry is not None and entry.alive:
            assert isinstance(entry.machine, ServerTransaction)
            entry.timers.pop("abandon", None)  # answered: the table's own timers take over
            tx = entry.machine
            self._apply(entry, tx.handle(ev.SendResponse(resp)))
            if resp.status >= 200 and tx.last_response is resp and not tx.terminated:
                # final: from now on only its bytes are resent (Completed state, figures 7 and 8)
                entry.wire = {id(_SENT): entry.bytes_of(resp)}
                tx.last_response = _SENT
        else:
            self._out.append((to_bytes(resp), flow))
        if req.method == "INVITE" and 200 <= resp.status < 300:
            wait = AckWait(req, resp, t1=self.t1, t2=self.t2)
            old = self._ack_waits.get(wait.key)
            if old is not None:
                self._drop(old)
            w = _Entry(wait, flow)
            self._ack_waits[wait.key] = w
            self._apply(w, wait.start())

    def _complete_lite(self, entry: _Entry, data: bytes) -> None:
        """Trying -> Completed on the TU's final answer: send it, start Timer J (figure 8)."""
        self._out.append((data, entry.flow))
        abandon = entry.timers.pop("abandon", None)
        seconds = self._timer_j[entry.flow.reliable]
        if not seconds:  # reliable: J is zero, Completed ends at once
            self._remove(entry)
            return
        entry.lite = State.COMPLETED
        entry.wire = {0: data}
        deadline = self._deadline("J", seconds)
        if deadline == abandon:  # the entry already sits in that deadline's bucket
            entry.timers["J"] = deadline
        else:
            self._set_timer(entry, "J", seconds)

    def send_ack(self, ack: Request, flow: Flow, now: float) -> None:
        """Send the ACK for a 2xx (a transaction of its own, §17.1.1.3) and answer the 2xx's
        retransmissions with it for 64*T1 (§13.2.2.4)."""
        self._advance(now)
        data = to_bytes(ack)
        self._out.append((data, flow))
        key = (ack.call_id, ack.cseq.number)
        old = self._acks_sent.get(key)
        if old is not None:
            self._drop(old)
        memo = _Entry(None, flow, wire={0: data}, memo_key=key)
        self._acks_sent[key] = memo
        self._set_timer(memo, "forget", 64 * self.t1)

    def send_stateless(self, data: bytes | Message, flow: Flow) -> None:
        """Bytes outside any transaction (a stateless 400, a probe's crafted message)."""
        self._out.append((data if isinstance(data, bytes) else to_bytes(data), flow))

    def forget(self, handle: ClientHandle) -> None:
        """Drop a client transaction the TU gave up on (its timers too)."""
        key = handle.key or client_key(handle.request)
        entry = self._clients.get(key)
        if entry is not None and entry.handle_id == id(handle):
            del self._clients[key]
            self._drop(entry)

    def awaiting_ack(self, call_id: str, cseq: int) -> bool:
        """Whether our 2xx to that INVITE still waits for its ACK."""
        return (call_id, cseq) in self._ack_waits

    def client_state(self, handle: ClientHandle) -> State | None:
        """The client transaction's state, None once it is over (for tests and diagnostics)."""
        entry = self._clients.get(handle.key or client_key(handle.request))
        if entry is None or entry.handle_id != id(handle):
            return None
        if entry.client_lite is not None:
            return entry.client_lite
        assert isinstance(entry.machine, ClientTransaction)
        return entry.machine.state

    def data_to_send(self) -> list[tuple[bytes, Flow]]:
        """Everything to transmit since the last call, in order; the runner sends it on each flow."""
        out, self._out = self._out, []
        return out

    # --- time ---------------------------------------------------------------------------------------

    def timer_fired(self, now: float) -> list[Event]:
        """Run every timer due at ``now``; the runner calls it at (or after) ``next_deadline()``."""
        self._advance(now)
        return self._take_events()

    def next_deadline(self) -> float | None:
        """When ``timer_fired`` must next be called (same clock as ``now``); None: no timer runs."""
        fifo = self._timer_k_fifo
        while fifo and not (fifo[0][1].alive and fifo[0][1].client_lite is State.COMPLETED):
            fifo.popleft()
        k = fifo[0][0] if fifo else None
        e = self._e_fifo_head()
        if e is not None and (k is None or e < k):
            k = e
        heap, buckets = self._heap, self._buckets
        while heap:
            deadline = heap[0]
            bucket = buckets[deadline]
            while bucket:
                entry = bucket[-1]
                if entry.alive and deadline in entry.timers.values():
                    return deadline if k is None else min(deadline, k)
                bucket.pop()  # cancelled, restarted or fired: a stale slot
            heapq.heappop(heap)
            del buckets[deadline]
        return k

    @property
    def counts(self) -> dict[str, int]:
        """Live state, for tests and a leak check."""
        return {
            "client": len(self._clients),
            "server": len(self._servers),
            "ack_waits": len(self._ack_waits),
            "acks_sent": len(self._acks_sent),
        }

    # --- internals ----------------------------------------------------------------------------------

    def _take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _e_fifo_head(self) -> float | None:
        """The first live deadline of the Timer E FIFO (stale ones dropped)."""
        fifo = self._timer_e_fifo
        while fifo:
            deadline, entry = fifo[0]
            if entry.alive and entry.client_lite is State.TRYING and entry.timers.get("E") == deadline:
                return deadline
            fifo.popleft()
        return None

    def _advance(self, now: float) -> None:
        heap, buckets, e_fifo = self._heap, self._buckets, self._timer_e_fifo
        while True:
            # the heap's timers and the E FIFO's in one deadline order (a retransmission before a
            # later time-out, as with one heap)
            e = self._e_fifo_head() if e_fifo else None
            if e is not None and e <= now and (not heap or e <= heap[0]):
                self._now = e
                entry = e_fifo.popleft()[1]
                del entry.timers["E"]
                self._fire(entry, "E")
                continue
            if not heap or heap[0] > now:
                break
            deadline = heapq.heappop(heap)
            self._now = deadline  # timers it restarts count from when it was due, not from now
            for entry in buckets.pop(deadline):
                if not entry.alive:
                    continue
                due = [name for name, when in entry.timers.items() if when == deadline]
                for name in due:
                    if entry.alive and entry.timers.get(name) == deadline:
                        del entry.timers[name]
                        self._fire(entry, name)
        fifo = self._timer_k_fifo
        while fifo and fifo[0][0] <= now:
            entry = fifo.popleft()[1]
            if entry.alive and entry.client_lite is State.COMPLETED:  # else dropped or replaced before
                self._remove(entry)
        self._now = now

    def _fire(self, entry: _Entry, name: str) -> None:
        machine = entry.machine
        if name == "forget":  # an ACK memo ran out
            self._forget_ack(entry)
        elif name == "abandon":
            if entry.lite is State.TRYING or (isinstance(machine, ServerTransaction) and machine.state is State.TRYING):
                self._remove(entry)
        elif entry.lite is not None:  # Timer J in Completed: Terminated
            self._remove(entry)
        elif entry.client_lite is State.TRYING:  # Timer E or F in Trying: the table from here (K: its FIFO)
            self._apply(entry, self._client_machine(entry).handle(ev.TimerFired(name)))
        elif machine is not None:
            self._apply(entry, machine.handle(ev.TimerFired(name)))

    def _deadline(self, name: str, seconds: float) -> float:
        deadline = self._now + seconds
        if name in _COARSE:
            return float(math.ceil(deadline))
        if name in _TIMEOUTS:
            return math.ceil(deadline * _TICK) / _TICK
        return deadline

    def _set_timer(self, entry: _Entry, name: str, seconds: float) -> None:
        self._schedule(entry, str(name), self._deadline(name, seconds))  # plain str: see _schedule

    def _schedule(self, entry: _Entry, name: str, deadline: float) -> None:
        entry.timers[name] = deadline  # a plain str key (a Timer member would make the dict a GC container)
        bucket = self._buckets.get(deadline)
        if bucket is None:
            bucket = self._buckets[deadline] = []
            heapq.heappush(self._heap, deadline)
        bucket.append(entry)

    def _apply(self, entry: _Entry, actions: list[ev.Action]) -> None:
        for a in actions:
            kind = type(a)  # the action classes are final: one identity test each, not isinstance
            if kind is ev.Send:
                self._out.append((entry.bytes_of(a.message), entry.flow))  # type: ignore[union-attr]
            elif kind is ev.StartTimer:
                self._set_timer(entry, a.name, a.seconds)  # type: ignore[union-attr]
            elif kind is ev.CancelTimer:
                entry.timers.pop(a.name, None)  # type: ignore[union-attr]
            elif kind is ev.ResponseReceived:
                assert isinstance(a, ev.ResponseReceived) and entry.handle is not None
                self._events.append(IncomingResponse(entry.handle, a.response))
                machine = entry.machine
                if (
                    a.response.status >= 200
                    and isinstance(machine, ClientTransaction)
                    and not machine.is_invite
                    and machine.state is State.COMPLETED
                ):
                    # Timer K only absorbs retransmissions: keep the key, not the messages (GC, caches)
                    machine.release()
                    entry.handle = None
                    entry.wire.clear()
            elif kind is ev.RequestReceived:
                self._events.append(IncomingRequest(a.request, entry.flow))  # type: ignore[union-attr]
            elif kind is ev.Timeout:
                assert isinstance(a, ev.Timeout)
                machine = entry.machine
                if entry.handle is not None:
                    self._events.append(ClientTimedOut(entry.handle, a.timer))
                elif isinstance(machine, AckWait):
                    self._events.append(AckTimedOut(machine.invite, machine.response))
                # Timer H (no ACK for our non-2xx final): nothing for the TU to do
            elif kind is ev.TransactionTerminated:
                self._remove(entry)
            # TransportFailed: the drivers report no send errors (Flow.send drops on a closed flow)

    def _remove(self, entry: _Entry) -> None:
        machine = entry.machine
        if entry.lite is not None:
            table, key = self._servers, entry.key
        elif entry.client_lite is not None:
            table, key = self._clients, entry.key
        elif isinstance(machine, ClientTransaction):
            table, key = self._clients, machine.key
        elif isinstance(machine, ServerTransaction):
            table, key = self._servers, machine.key
        elif isinstance(machine, AckWait):
            table, key = self._ack_waits, machine.key  # type: ignore[assignment]
        else:
            return
        if table.get(key) is entry:
            del table[key]
        self._drop(entry)

    def _forget_ack(self, entry: _Entry) -> None:
        if entry.memo_key is not None and self._acks_sent.get(entry.memo_key) is entry:
            del self._acks_sent[entry.memo_key]
        self._drop(entry)

    @staticmethod
    def _drop(entry: _Entry) -> None:
        # a cancelled timer's heap slot still holds the entry until its deadline: hold nothing then
        entry.alive = False
        entry.timers.clear()
        entry.wire.clear()
        entry.machine = entry.handle = None
