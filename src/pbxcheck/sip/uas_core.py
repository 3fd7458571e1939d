"""The UAS core's one reliability duty: retransmit a 2xx to an INVITE until its ACK (RFC 3261 §13.3.1.4).

The INVITE server transaction ends when it passes a 2xx to the transport (§17.2.1, figure 7), so the
2xx's reliability is the core's business, in one small table of its own:

    "The 2xx response is passed to the transport with an interval that starts at T1 seconds and
    doubles for each retransmission until it reaches T2 seconds ... Response retransmissions cease
    when an ACK request for the response is received. This is independent of whatever transport
    protocols are used to send the response."                                      (§13.3.1.4)

    "If the server retransmits the 2xx response for 64*T1 seconds without receiving an ACK, the
    dialog is confirmed, but the session SHOULD be terminated. This is accomplished with a BYE."

So the retransmissions run on reliable transports too (a UDP hop may lie beyond the TCP one). A
retransmitted INVITE that arrives meanwhile gets the 2xx again (it cannot match the terminated
transaction; RFC 6026 §7.1 later made that the "Accepted" state's job). Sending the BYE is the
TU's choice: the machine says ``Timeout("give_up")``.

The first 2xx is sent by the server transaction (or statelessly by the engine when none is left),
never by this machine's start: the same response must not go out twice at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from pbxcheck.sip.events import (
    Action,
    CancelTimer,
    RequestIn,
    RequestReceived,
    Send,
    StartTimer,
    Timeout,
    TimerFired,
    TransactionTerminated,
)
from pbxcheck.sip.message import Request, Response
from pbxcheck.sip.transaction import T1, T2

__all__ = ["UAS_2XX", "AckWait", "AckKind", "AckState", "AckTimer"]


class AckState(StrEnum):
    INIT = "Init"
    WAITING = "Waiting"  # 2xx sent, no ACK yet
    TERMINATED = "Terminated"  # ACK came, or 64*T1 passed


class AckKind(StrEnum):
    START = "start"
    ACK = "ack"
    INVITE_AGAIN = "invite"  # the INVITE retransmitted (our 2xx was lost)
    TIMER_RETRANSMIT = "timer_retransmit"
    TIMER_GIVE_UP = "timer_give_up"


class AckTimer(StrEnum):
    RETRANSMIT = "retransmit"  # T1, doubling up to T2
    GIVE_UP = "give_up"  # 64*T1


class AckVerb(Enum):
    SEND_2XX = "send_2xx"
    START = "start"
    BACKOFF = "backoff"
    CANCEL = "cancel"
    PASS_ACK = "pass_ack"
    NO_ACK = "no_ack"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class AckOp:
    verb: AckVerb
    timer: AckTimer | None = None


_S, _K, _R, _G = AckState, AckKind, AckTimer.RETRANSMIT, AckTimer.GIVE_UP
_SEND = AckOp(AckVerb.SEND_2XX)
_DONE = AckOp(AckVerb.TERMINATED)

UAS_2XX: dict[tuple[AckState, AckKind], tuple[AckState, tuple[AckOp, ...]]] = {
    (_S.INIT, _K.START): (_S.WAITING, (AckOp(AckVerb.START, _R), AckOp(AckVerb.START, _G))),
    (_S.WAITING, _K.TIMER_RETRANSMIT): (_S.WAITING, (_SEND, AckOp(AckVerb.BACKOFF, _R))),
    (_S.WAITING, _K.INVITE_AGAIN): (_S.WAITING, (_SEND,)),
    (_S.WAITING, _K.ACK): (
        _S.TERMINATED,
        (AckOp(AckVerb.CANCEL, _R), AckOp(AckVerb.CANCEL, _G), AckOp(AckVerb.PASS_ACK), _DONE),
    ),
    (_S.WAITING, _K.TIMER_GIVE_UP): (_S.TERMINATED, (AckOp(AckVerb.CANCEL, _R), AckOp(AckVerb.NO_ACK), _DONE)),
}

_TIMER_KIND = {AckTimer.RETRANSMIT.value: AckKind.TIMER_RETRANSMIT, AckTimer.GIVE_UP.value: AckKind.TIMER_GIVE_UP}


class AckWait:
    """One 2xx waiting for its ACK. Keyed by (Call-ID, CSeq number): the ACK for a 2xx is a new
    transaction with its own branch (§17.1.1.3), only the dialog and the CSeq number tie it to the INVITE."""

    def __init__(self, invite: Request, response: Response, *, t1: float = T1, t2: float = T2) -> None:
        self.invite = invite
        self.response = response
        self.t1, self.t2 = t1, t2
        self.state = AckState.INIT
        self._interval: dict[AckTimer, float] = {}

    @property
    def key(self) -> tuple[str, int]:
        return (self.invite.call_id, self.invite.cseq.number)

    @property
    def terminated(self) -> bool:
        return self.state is AckState.TERMINATED

    def start(self) -> list[Action]:
        return self._run(AckKind.START, None)

    def handle(self, event: RequestIn | TimerFired) -> list[Action]:
        if isinstance(event, TimerFired):
            return self._run(_TIMER_KIND[event.name], event)
        return self._run(AckKind.ACK if event.request.method == "ACK" else AckKind.INVITE_AGAIN, event)

    def _run(self, kind: AckKind, event: RequestIn | TimerFired | None) -> list[Action]:
        entry = UAS_2XX.get((self.state, kind))
        if entry is None:
            return []
        self.state, ops = entry
        out: list[Action] = []
        for op in ops:
            verb, timer = op.verb, op.timer
            if verb is AckVerb.SEND_2XX:
                out.append(Send(self.response))
            elif verb is AckVerb.START and timer is not None:
                seconds = self.t1 if timer is AckTimer.RETRANSMIT else 64 * self.t1
                self._interval[timer] = seconds
                out.append(StartTimer(timer, seconds))
            elif verb is AckVerb.BACKOFF and timer is not None:
                seconds = min(2 * self._interval.get(timer, self.t1), self.t2)
                self._interval[timer] = seconds
                out.append(StartTimer(timer, seconds))
            elif verb is AckVerb.CANCEL and timer is not None:
                if self._interval.pop(timer, None) is not None:
                    out.append(CancelTimer(timer))
            elif verb is AckVerb.PASS_ACK:
                assert isinstance(event, RequestIn)
                out.append(RequestReceived(event.request))
            elif verb is AckVerb.NO_ACK:
                out.append(Timeout(AckTimer.GIVE_UP))
            elif verb is AckVerb.TERMINATED:
                self._interval.clear()
                out.append(TransactionTerminated(("2xx", self.invite.call_id, str(self.invite.cseq.number))))
        return out
