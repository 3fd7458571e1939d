"""RFC 3261 section 17 transactions as table-driven, sans-IO state machines.

One table per kind maps ``(state, event) -> (new state, operations)``; the four tables below are
the whole behaviour, transcribed from the RFC's figures 5-8 (RFC 3261 17.1.1.2, 17.1.2.2, 17.2.1,
17.2.2). A pair that is not in a table is ignored (a stale timer, a late retransmission), which is
what the RFC's "MUST be absorbed/discarded" rules amount to.

Operations are short strings interpreted by ``_Transaction._do``: ``send_request``, ``send_ack``,
``send_response``, ``resend_response``, ``send_trying``, ``pass_request``, ``pass_response``,
``start:X``, ``cancel:X``, ``backoff:X`` (double, capped at T2 for E/G), ``t2:X`` (restart at T2),
``timeout:X``, ``transport_failed``, ``terminated``.

Time never comes from a clock here: ``StartTimer(name, seconds)`` goes out, ``TimerFired(name)``
comes in. On reliable transports the retransmission timers (A, E, G) are never started and the
wait timers D, I, J, K are zero, which the machine applies at once (no timer round trip).
"""

from __future__ import annotations

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
from pbxcheck.sip.ids import new_branch as new_branch  # alias: the one generator is ids.py
from pbxcheck.sip.message import Headers, Message, Request, Response, make_response

T1, T2, T4 = 0.5, 4.0, 5.0  # RFC 3261 17.1.1.1 / table 4 defaults, seconds

Table = dict[tuple[str, str], tuple[str, tuple[str, ...]]]
FINAL = "3xx-6xx"

# RFC 3261 17.1.1.2, figure 5: INVITE client transaction.
CLIENT_INVITE: Table = {
    ("Init", "start"): ("Calling", ("send_request", "start:A", "start:B")),
    ("Calling", "timer_A"): ("Calling", ("send_request", "backoff:A")),
    ("Calling", "timer_B"): ("Terminated", ("cancel:A", "timeout:B", "terminated")),
    ("Calling", "1xx"): ("Proceeding", ("cancel:A", "cancel:B", "pass_response")),
    ("Calling", "2xx"): ("Terminated", ("cancel:A", "cancel:B", "pass_response", "terminated")),
    ("Calling", FINAL): ("Completed", ("cancel:A", "cancel:B", "pass_response", "send_ack", "start:D")),
    ("Calling", "transport_error"): ("Terminated", ("cancel:A", "cancel:B", "transport_failed", "terminated")),
    ("Proceeding", "1xx"): ("Proceeding", ("pass_response",)),
    ("Proceeding", "2xx"): ("Terminated", ("pass_response", "terminated")),
    ("Proceeding", FINAL): ("Completed", ("pass_response", "send_ack", "start:D")),
    ("Proceeding", "transport_error"): ("Terminated", ("transport_failed", "terminated")),
    ("Completed", FINAL): ("Completed", ("send_ack",)),  # retransmitted final: ACK again, not passed up
    ("Completed", "timer_D"): ("Terminated", ("terminated",)),
    ("Completed", "transport_error"): ("Terminated", ("cancel:D", "transport_failed", "terminated")),
}

# RFC 3261 17.1.2.2, figure 6: non-INVITE client transaction.
CLIENT_NON_INVITE: Table = {
    ("Init", "start"): ("Trying", ("send_request", "start:E", "start:F")),
    ("Trying", "timer_E"): ("Trying", ("send_request", "backoff:E")),
    ("Trying", "timer_F"): ("Terminated", ("cancel:E", "timeout:F", "terminated")),
    ("Trying", "1xx"): ("Proceeding", ("pass_response",)),
    ("Trying", "2xx"): ("Completed", ("cancel:E", "cancel:F", "pass_response", "start:K")),
    ("Trying", FINAL): ("Completed", ("cancel:E", "cancel:F", "pass_response", "start:K")),
    ("Trying", "transport_error"): ("Terminated", ("cancel:E", "cancel:F", "transport_failed", "terminated")),
    ("Proceeding", "timer_E"): ("Proceeding", ("send_request", "t2:E")),
    ("Proceeding", "timer_F"): ("Terminated", ("cancel:E", "timeout:F", "terminated")),
    ("Proceeding", "1xx"): ("Proceeding", ("pass_response",)),
    ("Proceeding", "2xx"): ("Completed", ("cancel:E", "cancel:F", "pass_response", "start:K")),
    ("Proceeding", FINAL): ("Completed", ("cancel:E", "cancel:F", "pass_response", "start:K")),
    ("Proceeding", "transport_error"): ("Terminated", ("cancel:E", "cancel:F", "transport_failed", "terminated")),
    ("Completed", "timer_K"): ("Terminated", ("terminated",)),
}

# RFC 3261 17.2.1, figure 7: INVITE server transaction.
SERVER_INVITE: Table = {
    ("Init", "start"): ("Proceeding", ("send_trying", "pass_request")),
    ("Proceeding", "request"): ("Proceeding", ("resend_response",)),
    ("Proceeding", "send_1xx"): ("Proceeding", ("send_response",)),
    ("Proceeding", "send_2xx"): ("Terminated", ("send_response", "terminated")),
    ("Proceeding", "send_3xx-6xx"): ("Completed", ("send_response", "start:G", "start:H")),
    ("Proceeding", "transport_error"): ("Terminated", ("transport_failed", "terminated")),
    ("Completed", "request"): ("Completed", ("resend_response",)),
    ("Completed", "timer_G"): ("Completed", ("resend_response", "backoff:G")),
    ("Completed", "ack"): ("Confirmed", ("cancel:G", "cancel:H", "start:I")),
    ("Completed", "timer_H"): ("Terminated", ("cancel:G", "timeout:H", "terminated")),
    ("Completed", "transport_error"): ("Terminated", ("cancel:G", "cancel:H", "transport_failed", "terminated")),
    ("Confirmed", "ack"): ("Confirmed", ()),  # absorbed
    ("Confirmed", "request"): ("Confirmed", ()),
    ("Confirmed", "timer_I"): ("Terminated", ("terminated",)),
}

# RFC 3261 17.2.2, figure 8: non-INVITE server transaction.
SERVER_NON_INVITE: Table = {
    ("Init", "start"): ("Trying", ("pass_request",)),
    ("Trying", "request"): ("Trying", ()),  # retransmission before any response: discarded
    ("Trying", "send_1xx"): ("Proceeding", ("send_response",)),
    ("Trying", "send_2xx"): ("Completed", ("send_response", "start:J")),
    ("Trying", "send_3xx-6xx"): ("Completed", ("send_response", "start:J")),
    ("Proceeding", "request"): ("Proceeding", ("resend_response",)),
    ("Proceeding", "send_1xx"): ("Proceeding", ("send_response",)),
    ("Proceeding", "send_2xx"): ("Completed", ("send_response", "start:J")),
    ("Proceeding", "send_3xx-6xx"): ("Completed", ("send_response", "start:J")),
    ("Proceeding", "transport_error"): ("Terminated", ("transport_failed", "terminated")),
    ("Completed", "request"): ("Completed", ("resend_response",)),
    ("Completed", "timer_J"): ("Terminated", ("terminated",)),
    ("Completed", "transport_error"): ("Terminated", ("cancel:J", "transport_failed", "terminated")),
}


def _status_class(status: int) -> str:
    if status < 200:
        return "1xx"
    return "2xx" if status < 300 else FINAL


class _Transaction:
    table: Table
    request: Request

    def __init__(self, request: Request, *, reliable: bool, t1: float = T1, t2: float = T2, t4: float = T4) -> None:
        self.request = request
        self.reliable = reliable
        self.t1, self.t2, self.t4 = t1, t2, t4
        self.state = "Init"
        self.last_response: Response | None = None
        self._interval: dict[str, float] = {}
        self.is_invite = request.method == "INVITE"

    @property
    def terminated(self) -> bool:
        return self.state == "Terminated"

    @property
    def key(self) -> tuple[str, ...]:
        raise NotImplementedError

    def start(self) -> list[Action]:
        if self.state != "Init":
            raise TransactionError("transaction already started")
        return self._run("start", None)

    def handle(self, event: Event) -> list[Action]:
        if self.state == "Init":
            raise TransactionError("transaction not started")
        return self._run(self._classify(event), event)

    def _classify(self, event: Event) -> str:
        if isinstance(event, TimerFired):
            return f"timer_{event.name}"
        if isinstance(event, TransportError):
            return "transport_error"
        return self._classify_message(event)

    def _classify_message(self, event: Event) -> str:
        raise NotImplementedError

    def _run(self, kind: str, event: Event | None) -> list[Action]:
        entry = self.table.get((self.state, kind))
        if entry is None:
            return []
        self.state, ops = entry
        actions: list[Action] = []
        for op in ops:
            actions += self._do(op, event)
        return actions

    # --- timers ---
    def _duration(self, name: str) -> float | None:
        """None: not started (retransmission timers on reliable transports); 0: fires at once."""
        unreliable = not self.reliable
        return {
            "A": self.t1 if unreliable else None, "B": 64 * self.t1, "D": 32.0 if unreliable else 0.0,
            "E": self.t1 if unreliable else None, "F": 64 * self.t1, "G": self.t1 if unreliable else None,
            "H": 64 * self.t1, "I": self.t4 if unreliable else 0.0, "J": 64 * self.t1 if unreliable else 0.0,
            "K": self.t4 if unreliable else 0.0,
        }[name]

    def _start_timer(self, name: str, seconds: float | None) -> list[Action]:
        if seconds is None:
            return []
        if seconds == 0:
            return self._run(f"timer_{name}", TimerFired(name))
        self._interval[name] = seconds
        return [StartTimer(name, seconds)]

    def _do(self, op: str, event: Event | None) -> list[Action]:
        verb, _, arg = op.partition(":")
        if verb == "start":
            return self._start_timer(arg, self._duration(arg))
        if verb == "backoff":
            doubled = 2 * self._interval.get(arg, self.t1)
            return self._start_timer(arg, doubled if arg == "A" else min(doubled, self.t2))
        if verb == "t2":
            return self._start_timer(arg, self.t2)
        if verb == "cancel":
            # only timers that were actually started need cancelling
            return [CancelTimer(arg)] if self._interval.pop(arg, None) is not None else []
        if verb == "timeout":
            return [Timeout(arg)]
        if verb == "transport_failed":
            return [TransportFailed(event.reason if isinstance(event, TransportError) else "")]
        if verb == "terminated":
            self._interval.clear()
            return [TransactionTerminated(self.key)]
        return self._do_message(verb, event)

    def _do_message(self, verb: str, event: Event | None) -> list[Action]:
        raise NotImplementedError


class ClientTransaction(_Transaction):
    """RFC 3261 17.1: send ``request``; feed responses, timers and transport errors."""

    def __init__(self, request: Request, *, reliable: bool, t1: float = T1, t2: float = T2, t4: float = T4) -> None:
        if request.method == "ACK":
            raise TransactionError("ACK does not create a client transaction (RFC 3261 17.1)")
        super().__init__(request, reliable=reliable, t1=t1, t2=t2, t4=t4)
        self.table = CLIENT_INVITE if self.is_invite else CLIENT_NON_INVITE
        self.ack: Request | None = None

    @property
    def key(self) -> tuple[str, ...]:
        return client_key(self.request)

    def _classify_message(self, event: Event) -> str:
        if not isinstance(event, ResponseIn):
            raise TransactionError(f"a client transaction takes responses, not {type(event).__name__}")
        return _status_class(event.response.status)

    def _do_message(self, verb: str, event: Event | None) -> list[Action]:
        if verb == "send_request":
            return [Send(self.request)]
        assert isinstance(event, ResponseIn)
        self.last_response = event.response
        if verb == "pass_response":
            return [ResponseReceived(event.response)]
        if verb == "send_ack":
            self.ack = make_ack(self.request, event.response)
            return [Send(self.ack)]
        raise AssertionError(verb)


class ServerTransaction(_Transaction):
    """RFC 3261 17.2: created by a request; feed retransmissions/ACK (``RequestIn``), the TU's
    responses (``SendResponse``), timers and transport errors. ``auto_trying``: an INVITE server
    transaction answers 100 Trying at once (17.2.1: unless the TU answers within 200 ms)."""

    def __init__(self, request: Request, *, reliable: bool, t1: float = T1, t2: float = T2, t4: float = T4,
                 auto_trying: bool = True) -> None:
        if request.method == "ACK":
            raise TransactionError("ACK does not create a server transaction (RFC 3261 17.2.3)")
        super().__init__(request, reliable=reliable, t1=t1, t2=t2, t4=t4)
        self.table = SERVER_INVITE if self.is_invite else SERVER_NON_INVITE
        self.auto_trying = auto_trying
        self._key = server_key(request)

    @property
    def key(self) -> tuple[str, ...]:
        return self._key

    def _classify_message(self, event: Event) -> str:
        if isinstance(event, RequestIn):
            return "ack" if event.request.method == "ACK" else "request"
        if isinstance(event, SendResponse):
            return "send_" + _status_class(event.response.status)
        raise TransactionError(f"a server transaction takes requests and SendResponse, not {type(event).__name__}")

    def _do_message(self, verb: str, event: Event | None) -> list[Action]:
        if verb == "pass_request":
            return [RequestReceived(self.request)]
        if verb == "send_trying":
            if not self.auto_trying:
                return []
            self.last_response = make_response(self.request, 100)
            return [Send(self.last_response)]
        if verb == "send_response":
            assert isinstance(event, SendResponse)
            self.last_response = event.response
            return [Send(event.response)]
        if verb == "resend_response":
            return [Send(self.last_response)] if self.last_response is not None else []
        raise AssertionError(verb)


# --- matching (RFC 3261 17.1.3, 17.2.3) -----------------------------------------------------------


def client_key(message: Message) -> tuple[str, ...]:
    """17.1.3: a response matches the client transaction whose request had the same top-Via branch
    and the same CSeq method (so a CANCEL's responses don't reach the INVITE's transaction)."""
    return (message.branch or "", message.cseq.method)


def server_key(request: Request, method: str | None = None) -> tuple[str, ...]:
    """17.2.3: with an RFC 3261 branch, (branch, sent-by, method) with ACK counted as INVITE.
    Otherwise (no branch, or a bare magic cookie: RFC 4475 badbranch) the RFC 2543 rule: Request-URI,
    From tag, Call-ID, CSeq number, top Via and method. The To tag is left out so that the ACK for a
    non-2xx (which carries our tag) finds its INVITE. ``method`` overrides (CANCEL -> INVITE)."""
    via = request.top_via
    m = method or ("INVITE" if request.method == "ACK" else request.method)
    if via.rfc3261_branch:
        return ("3261", via.branch or "", via.host.lower(), str(via.port or ""), m)
    return ("2543", request.uri, request.from_.tag or "", request.call_id, str(request.cseq.number), str(via), m)


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
    pairs += [("From", h.get("From") or ""), ("To", to), ("Call-ID", request.call_id),
              ("CSeq", f"{request.cseq.number} {method}")]
    return Request(method, request.uri, Headers(tuple(pairs)))


def make_ack(request: Request, response: Response) -> Request:
    """17.1.1.3: the ACK a client transaction sends for a 3xx-6xx: same Request-URI, Call-ID,
    From, CSeq number; To from the response (with its tag); only the top Via; the Route set."""
    return _sibling(request, "ACK", response.headers.get("To") or "")


def make_cancel(request: Request) -> Request:
    """9.1: CANCEL with the request's Request-URI, Call-ID, To, From, CSeq number, top Via (same
    branch, so it matches the server's INVITE transaction) and Route."""
    return _sibling(request, "CANCEL", request.headers.get("To") or "")
