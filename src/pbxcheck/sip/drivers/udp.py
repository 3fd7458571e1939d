"""asyncio UDP driver: one socket, one :class:`Flow` per remote address.

Used by both sides: the central listens on its SIP port, the user agent binds an ephemeral port (or a
chosen one, e.g. 127.0.0.3:5070 to play a device behind a NAT). Every datagram is one SIP message
(RFC 3261 §18.3 frames UDP by the datagram), so nothing is buffered here.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from typing import Any, cast

from .base import Addr, Flow, MessageHandler

# A SIP datagram larger than this is truncated by the kernel anyway; 65535 is the UDP maximum.
_MAX_DATAGRAM = 65535


class UdpEndpoint(asyncio.DatagramProtocol):
    """A bound UDP socket delivering datagrams to ``handler(data, flow)``."""

    def __init__(self, handler: MessageHandler) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.local: Addr = ("0.0.0.0", 0)
        self._flows: dict[Addr, Flow] = {}
        self.errors = 0  # handler exceptions swallowed (a bad peer must never stop the socket)

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        handler: MessageHandler,
        *,
        reuse_port: bool = False,
        rcvbuf: int | None = None,
        sock: socket.socket | None = None,
    ) -> UdpEndpoint:
        """Bind (host, port), or adopt ``sock`` already bound (the central binds its ports up front)."""
        loop = asyncio.get_running_loop()
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
        if rcvbuf:
            # a bigger receive buffer absorbs bursts (the bench's, a fuzzer's) without drops
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        _, proto = await loop.create_datagram_endpoint(lambda: cls(handler), sock=sock)
        return proto

    # --- asyncio protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector transport is not a registered DatagramTransport subclass: cast, don't assert
        self.transport = cast(asyncio.DatagramTransport, transport)
        name = transport.get_extra_info("sockname")
        self.local = (name[0], name[1])

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:  # (host, port[, flow, scope])
        flow = self.flow((addr[0], addr[1]))
        try:
            self.handler(data, flow)
        except Exception:
            self.errors += 1

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: nothing to do, SIP timers recover.
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        for flow in list(self._flows.values()):
            flow.mark_closed()
        self._flows.clear()

    # --- API ------------------------------------------------------------------------------------

    def flow(self, remote: Addr) -> Flow:
        """The flow to ``remote`` (created on first use, then cached)."""
        flow = self._flows.get(remote)
        if flow is None:
            if len(self._flows) > 100_000:
                # a spray of spoofed sources must not grow memory without bound
                self._flows.clear()
            flow = Flow("UDP", self.local, remote, functools.partial(self._send_to, remote))
            self._flows[remote] = flow
        return flow

    def _send_to(self, remote: Addr, data: bytes) -> None:
        self.sendto(data, remote)

    def sendto(self, data: bytes, remote: Addr) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, remote)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
