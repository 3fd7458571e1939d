"""The ASGI apps: the HTTPS API (``POST /api.php``, recordings) and the plain-HTTP port.

Order of checks on every call (docs/DESIGN.md): the body must be a JSON object (else
``Requisicao Invalida``), then all four factors (login, senha, token, and the source IP the token
is bound to; any wrong gets ``Login/Senha Invalido`` and changes nothing), then ``acao``, then the
acao's own fields. Every answer is HTTP 200 with a PHP-style JSON body; a handler that fails
unexpectedly answers ``Erro Interno``, never a 500 (only fault switches produce 500s).
Request bodies are never logged: they carry the credentials.

Choices beyond docs/DESIGN.md (the suites accept or pin these):

* ``acao`` missing or not a string (after auth): ``Campo Invalido: acao``.
* statusdiscador, statusdetalhado, deletediscador with an unknown ``idcampanha``:
  ``ID CAMPANHA NAO CADASTRADO`` (as insert); an empty idcampanha is an unknown one.
* clicktocall from an extension of a blocked classe5 client: ``Ramal Bloqueado`` (C5-1 is then
  visible over HTTP too); an empty ``destino``: ``Campo Invalido: destino``.
* statusoperacoes is capped at 500 events like statusreport, oldest first.
* Any method other than POST on /api.php: ``Requisicao Invalida`` (HTTP 200). ``/discador.php``
  (AMB-4, the click-to-call example) is the same endpoint; the ``Authorization: Bearer`` header
  is ignored, the body must carry the credentials.
* Recordings download without credentials, as the document describes (REC-2 reports it);
  an unknown one is a plain 404.
* No throttling of repeated denials (AUTH-6 reports it as a finding). Opt-in, to prove the AUTH-6
  check can tell: ``PBXCHECK_API_LOCKOUT=<failures>/<window s>/<lockout s>`` in the environment locks a
  source IP out (every call denied, right credentials too) after that many denials.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import contract as C
from . import gsm
from .calls import CallEngine
from .dialer import Dialer
from .faults import SLOW_API_DELAY
from .handlers import FieldError, Handlers, ServerError, Stream, encode, status
from .lockout import API_LOCKOUT_ENV, Lockout
from .store import Instance, Store

log = logging.getLogger("pbxcheck.central")

JSON_TYPE = "application/json"
HTML_TYPE = b"text/html; charset=UTF-8"
DRAIN_LIMIT = 64 << 20  # past this, a huge body is cut off instead of read and discarded
PHP_500 = b"<br />\n<b>Fatal error</b>:  Uncaught Error in /var/www/html/api.php:42\n"
PROTOCOL_ERROR = encode(status(C.ERRO_PROTOCOLO))


async def read_capped(receive: Receive, cap: int) -> bytes | None:
    """The request body, or None when it exceeds ``cap``; the excess is drained, never buffered."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= cap:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT:
            return None
        more = message.get("more_body", False)
    return None if size > cap else b"".join(chunks)


_JSON_TYPE_B = JSON_TYPE.encode()


@functools.lru_cache(maxsize=256)
def _status_bytes(text: str) -> bytes:
    return encode(status(text))


def _json(value: Any) -> tuple[int, bytes, bytes]:
    if isinstance(value, list) and len(value) == 2 and value[0] == C.STATUS and isinstance(value[1], str):
        return 200, _JSON_TYPE_B, _status_bytes(value[1])  # most answers are one of a few Status pairs
    return 200, _JSON_TYPE_B, encode(value)


class Api:
    """The HTTPS side. ``faults`` are the switches of faults.py in force."""

    def __init__(self, store: Store, dialer: Dialer, calls: CallEngine, faults: frozenset[str]) -> None:
        self.store = store
        self.faults = faults
        self.handlers = Handlers(store, dialer, calls, faults)
        # acoes a denied call still carries out: fault -> acao
        side_effects = {
            "denied-insert-side-effect": C.Acao.INSERT,
            "denied-delete-side-effect": C.Acao.DELETEDISCADOR,
            "denied-classe5-side-effect": C.Acao.BLOQUEIOCLASSE5,
            "denied-c2c-side-effect": C.Acao.CLICKTOCALL,
        }
        self._anyway = frozenset(a.value for f, a in side_effects.items() if f in faults)
        # off unless PBXCHECK_API_LOCKOUT is set: proves AUTH-6 recognises a throttling central
        self.lockout = Lockout.from_env(API_LOCKOUT_ENV)

    # --- four-factor auth ---------------------------------------------------------------------

    def authenticate(self, data: dict[str, Any], ip: str, acao: str | None = None) -> Instance | str:
        """The instance all four factors match, or the denial string to answer. ``acao`` (lower case)
        only matters to the faults that skip a factor for one acao."""
        login, senha, token = data.get("login"), data.get("senha"), data.get("token")
        instances = self.store.instances()
        if not isinstance(login, str) or not isinstance(senha, str):
            return self._denial("login")
        classe5 = acao == C.Acao.BLOQUEIOCLASSE5.value
        skip_ip = "ignore-source-ip" in self.faults or (classe5 and "classe5-ignores-source-ip" in self.faults)
        if "ignore-token" in self.faults or (classe5 and "classe5-ignores-token" in self.faults):
            candidates = [i for i in instances.values() if i.login == login]
        else:
            inst = instances.get(token) if isinstance(token, str) else None
            candidates = [inst] if inst else []
        if not candidates:
            return self._denial("token")
        why = "login"
        for inst in candidates:
            if inst.login != login:
                why = "login"
            elif "ignore-senha" not in self.faults and not hmac.compare_digest(
                inst.senha.encode(), senha.encode("utf-8", "surrogatepass")
            ):
                why = "senha"
            elif not skip_ip and inst.source_ip != ip:
                why = "ip"
            else:
                return inst
        return self._denial(why)

    def _denial(self, factor: str) -> str:
        if "denial-reveals-factor" in self.faults:
            return {
                "login": "Login Invalido",
                "senha": "Senha Invalida",
                "token": "Token Invalido",
                "ip": "IP Nao Autorizado",
            }[factor]
        return C.LOGIN_INVALIDO

    # --- the endpoint -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /api.php`` as a bare ASGI app: it is the hot path (every insert), and skipping
        Starlette's Request/Response objects there is measurably faster."""
        if "slow-api" in self.faults:
            await asyncio.sleep(SLOW_API_DELAY)  # a fixed delay per answer: what --baseline must catch
        status_code, content_type, body = await self.answer(scope, receive)
        if isinstance(body, Stream):
            await send(
                {"type": "http.response.start", "status": status_code, "headers": [(b"content-type", content_type)]}
            )
            async with contextlib.aclosing(
                body.chunks
            ) as chunks:  # its read transaction ends even if the client leaves
                async for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        await send(
            {
                "type": "http.response.start",
                "status": status_code,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def answer(self, scope: Scope, receive: Receive) -> tuple[int, bytes, bytes | Stream]:
        """(HTTP status, content type, body) for one request to the API endpoint."""
        if scope["method"] != "POST":
            return _json(status(C.REQUISICAO_INVALIDA))
        body = await read_capped(receive, C.MAX_BODY_BYTES)
        data: Any = None
        if body is not None:
            try:
                data = json.loads(body)
            except (ValueError, RecursionError):
                data = None
        if not isinstance(data, dict):
            if "server-error-on-bad-json" in self.faults:
                return 500, HTML_TYPE, PHP_500
            return _json(status(C.REQUISICAO_INVALIDA))
        client = scope.get("client")
        ip = client[0] if client else ""
        acao = data.get("acao")
        acao_key = acao.lower() if isinstance(acao, str) else None
        if self.lockout.locked(ip):
            return _json(status(C.LOGIN_INVALIDO))  # the right credentials too, until the lockout ends
        auth = self.authenticate(data, ip, acao_key)
        if isinstance(auth, str):
            self.lockout.failed(ip)
            if acao_key in self._anyway:
                self._carry_out_anyway(acao_key, data)
            return _json(status(auth))
        if acao_key is None:
            return _json(status(C.CAMPO_INVALIDO + "acao"))
        handler = self.handlers.table.get(acao_key)
        if handler is None:
            return _json(status(C.ACAO_INVALIDA))
        try:
            result = handler(data, auth)
        except FieldError as exc:
            return _json(status(C.CAMPO_INVALIDO + exc.name))
        except ServerError as exc:
            return 500, HTML_TYPE, PHP_500 + str(exc).encode()
        except Exception as exc:  # answered, logged without the body (it holds credentials)
            log.error("acao %s failed: %s: %s", acao_key, type(exc).__name__, exc)
            return _json(status(C.ERRO_INTERNO))
        if isinstance(result, Stream):
            return 200, JSON_TYPE.encode(), result
        return _json(result)

    def _carry_out_anyway(self, acao_key: str, data: dict[str, Any]) -> None:
        """The "denied-*-side-effect" faults: the acao runs as if auth had passed, before the denial is
        answered (its own answer is thrown away)."""
        try:
            owner = self.store.instance("main")
            self.handlers.table[acao_key](data, owner)
        except Exception:
            pass

    async def recording(self, request: Request) -> Response:
        path = request.path_params["path"]
        if not path.endswith(".gsm") or "recording-missing" in self.faults:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        size = self.store.recording_size(path[:-4])
        if size is None or size <= 0:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        if "recording-size-mismatch" in self.faults:
            size -= C.GSM_FRAME_BYTES
        body = gsm.not_gsm(size) if "recording-not-gsm" in self.faults else gsm.audio(size)
        return Response(body, media_type="audio/x-gsm")

    def asgi(self) -> ASGIApp:
        site = Starlette(
            routes=[
                Route(C.API_PATH, self),
                # AMB-4: the document's click-to-call example posts to /discador.php; same endpoint.
                Route("/discador.php", self),
                Route(C.RECORDINGS_PATH + "{path:path}", self.recording, methods=["GET"]),
            ]
        )

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            # /api.php skips Starlette's middleware stack and router (a measurable share of an
            # insert's cost); everything else, /api.php included if it ever gets here, is routed.
            if scope["type"] == "http" and scope["path"] == C.API_PATH:
                await self(scope, receive, send)
            else:
                await site(scope, receive, send)

        return app


async def plain_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The plain-HTTP port (AUTH-4): one answer to every method and path, no side effect."""
    if scope["type"] != "http":
        return
    await read_capped(receive, 0)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", JSON_TYPE.encode()), (b"content-length", str(len(PROTOCOL_ERROR)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": PROTOCOL_ERROR})
