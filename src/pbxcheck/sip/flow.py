"""A *flow*: one path to one peer (RFC 5626 §3's term), owned by the core so that the transaction
engine, the message log and the drivers all speak of the same thing.

The drivers move bytes only; parsing belongs to the sans-IO core (``pbxcheck.sip.parser``). A driver
hands its consumer one complete SIP message at a time (a UDP datagram, a Content-Length framed
message from a TCP stream, one WebSocket frame) together with the :class:`Flow` it came on, and the
consumer answers with ``flow.send(data)``. Keeping the flow as the unit (not a bare address) is
what lets the central answer a TCP or WebSocket client on the very connection it used (RFC 3261
§18.2.2, RFC 7118 §5) and lets it key NAT bindings on (transport, IP, port).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Addr = tuple[str, int]

TRANSPORTS = ("UDP", "TCP", "WS", "WSS")


@dataclass(eq=False)
class Flow:
    """One path to one peer: a UDP (local, remote) pair, a TCP connection or a WebSocket.

    ``send`` never blocks: UDP sends at once, streams queue on the connection's transport.
    Sending on a closed flow is silently dropped (the peer went away; SIP recovers by timers).
    """

    transport: str
    local: Addr
    remote: Addr
    _send: Callable[[bytes], None] = field(repr=False)
    _close: Callable[[], None] | None = field(default=None, repr=False)
    closed: bool = False
    on_close: list[Callable[[Flow], None]] = field(default_factory=list, repr=False)
    _aclose: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, str, int]:
        """(transport, remote IP, remote port): the identity the central keys bindings on."""
        return (self.transport, self.remote[0], self.remote[1])

    @property
    def reliable(self) -> bool:
        """Stream transports do not need SIP retransmissions (RFC 3261 §17.1.1.2)."""
        return self.transport != "UDP"

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        self._send(data)

    def close(self) -> None:
        if self.closed:
            return
        if self._close is not None:
            self._close()
        self.mark_closed()

    async def aclose(self) -> None:
        """Close and wait for the transport's goodbye (a WebSocket close handshake), so the peer does
        not keep a half-dead connection until its own timeout."""
        if self._aclose is not None and not self.closed:
            await self._aclose()
        self.close()

    def mark_closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        for cb in list(self.on_close):
            try:
                cb(self)
            except Exception:  # a consumer's cleanup must not break the driver
                pass

    def via_transport(self) -> str:
        """The token for a Via header sent on this flow ("UDP", "TCP", "WS", "WSS")."""
        return self.transport


# The consumer's callback: one complete message and the flow it arrived on.
MessageHandler = Callable[[bytes, Flow], None]
