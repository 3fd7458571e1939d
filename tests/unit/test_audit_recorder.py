"""The audit recorder as an ASGI wrapper (driven in memory, no socket), the impostor's request
parser and the env file."""

from __future__ import annotations

import asyncio
import json
import shlex
import stat
from pathlib import Path
from typing import Any

from pbxcheck.audit.env import write_env_file
from pbxcheck.audit.impostor import parse_request
from pbxcheck.audit.recorder import PLAIN, TLS, Chaos, Recorder

BODY = json.dumps({"acao": "insert", "login": "root", "senha": "x", "token": "y", "idcampanha": "900"}).encode()


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    """A stand-in for the central: echoes the body it was handed."""
    message = await receive()
    body = message["body"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"echo:" + body})


def _call(recorder: Recorder, port: str, body: bytes, *, disconnect_after: float | None = None) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    chunks = [body[:10], body[10:]]

    async def receive() -> dict[str, Any]:
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}
        if disconnect_after is None:
            await asyncio.Event().wait()
        await asyncio.sleep(disconnect_after or 0)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api.php",
        "query_string": b"a=1",
        "headers": [(b"content-type", b"application/json")],
    }
    asyncio.run(recorder.wrap(_inner, port)(scope, receive, send))
    return sent


def test_every_request_is_kept_whole_and_handed_on_unchanged() -> None:
    rec = Recorder()
    rec.phase = "normal"
    sent = _call(rec, TLS, BODY)
    assert sent[-1]["body"] == b"echo:" + BODY
    (ex,) = rec.exchanges("normal")
    assert (ex.port, ex.method, ex.path, ex.query, ex.body) == (TLS, "POST", "/api.php", "a=1", BODY)
    assert ex.headers == [("content-type", "application/json")]
    assert (ex.status, ex.answer, ex.acao, ex.chaos) == (200, b"echo:" + BODY, "insert", None)


def test_chaos_answers_the_chosen_acoes_only_and_only_on_the_https_port() -> None:
    rec = Recorder()
    rec.chaos, rec.chaos_acoes = Chaos.HTML_500, frozenset({"insert"})
    sent = _call(rec, TLS, BODY)
    assert sent[0]["status"] == 500 and b"Fatal error" in sent[-1]["body"]
    assert _call(rec, PLAIN, BODY)[-1]["body"] == b"echo:" + BODY
    other = json.dumps({"acao": "statusramais"}).encode()
    assert _call(rec, TLS, other)[-1]["body"] == b"echo:" + other
    rec.chaos = Chaos.DENIAL
    assert json.loads(_call(rec, TLS, BODY)[-1]["body"]) == ["Status", "Login/Senha Invalido"]
    rec.chaos = Chaos.INVALID
    assert json.loads(_call(rec, TLS, BODY)[-1]["body"]) == ["Status", "Requisicao Invalida"]
    assert [e.chaos for e in rec.exchanges()] == ["html-500", None, None, "denial", "requisicao-invalida"]


def test_chaos_timeout_holds_until_the_client_leaves_or_the_hold_ends() -> None:
    rec = Recorder(hold_s=5.0)
    rec.chaos = Chaos.TIMEOUT
    assert _call(rec, TLS, BODY, disconnect_after=0.01) == []  # the client gave up: nothing sent
    rec.hold_s = 0.01
    sent = _call(rec, TLS, BODY)
    assert sent[0]["status"] == 504
    assert [e.status for e in rec.exchanges()] == [0, 504]


def test_the_impostor_parses_what_a_client_sent() -> None:
    raw = b"POST /api.php?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\nContent-Length: 2\r\n\r\n{}"
    ex = parse_request(raw, "impostor")
    assert ex is not None
    assert (ex.method, ex.path, ex.query, ex.body) == ("POST", "/api.php", "x=1", b"{}")
    assert ("authorization", "Bearer t") in ex.headers
    assert parse_request(b"\x16\x03\x01garbage", "impostor") is None


def test_env_file_is_private_and_shell_readable(tmp_path: Path) -> None:
    env = {
        "API_URL": "https://127.0.0.1:1",
        "API_LOGIN": "root",
        "API_SENHA": "it's $ecret",
        "API_TOKEN": "t",
        "API_CA": "/c a.pem",
    }
    path = write_env_file(tmp_path / "audit" / "client.env", env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    assert {n: shlex.split(v)[0] for n, _, v in (line.partition("=") for line in lines)} == env
