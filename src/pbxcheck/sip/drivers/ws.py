"""SIP over WebSocket (RFC 7118): server and client, ``ws`` and ``wss``, subprotocol ``sip``.

Each WebSocket message carries exactly one SIP message (RFC 7118 §5.2), so no framer is needed.
We send text frames (SIP is UTF-8 text; RFC 7118 allows text or binary, and browsers' SIP stacks use
text) and accept both. The server refuses a handshake that is not on its path (404) or that does
not offer the ``sip`` subprotocol (400): RFC 7118 §4 makes the subprotocol mandatory.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from http import HTTPStatus
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect_raw
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from .base import Addr, Flow, MessageHandler

SUBPROTOCOL = "sip"


def _as_bytes(frame: str | bytes) -> bytes:
    return frame.encode("utf-8") if isinstance(frame, str) else bytes(frame)


def _frame(data: bytes) -> str | bytes:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data  # not UTF-8 (a torture message): binary frame, still one message


class _WsFlowSender:
    """Queues outgoing frames for one connection; Flow.send must not block, websockets' send awaits."""

    def __init__(self, conn: ServerConnection | ClientConnection) -> None:
        self.conn = conn
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                data = await self.queue.get()
                if data is None:
                    return
                await self.conn.send(_frame(data))
        except ConnectionClosed:
            return

    def send(self, data: bytes) -> None:
        self.queue.put_nowait(data)

    def close(self) -> None:
        self.queue.put_nowait(None)
        asyncio.get_running_loop().create_task(self.conn.close())

    async def aclose(self) -> None:
        self.queue.put_nowait(None)
        await self.conn.close()


async def _read_loop(conn: ServerConnection | ClientConnection, flow: Flow, handler: MessageHandler) -> None:
    try:
        async for frame in conn:
            try:
                handler(_as_bytes(frame), flow)
            except Exception:
                pass  # a bad message must not kill the connection's reader
    except ConnectionClosed:
        pass
    finally:
        flow.mark_closed()


def _addr(value: Any) -> Addr:
    return (str(value[0]), int(value[1])) if value else ("0.0.0.0", 0)


class WsServer:
    """``ws://host:port/path`` (or ``wss://`` with ``ssl_context``) delivering messages to ``handler``."""

    def __init__(self, handler: MessageHandler, path: str, transport_name: str) -> None:
        self.handler = handler
        self.path = path
        self.transport_name = transport_name
        self.server: Server | None = None
        self.local: Addr = ("0.0.0.0", 0)
        self.flows: dict[Addr, Flow] = {}

    @classmethod
    async def start(
        cls,
        host: str,
        port: int,
        handler: MessageHandler,
        *,
        path: str = "/ws",
        ssl_context: ssl.SSLContext | None = None,
        sock: socket.socket | None = None,
    ) -> WsServer:
        """Listen on (host, port), or on ``sock`` already listening."""
        self = cls(handler, path, "WSS" if ssl_context is not None else "WS")
        where: dict[str, Any] = {"sock": sock} if sock is not None else {"host": host, "port": port}
        # close_timeout 1 s: a peer that vanished without a close frame must not hold a shutdown 10 s
        self.server = await serve(
            self._serve,
            ssl=ssl_context,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            process_request=self._check,
            compression=None,
            max_size=2**20,
            close_timeout=1.0,
            **where,
        )
        name = next(iter(self.server.sockets)).getsockname()
        self.local = (name[0], name[1])
        return self

    def _check(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != self.path:
            return conn.respond(HTTPStatus.NOT_FOUND, "SIP over WebSocket lives on " + self.path + "\n")
        offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
        if SUBPROTOCOL not in [p.strip().lower() for p in offered.split(",")]:
            return conn.respond(HTTPStatus.BAD_REQUEST, "subprotocol 'sip' required (RFC 7118)\n")
        return None

    async def _serve(self, conn: ServerConnection) -> None:
        sender = _WsFlowSender(conn)
        flow = Flow(
            self.transport_name, _addr(conn.local_address), _addr(conn.remote_address), sender.send, sender.close
        )
        self.flows[flow.remote] = flow
        try:
            await _read_loop(conn, flow, self.handler)
        finally:
            self.flows.pop(flow.remote, None)
            sender.queue.put_nowait(None)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def ws_connect(
    url: str,
    handler: MessageHandler,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 5.0,
    subprotocols: tuple[str, ...] = (SUBPROTOCOL,),
) -> Flow:
    """Connect to a SIP WebSocket server; returns the Flow (closed when the socket closes)."""
    kwargs: dict[str, Any] = {
        "subprotocols": [Subprotocol(p) for p in subprotocols],
        "open_timeout": timeout,
        "compression": None,
        "max_size": 2**20,
        "close_timeout": 1.0,
    }
    if url.startswith("wss:"):
        kwargs["ssl"] = ssl_context if ssl_context is not None else ssl.create_default_context()
    conn = await ws_connect_raw(url, **kwargs)
    sender = _WsFlowSender(conn)
    flow = Flow(
        "WSS" if url.startswith("wss:") else "WS",
        _addr(conn.local_address),
        _addr(conn.remote_address),
        sender.send,
        sender.close,
        _aclose=sender.aclose,
    )
    asyncio.get_running_loop().create_task(_read_loop(conn, flow, handler))
    return flow
