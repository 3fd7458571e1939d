"""RFC 3261 section 17 transactions as table-driven, sans-IO state machines.

One table per kind maps ``(State, Kind) -> (State, operations)``; the four tables below are the
whole behaviour, transcribed from the RFC's figures 5-8 (RFC 3261 17.1.1.2, 17.1.2.2, 17.2.1,
17.2.2). A pair that is not in a table is ignored (a stale timer, a late retransmission), which is
what the RFC's "MUST be absorbed/discarded" rules amount to.

States (:class:`State`), the events a machine classifies its input into (:class:`Kind`) and the
operations (:class:`Op`: a :class:`Verb` and, for timer verbs, a :class:`Timer`) are enums, so a
typo in a table is an ``AttributeError`` at import, not a silently dead row. ``State`` and ``Kind``
are ``StrEnum``: they print as the RFC's figure labels ("Calling", "3xx-6xx", "timer_A").

Time never comes from a clock here: ``StartTimer(name, seconds)`` goes out, ``TimerFired(name)``
comes in. On reliable transports the retransmission timers (A, E, G) are never started and the
wait timers D, I, J, K are zero, which the machine applies at once (no timer round trip).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from pbxcheck.sip.errors import TransactionError
from pbxcheck.sip.events import (
    Action,
    CancelTimer,
    Event,
    RequestIn,
    RequestReceived,
    ResponseIn,
    ResponseReceived,
    Send,
    SendResponse,
    StartTimer,
    Timeout,
    TimerFired,
    TransactionTerminated,
    TransportError,
    TransportFailed,
)
from pbxcheck.sip.headers import MAGIC_COOKIE
from pbxcheck.sip.ids import new_branch as new_branch  # alias: the one generator is ids.py
from pbxcheck.sip.message import Headers, Message, Request, Response, make_response

T1, T2, T4 = 0.5, 4.0, 5.0  # RFC 3261 17.1.1.1 / table 4 defaults, seconds


class State(StrEnum):
    INIT = "Init"
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class Kind(StrEnum):
    """What a machine's input is classified into (the arrows' labels in figures 5-8)."""

    START = "start"
    R1XX = "1xx"
    R2XX = "2xx"
    FINAL = "3xx-6xx"
    REQUEST = "request"  # a retransmission of the request that created a server transaction
    ACK = "ack"
    SEND_1XX = "send_1xx"
    SEND_2XX = "send_2xx"
    SEND_FINAL = "send_3xx-6xx"
    TRANSPORT_ERROR = "transport_error"
    TIMER_A = "timer_A"
    TIMER_B = "timer_B"
    TIMER_D = "timer_D"
    TIMER_E = "timer_E"
    TIMER_F = "timer_F"
    TIMER_G = "timer_G"
    TIMER_H = "timer_H"
    TIMER_I = "timer_I"
    TIMER_J = "timer_J"
    TIMER_K = "timer_K"


class Timer(StrEnum):
    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 (the RFC's name)
    J = "J"
    K = "K"


class Verb(Enum):
    SEND_REQUEST = "send_request"
    SEND_ACK = "send_ack"
    SEND_RESPONSE = "send_response"
    RESEND_RESPONSE = "resend_response"
    SEND_TRYING = "send_trying"
    PASS_REQUEST = "pass_request"
    PASS_RESPONSE = "pass_response"
    START = "start"
    CANCEL = "cancel"
    BACKOFF = "backoff"  # restart at twice its last interval (capped at T2 for E and G, not A)
    T2 = "t2"  # restart at T2 (Timer E once a provisional came, 17.1.2.2)
    TIMEOUT = "timeout"
    TRANSPORT_FAILED = "transport_failed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class Op:
    verb: Verb
    timer: Timer | None = None

    def __str__(self) -> str:
        return self.verb.value + (f":{self.timer}" if self.timer else "")


Table = dict[tuple[State, Kind], tuple[State, tuple[Op, ...]]]
FINAL = Kind.FINAL

S, K, Tm = State, Kind, Timer
SEND_REQUEST, SEND_ACK, SEND_RESPONSE = Op(Verb.SEND_REQUEST), Op(Verb.SEND_ACK), Op(Verb.SEND_RESPONSE)
RESEND_RESPONSE, SEND_TRYING = Op(Verb.RESEND_RESPONSE), Op(Verb.SEND_TRYING)
PASS_REQUEST, PASS_RESPONSE = Op(Verb.PASS_REQUEST), Op(Verb.PASS_RESPONSE)
TRANSPORT_FAILED, TERMINATED = Op(Verb.TRANSPORT_FAILED), Op(Verb.TERMINATED)


def start(t: Timer) -> Op:
    return Op(Verb.START, t)


def cancel(t: Timer) -> Op:
    return Op(Verb.CANCEL, t)


def backoff(t: Timer) -> Op:
    return Op(Verb.BACKOFF, t)


def timeout(t: Timer) -> Op:
    return Op(Verb.TIMEOUT, t)


# RFC 3261 17.1.1.2, figure 5: INVITE client transaction.
CLIENT_INVITE: Table = {
    (S.INIT, K.START): (S.CALLING, (SEND_REQUEST, start(Tm.A), start(Tm.B))),
    (S.CALLING, K.TIMER_A): (S.CALLING, (SEND_REQUEST, backoff(Tm.A))),
    (S.CALLING, K.TIMER_B): (S.TERMINATED, (cancel(Tm.A), timeout(Tm.B), TERMINATED)),
    (S.CALLING, K.R1XX): (S.PROCEEDING, (cancel(Tm.A), cancel(Tm.B), PASS_RESPONSE)),
    (S.CALLING, K.R2XX): (S.TERMINATED, (cancel(Tm.A), cancel(Tm.B), PASS_RESPONSE, TERMINATED)),
    (S.CALLING, K.FINAL): (S.COMPLETED, (cancel(Tm.A), cancel(Tm.B), PASS_RESPONSE, SEND_ACK, start(Tm.D))),
    (S.CALLING, K.TRANSPORT_ERROR): (S.TERMINATED, (cancel(Tm.A), cancel(Tm.B), TRANSPORT_FAILED, TERMINATED)),
    (S.PROCEEDING, K.R1XX): (S.PROCEEDING, (PASS_RESPONSE,)),
    (S.PROCEEDING, K.R2XX): (S.TERMINATED, (PASS_RESPONSE, TERMINATED)),
    (S.PROCEEDING, K.FINAL): (S.COMPLETED, (PASS_RESPONSE, SEND_ACK, start(Tm.D))),
    (S.PROCEEDING, K.TRANSPORT_ERROR): (S.TERMINATED, (TRANSPORT_FAILED, TERMINATED)),
    (S.COMPLETED, K.FINAL): (S.COMPLETED, (SEND_ACK,)),  # retransmitted final: ACK again, not passed up
    (S.COMPLETED, K.TIMER_D): (S.TERMINATED, (TERMINATED,)),
    (S.COMPLETED, K.TRANSPORT_ERROR): (S.TERMINATED, (cancel(Tm.D), TRANSPORT_FAILED, TERMINATED)),
}

# RFC 3261 17.1.2.2, figure 6: non-INVITE client transaction.
CLIENT_NON_INVITE: Table = {
    (S.INIT, K.START): (S.TRYING, (SEND_REQUEST, start(Tm.E), start(Tm.F))),
    (S.TRYING, K.TIMER_E): (S.TRYING, (SEND_REQUEST, backoff(Tm.E))),
    (S.TRYING, K.TIMER_F): (S.TERMINATED, (cancel(Tm.E), timeout(Tm.F), TERMINATED)),
    (S.TRYING, K.R1XX): (S.PROCEEDING, (PASS_RESPONSE,)),
    (S.TRYING, K.R2XX): (S.COMPLETED, (cancel(Tm.E), cancel(Tm.F), PASS_RESPONSE, start(Tm.K))),
    (S.TRYING, K.FINAL): (S.COMPLETED, (cancel(Tm.E), cancel(Tm.F), PASS_RESPONSE, start(Tm.K))),
    (S.TRYING, K.TRANSPORT_ERROR): (S.TERMINATED, (cancel(Tm.E), cancel(Tm.F), TRANSPORT_FAILED, TERMINATED)),
    (S.PROCEEDING, K.TIMER_E): (S.PROCEEDING, (SEND_REQUEST, Op(Verb.T2, Tm.E))),
    (S.PROCEEDING, K.TIMER_F): (S.TERMINATED, (cancel(Tm.E), timeout(Tm.F), TERMINATED)),
    (S.PROCEEDING, K.R1XX): (S.PROCEEDING, (PASS_RESPONSE,)),
    (S.PROCEEDING, K.R2XX): (S.COMPLETED, (cancel(Tm.E), cancel(Tm.F), PASS_RESPONSE, start(Tm.K))),
    (S.PROCEEDING, K.FINAL): (S.COMPLETED, (cancel(Tm.E), cancel(Tm.F), PASS_RESPONSE, start(Tm.K))),
    (S.PROCEEDING, K.TRANSPORT_ERROR): (S.TERMINATED, (cancel(Tm.E), cancel(Tm.F), TRANSPORT_FAILED, TERMINATED)),
    (S.COMPLETED, K.TIMER_K): (S.TERMINATED, (TERMINATED,)),
}

# RFC 3261 17.2.1, figure 7: INVITE server transaction.
SERVER_INVITE: Table = {
    (S.INIT, K.START): (S.PROCEEDING, (SEND_TRYING, PASS_REQUEST)),
    (S.PROCEEDING, K.REQUEST): (S.PROCEEDING, (RESEND_RESPONSE,)),
    (S.PROCEEDING, K.SEND_1XX): (S.PROCEEDING, (SEND_RESPONSE,)),
    (S.PROCEEDING, K.SEND_2XX): (S.TERMINATED, (SEND_RESPONSE, TERMINATED)),
    (S.PROCEEDING, K.SEND_FINAL): (S.COMPLETED, (SEND_RESPONSE, start(Tm.G), start(Tm.H))),
    (S.PROCEEDING, K.TRANSPORT_ERROR): (S.TERMINATED, (TRANSPORT_FAILED, TERMINATED)),
    (S.COMPLETED, K.REQUEST): (S.COMPLETED, (RESEND_RESPONSE,)),
    (S.COMPLETED, K.TIMER_G): (S.COMPLETED, (RESEND_RESPONSE, backoff(Tm.G))),
    (S.COMPLETED, K.ACK): (S.CONFIRMED, (cancel(Tm.G), cancel(Tm.H), start(Tm.I))),
    (S.COMPLETED, K.TIMER_H): (S.TERMINATED, (cancel(Tm.G), timeout(Tm.H), TERMINATED)),
    (S.COMPLETED, K.TRANSPORT_ERROR): (S.TERMINATED, (cancel(Tm.G), cancel(Tm.H), TRANSPORT_FAILED, TERMINATED)),
    (S.CONFIRMED, K.ACK): (S.CONFIRMED, ()),  # absorbed
    (S.CONFIRMED, K.REQUEST): (S.CONFIRMED, ()),
    (S.CONFIRMED, K.TIMER_I): (S.TERMINATED, (TERMINATED,)),
}

# RFC 3261 17.2.2, figure 8: non-INVITE server transaction.
SERVER_NON_INVITE: Table = {
    (S.INIT, K.START): (S.TRYING, (PASS_REQUEST,)),
    (S.TRYING, K.REQUEST): (S.TRYING, ()),  # retransmission before any response: discarded
    (S.TRYING, K.SEND_1XX): (S.PROCEEDING, (SEND_RESPONSE,)),
    (S.TRYING, K.SEND_2XX): (S.COMPLETED, (SEND_RESPONSE, start(Tm.J))),
    (S.TRYING, K.SEND_FINAL): (S.COMPLETED, (SEND_RESPONSE, start(Tm.J))),
    (S.PROCEEDING, K.REQUEST): (S.PROCEEDING, (RESEND_RESPONSE,)),
    (S.PROCEEDING, K.SEND_1XX): (S.PROCEEDING, (SEND_RESPONSE,)),
    (S.PROCEEDING, K.SEND_2XX): (S.COMPLETED, (SEND_RESPONSE, start(Tm.J))),
    (S.PROCEEDING, K.SEND_FINAL): (S.COMPLETED, (SEND_RESPONSE, start(Tm.J))),
    (S.PROCEEDING, K.TRANSPORT_ERROR): (S.TERMINATED, (TRANSPORT_FAILED, TERMINATED)),
    (S.COMPLETED, K.REQUEST): (S.COMPLETED, (RESEND_RESPONSE,)),
    (S.COMPLETED, K.TIMER_J): (S.TERMINATED, (TERMINATED,)),
    (S.COMPLETED, K.TRANSPORT_ERROR): (S.TERMINATED, (cancel(Tm.J), TRANSPORT_FAILED, TERMINATED)),
}

_TIMER_KIND = {t.value: Kind("timer_" + t.value) for t in Timer}
# The actions that carry nothing but a timer are made once (frozen: they are shared, never changed);
# a started timer's few distinct durations are made on first use.
_CANCEL = {t: CancelTimer(t) for t in Timer}
_TIMEOUT = {t: Timeout(t) for t in Timer}
_FIRED = {t: TimerFired(t) for t in Timer}
_STARTED: dict[tuple[Timer, float], StartTimer] = {}
_PLAIN = {t: str(t.value) for t in Timer}  # Timer.X.value goes through the enum's descriptor each time


def _status_class(status: int) -> Kind:
    if status < 200:
        return K.R1XX
    return K.R2XX if status < 300 else K.FINAL


_SEND_CLASS = {K.R1XX: K.SEND_1XX, K.R2XX: K.SEND_2XX, K.FINAL: K.SEND_FINAL}


def duration(name: Timer, *, reliable: bool, t1: float = T1, t4: float = T4) -> float | None:
    """How long timer ``name`` runs. None: not started (retransmission timers on reliable
    transports); 0: fires at once. RFC 3261 17.1.1.2 (A, B, D), 17.1.2.2 (E, F, K), 17.2.1 (G, H,
    I), 17.2.2 (J); table 4."""
    unreliable = not reliable
    if name in (Tm.B, Tm.F, Tm.H):
        return 64 * t1
    if name in (Tm.A, Tm.E, Tm.G):
        return t1 if unreliable else None
    if name is Tm.D:
        return 32.0 if unreliable else 0.0  # "at least 32 seconds for unreliable transports"
    if name is Tm.J:
        return 64 * t1 if unreliable else 0.0
    return t4 if unreliable else 0.0  # I, K


class _Transaction:
    # slots: a registrar keeps 64*T1 of completed transactions; no per-object dict for the GC to walk
    __slots__ = ("table", "request", "reliable", "t1", "t2", "t4", "state", "last_response", "_interval", "is_invite")
    table: Table
    request: Request

    def __init__(self, request: Request, *, reliable: bool, t1: float = T1, t2: float = T2, t4: float = T4) -> None:
        self.request = request
        self.reliable = reliable
        self.t1, self.t2, self.t4 = t1, t2, t4
        self.state = State.INIT
        self.last_response: Response | None = None
        self._interval: dict[Timer, float] = {}
        self.is_invite = request.method == "INVITE"

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    @property
    def key(self) -> tuple[str, ...]:
        raise NotImplementedError

    def start(self) -> list[Action]:
        if self.state is not State.INIT:
            raise TransactionError("transaction already started")
        return self._run(K.START, None)

    def handle(self, event: Event) -> list[Action]:
        if self.state is State.INIT:
            raise TransactionError("transaction not started")
        return self._run(self._classify(event), event)

    def _classify(self, event: Event) -> Kind:
        if isinstance(event, TimerFired):
            kind = _TIMER_KIND.get(event.name)
            if kind is None:
                raise TransactionError(f"no timer {event.name!r} in RFC 3261 17")
            return kind
        if isinstance(event, TransportError):
            return K.TRANSPORT_ERROR
        return self._classify_message(event)

    def _classify_message(self, event: Event) -> Kind:
        raise NotImplementedError

    def _run(self, kind: Kind, event: Event | None) -> list[Action]:
        entry = self.table.get((self.state, kind))
        if entry is None:
            return []
        self.state, ops = entry
        actions: list[Action] = []
        for op in ops:
            done = self._do(op, event)
            if done:
                actions += done
        return actions

    # --- timers ---
    def _duration(self, name: Timer) -> float | None:
        return duration(name, reliable=self.reliable, t1=self.t1, t4=self.t4)

    def _start_timer(self, name: Timer, seconds: float | None) -> list[Action]:
        if seconds is None:
            return []
        if seconds == 0:
            return self._run(_TIMER_KIND[name], _FIRED[name])
        self._interval[_PLAIN[name]] = seconds  # type: ignore[index]  # plain str key: an enum member would make the dict a GC container
        started = _STARTED.get((name, seconds))
        if started is None:
            started = StartTimer(name, seconds)
            if len(_STARTED) < 256:  # t1/t2/t4 are per engine: a few distinct values each
                _STARTED[(name, seconds)] = started
        return [started]

    def _do(self, op: Op, event: Event | None) -> list[Action]:
        verb, timer = op.verb, op.timer
        if timer is not None:
            if verb is Verb.START:
                return self._start_timer(timer, self._duration(timer))
            if verb is Verb.BACKOFF:
                doubled = 2 * self._interval.get(timer, self.t1)
                return self._start_timer(timer, doubled if timer is Tm.A else min(doubled, self.t2))
            if verb is Verb.T2:
                return self._start_timer(timer, self.t2)
            if verb is Verb.CANCEL:
                # only timers that were actually started need cancelling
                return [_CANCEL[timer]] if self._interval.pop(timer, None) is not None else []
            return [_TIMEOUT[timer]]  # Verb.TIMEOUT
        if verb is Verb.TRANSPORT_FAILED:
            return [TransportFailed(event.reason if isinstance(event, TransportError) else "")]
        if verb is Verb.TERMINATED:
            self._interval.clear()
            return [TransactionTerminated(self.key)]
        return self._do_message(verb, event)

    def _do_message(self, verb: Verb, event: Event | None) -> list[Action]:
        raise NotImplementedError


class ClientTransaction(_Transaction):
    """RFC 3261 17.1: send ``request``; feed responses, timers and transport errors."""

    __slots__ = ("ack", "_key")

    def __init__(self, request: Request, *, reliable: bool, t1: float = T1, t2: float = T2, t4: float = T4) -> None:
        if request.method == "ACK":
            raise TransactionError("ACK does not create a client transaction (RFC 3261 17.1)")
        super().__init__(request, reliable=reliable, t1=t1, t2=t2, t4=t4)
        self.table = CLIENT_INVITE if self.is_invite else CLIENT_NON_INVITE
        self.ack: Request | None = None
        self._key = client_key(request)

    @property
    def key(self) -> tuple[str, ...]:
        return self._key

    @classmethod
    def trying(
        cls,
        request: Request,
        key: tuple[str, ...],
        started: dict[str, float | None],
        *,
        reliable: bool,
        t1: float = T1,
        t2: float = T2,
        t4: float = T4,
    ) -> ClientTransaction:
        """A non-INVITE client transaction in Trying whose request went out and whose timers
        ``started`` run (as ``start()`` leaves it): the engine makes one only when something other
        than a final response comes first, having kept the transaction as a key until then."""
        tx = cls.__new__(cls)
        _Transaction.__init__(tx, request, reliable=reliable, t1=t1, t2=t2, t4=t4)
        if tx.is_invite:
            raise TransactionError("only a non-INVITE client transaction resumes in Trying")
        tx.table = CLIENT_NON_INVITE
        tx.ack = None
        tx._key = key
        tx.state = State.TRYING
        tx._interval = {name: seconds for name, seconds in started.items() if seconds}  # type: ignore[misc]
        return tx

    def release(self) -> None:
        """Let go of the request and the final response once Completed (non-INVITE): figure 6 never
        looks at them again, only Timer K's firing and absorbed retransmissions come. A load
        generator keeps 5 s of completed transactions over UDP (Timer K); holding each parsed
        request and response multiplied the objects alive (bench_sip_load). ``request`` is None
        afterwards."""
        if self.is_invite or self.state is not State.COMPLETED:
            raise TransactionError("only a Completed non-INVITE client transaction lets go of its messages")
        self.request = None  # type: ignore[assignment]
        self.last_response = None

    def _classify_message(self, event: Event) -> Kind:
        if not isinstance(event, ResponseIn):
            raise TransactionError(f"a client transaction takes responses, not {type(event).__name__}")
        return _status_class(event.response.status)

    def _do_message(self, verb: Verb, event: Event | None) -> list[Action]:
        if verb is Verb.SEND_REQUEST:
            return [Send(self.request)]
        assert isinstance(event, ResponseIn)
        self.last_response = event.response
        if verb is Verb.PASS_RESPONSE:
            return [ResponseReceived(event.response)]
        if verb is Verb.SEND_ACK:
            self.ack = make_ack(self.request, event.response)
            return [Send(self.ack)]
        raise AssertionError(verb)


class ServerTransaction(_Transaction):
    """RFC 3261 17.2: created by a request; feed retransmissions/ACK (``RequestIn``), the TU's
    responses (``SendResponse``), timers and transport errors. ``auto_trying``: an INVITE server
    transaction answers 100 Trying at once (17.2.1: unless the TU answers within 200 ms)."""

    __slots__ = ("auto_trying", "_key")

    def __init__(
        self,
        request: Request,
        *,
        reliable: bool,
        t1: float = T1,
        t2: float = T2,
        t4: float = T4,
        auto_trying: bool = True,
    ) -> None:
        if request.method == "ACK":
            raise TransactionError("ACK does not create a server transaction (RFC 3261 17.2.3)")
        super().__init__(request, reliable=reliable, t1=t1, t2=t2, t4=t4)
        self.table = SERVER_INVITE if self.is_invite else SERVER_NON_INVITE
        self.auto_trying = auto_trying
        self._key = server_key(request)

    @property
    def key(self) -> tuple[str, ...]:
        return self._key

    @classmethod
    def answerless(
        cls, key: tuple[str, ...], *, reliable: bool, t1: float = T1, t2: float = T2, t4: float = T4
    ) -> ServerTransaction:
        """A non-INVITE server transaction in Trying whose request was already passed up and let go
        of (as ``start()`` then ``release_request()`` leave it): the engine makes one only when its
        TU's first answer is a provisional, having kept the unanswered request as a key alone."""
        tx = cls.__new__(cls)
        tx.request = None  # type: ignore[assignment]
        tx.reliable = reliable
        tx.t1, tx.t2, tx.t4 = t1, t2, t4
        tx.state = State.TRYING
        tx.last_response = None
        tx._interval = {}
        tx.is_invite = False
        tx.table = SERVER_NON_INVITE
        tx.auto_trying = False
        tx._key = key
        return tx

    def release_request(self) -> None:
        """Let go of the request once started: from then on the machine needs only its key and its
        last response (figures 7 and 8 never look at the request again). A registrar keeps 64*T1 of
        completed transactions (Timer J): holding every parsed REGISTER as well made the garbage
        collector's full scans cost more than the transactions themselves (bench_sip_register).
        ``request`` is None afterwards."""
        if self.state is State.INIT:
            raise TransactionError("release the request after start(), which passes it up")
        self.request = None  # type: ignore[assignment]

    def _classify_message(self, event: Event) -> Kind:
        if isinstance(event, RequestIn):
            return K.ACK if event.request.method == "ACK" else K.REQUEST
        if isinstance(event, SendResponse):
            return _SEND_CLASS[_status_class(event.response.status)]
        raise TransactionError(f"a server transaction takes requests and SendResponse, not {type(event).__name__}")

    def _do_message(self, verb: Verb, event: Event | None) -> list[Action]:
        if verb is Verb.PASS_REQUEST:
            return [RequestReceived(self.request)]
        if verb is Verb.SEND_TRYING:
            if not self.auto_trying:
                return []
            self.last_response = make_response(self.request, 100)
            return [Send(self.last_response)]
        if verb is Verb.SEND_RESPONSE:
            assert isinstance(event, SendResponse)
            self.last_response = event.response
            return [Send(event.response)]
        if verb is Verb.RESEND_RESPONSE:
            return [Send(self.last_response)] if self.last_response is not None else []
        raise AssertionError(verb)


# --- matching (RFC 3261 17.1.3, 17.2.3) -----------------------------------------------------------


def client_key(message: Message) -> tuple[str, ...]:
    """17.1.3: a response matches the client transaction whose request had the same top-Via branch
    and the same CSeq method (so a CANCEL's responses don't reach the INVITE's transaction).
    Memoised on a request; a builder that wrote the branch itself sets it (``remember_client_key``)
    so the Via just written is never parsed back."""
    cached = message.__dict__.get("_client_key")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    key = (message.branch or "", message.cseq.method)
    if isinstance(message, Request):
        message.__dict__["_client_key"] = key
    return key


def remember_client_key(request: Request, branch: str) -> Request:
    """For a builder that wrote ``branch`` as the top Via's branch of ``request`` (and its CSeq
    method is the request's, as ``make_request`` writes it): the client key without a parse."""
    request.__dict__["_client_key"] = (branch, request.method)
    return request


def server_key(request: Request, method: str | None = None) -> tuple[str, ...]:
    """17.2.3: with an RFC 3261 branch, (branch, sent-by, method) with ACK counted as INVITE.
    Otherwise (no branch, or a bare magic cookie: RFC 4475 badbranch) the RFC 2543 rule: Request-URI,
    From tag, Call-ID, CSeq number, top Via and method. The To tag is left out so that the ACK for a
    non-2xx (which carries our tag) finds its INVITE. ``method`` overrides (CANCEL -> INVITE)."""
    if method is None:
        # memoised on the request like its parsed headers: the engine matches it, then its
        # transaction keys itself on it, then the TU's answer finds the transaction by it
        cached = request.__dict__.get("_server_key")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
    via = request.top_via
    m = method or ("INVITE" if request.method == "ACK" else request.method)
    branch = via.branch  # read once: Via.rfc3261_branch's test, inlined
    if branch is not None and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
        key: tuple[str, ...] = ("3261", branch, via.host.lower(), str(via.port or ""), m)
    else:
        key = ("2543", request.uri, request.from_.tag or "", request.call_id, str(request.cseq.number), str(via), m)
    if method is None:
        request.__dict__["_server_key"] = key
    return key


def cancel_target_key(cancel: Request) -> tuple[str, ...]:
    """The server key of the INVITE a CANCEL cancels (9.2: same matching, method INVITE)."""
    return server_key(cancel, "INVITE")


# --- ACK for non-2xx and CANCEL ------------------------------------------------------------------


def _sibling(request: Request, method: str, to: str) -> Request:
    """A request sharing the transaction of ``request``: its Request-URI, top Via (same branch),
    Route set, From, Call-ID and CSeq number, with ``method`` and the given To."""
    h = request.headers
    pairs = [("Via", h.get_all("Via")[0]), ("Max-Forwards", "70")]
    pairs += [("Route", r) for r in h.get_raw("Route")]
    pairs += [
        ("From", h.get("From") or ""),
        ("To", to),
        ("Call-ID", request.call_id),
        ("CSeq", f"{request.cseq.number} {method}"),
    ]
    return Request(method, request.uri, Headers(tuple(pairs)))


def make_ack(request: Request, response: Response) -> Request:
    """17.1.1.3: the ACK a client transaction sends for a 3xx-6xx: same Request-URI, Call-ID,
    From, CSeq number; To from the response (with its tag); only the top Via; the Route set."""
    return _sibling(request, "ACK", response.headers.get("To") or "")


def make_cancel(request: Request) -> Request:
    """9.1: CANCEL with the request's Request-URI, Call-ID, To, From, CSeq number, top Via (same
    branch, so it matches the server's INVITE transaction) and Route."""
    return _sibling(request, "CANCEL", request.headers.get("To") or "")
