"""Events into and actions out of the sans-IO transaction machines (frozen dataclasses).

The caller (a driver) owns sockets and clocks: it feeds ``ResponseIn`` / ``RequestIn`` for
messages the transport delivered, ``SendResponse`` for what its TU answers, ``TimerFired`` when a
timer it was asked to start expires, ``TransportError`` when a send failed; it carries out the
actions that come back (``Send``, ``StartTimer``, ``CancelTimer``) and hands the rest to its TU.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbxcheck.sip.message import Message, Request, Response

# --- events in ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseIn:
    """A response the transport delivered to a client transaction."""

    response: Response


@dataclass(frozen=True, slots=True)
class RequestIn:
    """A request (retransmission, or the ACK of a non-2xx) delivered to a server transaction."""

    request: Request


@dataclass(frozen=True, slots=True)
class SendResponse:
    """The TU answers through a server transaction."""

    response: Response


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer started by ``StartTimer(name, ...)`` expired."""

    name: str


@dataclass(frozen=True, slots=True)
class TransportError:
    """Sending failed (ICMP unreachable, connection reset...), RFC 3261 17.1.4 / 17.2.4."""

    reason: str = ""


Event = ResponseIn | RequestIn | SendResponse | TimerFired | TransportError

# --- actions out ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Transmit this message (``to_bytes(message)``) to the transaction's peer."""

    message: Message


@dataclass(frozen=True, slots=True)
class StartTimer:
    """(Re)start timer ``name`` to fire after ``seconds``; a restart replaces a running one."""

    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """For the TU: a response the client transaction passes up."""

    response: Response


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """For the TU: the request that created a server transaction."""

    request: Request


@dataclass(frozen=True, slots=True)
class Timeout:
    """For the TU: timer B, F or H fired (RFC 3261 17.1.1.2, 17.1.2.2, 17.2.1) - a 408 situation."""

    timer: str


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """For the TU: the transport reported an error (17.1.4, 17.2.4)."""

    reason: str


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction is over: forget it and its timers."""

    key: tuple[str, ...]


Action = (
    Send
    | StartTimer
    | CancelTimer
    | ResponseReceived
    | RequestReceived
    | Timeout
    | TransportFailed
    | TransactionTerminated
)
