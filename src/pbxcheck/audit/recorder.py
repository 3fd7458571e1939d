"""What the client sent: every request reaching the audit central, raw, and the chaos answers.

The central's apps are wrapped (``CentralConfig.wrap_app``): the request is read whole, kept, and
handed on unchanged; the answer is copied on its way out. In a chaos phase the wrapper answers the
chosen calls itself and the central never sees them (a refused insert inserts nothing).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import contract as C
from ..central.app import HTML_TYPE, JSON_TYPE, PHP_500

BODY_CAP = 4 << 20  # a request body kept up to this; the rest is drained (the central refuses it anyway)
ANSWER_CAP = 8 << 20  # an answer copied up to this (500 call records are ~0.7 MB)
MAX_EXCHANGES = 20_000  # per audit: a client in a tight loop is still answered, no longer kept

PLAIN = "http"  # the plain-HTTP port
TLS = "https"  # the HTTPS API port
IMPOSTOR = "impostor"  # CL-TLS-2's server, whose certificate API_CA did not sign


class Chaos(StrEnum):
    """The wrong answers of the error phase (CL-ERR-1)."""

    DENIAL = "denial"  # ["Status","Login/Senha Invalido"]
    INVALID = "requisicao-invalida"  # ["Status","Requisicao Invalida"]
    HTML_500 = "html-500"  # PHP's fatal error page, HTTP 500
    TIMEOUT = "timeout"  # no answer until the client gives up (or hold_s passes: 504)


@dataclass
class Exchange:
    phase: str
    port: str  # TLS, PLAIN or IMPOSTOR
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    at: float  # time.monotonic() when the request arrived
    status: int = 0  # 0: no answer (the client left first)
    chaos: str | None = None  # the chaos answer given instead of the central's
    chunks: list[bytes] = field(default_factory=list, repr=False)

    @property
    def answer(self) -> bytes:
        return b"".join(self.chunks)

    def json(self) -> Any:
        """The body as JSON, or None when it is not (CL-REQ-3 says why)."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None

    @property
    def acao(self) -> str | None:
        data = self.json()
        acao = data.get("acao") if isinstance(data, dict) else None
        return acao.lower() if isinstance(acao, str) else None

    def line(self) -> str:
        q = f"?{self.query}" if self.query else ""
        return f"{self.method} {self.path}{q}"


def _status_answer(text: str) -> bytes:
    return json.dumps([C.STATUS, text], ensure_ascii=False, separators=(",", ":")).encode()


CHAOS_ANSWERS: dict[Chaos, tuple[int, bytes, bytes]] = {
    Chaos.DENIAL: (200, JSON_TYPE.encode(), _status_answer(C.LOGIN_INVALIDO)),
    Chaos.INVALID: (200, JSON_TYPE.encode(), _status_answer(C.REQUISICAO_INVALIDA)),
    Chaos.HTML_500: (500, HTML_TYPE, PHP_500),
}
GATEWAY_TIMEOUT = (504, HTML_TYPE, b"<html><body><h1>504 Gateway Time-out</h1></body></html>\n")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        if size < BODY_CAP:
            chunks.append(chunk[: BODY_CAP - size])
        size += len(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class Recorder:
    """Keeps every exchange; ``phase`` names the ones that follow; ``chaos`` (with ``chaos_acoes``,
    None for every call) makes the HTTPS API answer wrongly."""

    def __init__(self, hold_s: float = 20.0) -> None:
        self.hold_s = hold_s
        self.phase = "setup"
        self.chaos: Chaos | None = None
        self.chaos_acoes: frozenset[str] | None = None
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self.dropped = 0

    def add(self, ex: Exchange) -> None:
        with self._lock:
            if len(self._exchanges) < MAX_EXCHANGES:
                self._exchanges.append(ex)
            else:
                self.dropped += 1

    def exchanges(self, phase: str | None = None) -> list[Exchange]:
        with self._lock:
            return [e for e in self._exchanges if phase is None or e.phase == phase]

    def _chaos_for(self, port: str, path: str, body: bytes) -> Chaos | None:
        if self.chaos is None or port != TLS or path not in (C.API_PATH, "/discador.php"):
            return None
        if self.chaos_acoes is None:
            return self.chaos
        probe = Exchange("", port, "POST", path, "", [], body, 0.0)
        return self.chaos if probe.acao in self.chaos_acoes else None

    def wrap(self, inner: ASGIApp, port: str) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            body = await _read_body(receive)
            ex = Exchange(
                phase=self.phase,
                port=port,
                method=str(scope.get("method", "")),
                path=str(scope.get("path", "")),
                query=bytes(scope.get("query_string", b"")).decode("latin-1"),
                headers=[(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in scope.get("headers", [])],
                body=body,
                at=time.monotonic(),
            )
            self.add(ex)
            given = False

            async def replay() -> Message:
                nonlocal given
                if not given:
                    given = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            async def copy(message: Message) -> None:
                if message["type"] == "http.response.start":
                    ex.status = int(message["status"])
                elif message["type"] == "http.response.body" and sum(map(len, ex.chunks)) < ANSWER_CAP:
                    ex.chunks.append(bytes(message.get("body", b"")))
                await send(message)

            chaos = self._chaos_for(port, ex.path, body)
            if chaos is None:
                await inner(scope, replay, copy)
                return
            ex.chaos = chaos.value
            if chaos is Chaos.TIMEOUT:
                if await self._client_left(receive):
                    return
                answer = GATEWAY_TIMEOUT
            else:
                answer = CHAOS_ANSWERS[chaos]
            await _send(copy, *answer)

        return app

    async def _client_left(self, receive: Receive) -> bool:
        """Hold the call until the client hangs up (True) or ``hold_s`` passes (False)."""
        deadline = time.monotonic() + self.hold_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(receive(), left)
            except TimeoutError:
                return False
            if message["type"] == "http.disconnect":
                return True
        return False


async def _send(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
