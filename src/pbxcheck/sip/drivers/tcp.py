"""asyncio TCP driver: a listening server and an outgoing connection, framed by Content-Length.

SIP over a stream is framed by the Content-Length header (RFC 3261 §18.3); the core's
``StreamFramer`` does that, one framer per connection. A framing error (no or bad Content-Length,
an absurd header block) closes the connection: there is no way to find the next message boundary.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import cast

from .base import Addr, Flow, MessageHandler


def _framer() -> object:
    # imported lazily so the drivers package imports even before the core's parser is installed
    from ..parser import StreamFramer

    return StreamFramer()


class _StreamProtocol(asyncio.Protocol):
    def __init__(
        self, handler: MessageHandler, on_flow: Callable[[Flow], None] | None = None, transport_name: str = "TCP"
    ) -> None:
        self.handler = handler
        self.on_flow = on_flow
        self.transport_name = transport_name
        self.framer = _framer()
        self.flow: Flow | None = None
        self.tcp: asyncio.Transport | None = None
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tcp = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.flow = Flow(self.transport_name, (local[0], local[1]), (peer[0], peer[1]), self._write, transport.close)
        if self.on_flow is not None:
            self.on_flow(self.flow)

    def _write(self, data: bytes) -> None:
        if self.tcp is not None and not self.tcp.is_closing():
            self.tcp.write(data)

    def data_received(self, data: bytes) -> None:
        assert self.flow is not None
        try:
            messages = self.framer.feed(data)  # type: ignore[attr-defined]
        except Exception:
            # framing lost: the stream cannot be resynchronised, drop the connection
            self.errors += 1
            if self.tcp is not None:
                self.tcp.close()
            return
        for msg in messages:
            try:
                self.handler(msg, self.flow)
            except Exception:
                self.errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self.flow is not None:
            self.flow.mark_closed()


class TcpServer:
    """Listens on (host, port); every accepted connection becomes a Flow."""

    def __init__(self, handler: MessageHandler) -> None:
        self.handler = handler
        self.server: asyncio.base_events.Server | None = None
        self.flows: dict[Addr, Flow] = {}
        self.local: Addr = ("0.0.0.0", 0)

    @classmethod
    async def start(
        cls, host: str, port: int, handler: MessageHandler, *, sock: socket.socket | None = None
    ) -> TcpServer:
        """Listen on (host, port), or on ``sock`` already listening."""
        self = cls(handler)
        loop = asyncio.get_running_loop()
        if sock is not None:
            self.server = await loop.create_server(lambda: _StreamProtocol(handler, self._track), sock=sock)
        else:
            self.server = await loop.create_server(
                lambda: _StreamProtocol(handler, self._track), host, port, reuse_address=True
            )
        name = self.server.sockets[0].getsockname()
        self.local = (name[0], name[1])
        return self

    def _track(self, flow: Flow) -> None:
        self.flows[flow.remote] = flow
        flow.on_close.append(self._untrack)

    def _untrack(self, flow: Flow) -> None:
        self.flows.pop(flow.remote, None)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for flow in list(self.flows.values()):
                flow.close()
            await self.server.wait_closed()


async def tcp_connect(
    remote: Addr, handler: MessageHandler, *, local: Addr | None = None, timeout: float = 5.0
) -> Flow:
    """Open a TCP connection to ``remote``; incoming messages go to ``handler``."""
    loop = asyncio.get_running_loop()
    proto: _StreamProtocol
    _, proto = await asyncio.wait_for(
        loop.create_connection(lambda: _StreamProtocol(handler), remote[0], remote[1], local_addr=local), timeout
    )
    assert proto.flow is not None
    return proto.flow
