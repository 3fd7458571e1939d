"""Two engines wired back to back with a fake clock, as h11's ConnectionPair: no sockets, no sleeps.

``pair.a`` is the client side, ``pair.b`` the server side. Whatever an engine wants to send goes
to the other one at once (``pair.flush()``) unless ``pair.drop`` says the network lost it; every
transmission is kept in ``pair.wire`` as (time, sender, first line). ``pair.advance(seconds)``
moves the clock, firing each engine's timers at their exact deadlines, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pbxcheck.sip.engine import Engine, Event
from pbxcheck.sip.flow import Addr, Flow


def _first_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0].decode()


@dataclass
class Sent:
    time: float
    sender: str  # "a" or "b"
    data: bytes
    flow: Flow

    @property
    def line(self) -> str:
        return _first_line(self.data)


@dataclass
class EnginePair:
    transport: str = "UDP"
    t1: float = 0.5
    a_addr: Addr = ("10.0.0.1", 5060)
    b_addr: Addr = ("10.0.0.2", 7048)
    now: float = 0.0
    wire: list[Sent] = field(default_factory=list)
    events: dict[str, list[Event]] = field(default_factory=lambda: {"a": [], "b": []})
    drop: Callable[[Sent], bool] = lambda sent: False

    def __post_init__(self) -> None:
        self.a = Engine(t1=self.t1)
        self.b = Engine(t1=self.t1)
        self.a_flow = self.flow("a", self.a_addr, self.b_addr)  # a's flow to b
        self.b_flow = self.flow("b", self.b_addr, self.a_addr)  # b's flow to a

    def flow(self, side: str, local: Addr, remote: Addr) -> Flow:
        """A flow on which ``side`` sends; the bytes are delivered by ``flush``."""
        return Flow(self.transport, local, remote, lambda data: None)

    def engine(self, side: str) -> Engine:
        return self.a if side == "a" else self.b

    def flush(self) -> None:
        """Deliver what both engines queued (and what that makes them send), until quiet."""
        while True:
            moved = False
            for side, other in (("a", "b"), ("b", "a")):
                for data, flow in self.engine(side).data_to_send():
                    moved = True
                    sent = Sent(self.now, side, data, flow)
                    self.wire.append(sent)
                    if self.drop(sent):
                        continue
                    back = Flow(flow.transport, flow.remote, flow.local, lambda d: None)
                    self.events[other] += self.engine(other).receive(data, self._peer_flow(other, back), self.now)
            if not moved:
                return

    def _peer_flow(self, side: str, back: Flow) -> Flow:
        # the receiving side answers on its canonical flow when the sender used the canonical one
        canon = self.b_flow if side == "b" else self.a_flow
        return canon if (back.local, back.remote) == (canon.local, canon.remote) else back

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` on, firing every due timer at its own deadline."""
        end = self.now + seconds
        while True:
            due = [d for d in (self.a.next_deadline(), self.b.next_deadline()) if d is not None and d <= end]
            if not due:
                break
            self.now = min(due)
            for side in ("a", "b"):
                self.events[side] += self.engine(side).timer_fired(self.now)
            self.flush()
        self.now = end

    def sent(self, sender: str, prefix: str = "") -> list[Sent]:
        return [s for s in self.wire if s.sender == sender and s.line.startswith(prefix)]

    def take(self, side: str) -> list[Event]:
        out, self.events[side] = self.events[side], []
        return out
