"""The API client: one httpx transport seam, every exchange kept for the report.

TLS is verified by default (``ca_file`` adds a CA; ``insecure`` is an explicit switch that reports
show). ``source_ip`` binds the client's side of the socket, which is how AUTH-3 is probed: on a
loopback target, 127.0.0.2 stands in for "some other public IP".
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from .answers import Answer, parse_answer
from .contract import API_PATH, RECORDINGS_PATH
from .errors import AnswerError, TransportError
from .redact import Redactor, curl_line
from .target import Target

_UNSET: Any = object()


@dataclass
class Exchange:
    """One request and what came back, for assertions and for the report."""

    url: str
    body: Any  # dict sent as JSON, or the raw str/bytes sent as is
    source_ip: str | None
    status_code: int | None = None
    raw: bytes = b""
    answer: Answer | None = None
    parse_error: str | None = None
    elapsed_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def value(self) -> Any:
        """The parsed JSON, or raises AnswerError saying why there is none."""
        if self.answer is None:
            raise AnswerError(self.parse_error or "no answer", self.raw)
        return self.answer.value

    def describe(
        self, redactor: Redactor, *, insecure: bool = False, ca_file: str | None = None, limit: int = 2000
    ) -> str:
        """The request, the answer and a curl reproduction, with secrets redacted."""
        body = self.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        sent = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        got = self.raw.decode("utf-8", "replace")
        if len(got) > limit:
            got = got[:limit] + f"… ({len(self.raw)} bytes in all)"
        if len(sent) > limit:
            sent = sent[:limit] + f"… ({len(sent)} characters in all)"
        iface = self.source_ip if self.source_ip not in (None, "127.0.0.1") else None
        lines = [
            f"sent:    POST {self.url}" + (f" from {self.source_ip}" if self.source_ip else ""),
            f"         {redactor.text(sent)}",
            f"got:     HTTP {self.status_code}  {redactor.text(got)}",
        ]
        if self.answer and self.answer.lenient:
            lines.append("lenient: " + "; ".join(self.answer.lenient))
        if self.parse_error:
            lines.append(f"parse:   {self.parse_error}")
        lines.append(
            "repro:   "
            + curl_line(self.url, body, redactor=redactor, insecure=insecure, ca_file=ca_file, interface=iface)
        )
        return "\n".join(lines)


def ssl_context(target: Target) -> ssl.SSLContext:
    """The API's TLS context (kept as a name here: the plugin and the load files import it)."""
    return target.api_ssl_context()


class ApiClient:
    """Talks to one target's HTTP API. Not thread-safe; cheap to create."""

    def __init__(
        self,
        target: Target,
        *,
        source_ip: str | None = _UNSET,
        plain: bool = False,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.target = target
        self.source_ip = target.source_ip if source_ip is _UNSET else source_ip
        self.base = (target.plain_url if plain else target.api_url).rstrip("/")
        self.exchanges: list[Exchange] = []
        if transport is None:
            transport = httpx.HTTPTransport(
                verify=ssl_context(target),
                local_address=self.source_ip,
                retries=0,
            )
        self._http = httpx.Client(transport=transport, timeout=timeout or target.timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def credentials(self, **override: Any) -> dict[str, Any]:
        creds: dict[str, Any] = {"login": self.target.login, "senha": self.target.senha, "token": self.target.token}
        creds.update(override)
        return creds

    def call(self, acao: str, /, **fields: Any) -> Exchange:
        """POST {acao, login, senha, token, **fields}. A field given as None is left out."""
        body: dict[str, Any] = {"acao": acao, **self.credentials()}
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not None}
        return self.post(body)

    def post(self, body: Any, *, path: str = API_PATH, headers: dict[str, str] | None = None) -> Exchange:
        """POST a dict as JSON, or str/bytes exactly as given."""
        url = self.base + path
        if isinstance(body, (dict, list)):
            content = json.dumps(body, ensure_ascii=False).encode()
        elif isinstance(body, str):
            content = body.encode()
        else:
            content = body
        ex = Exchange(url=url, body=body, source_ip=self.source_ip)
        started = time.perf_counter()
        try:
            resp = self._http.post(
                url, content=content, headers={"Content-Type": "application/json", **(headers or {})}
            )
        except httpx.HTTPError as exc:
            self.exchanges.append(ex)
            raise TransportError(f"POST {url}: {type(exc).__name__}: {exc}") from exc
        ex.elapsed_s = time.perf_counter() - started
        ex.status_code = resp.status_code
        ex.raw = resp.content
        ex.headers = dict(resp.headers)
        try:
            ex.answer = parse_answer(resp.content, resp.status_code)
        except AnswerError as exc:
            ex.parse_error = str(exc)
        self.exchanges.append(ex)
        return ex

    def get(self, path: str, *, auth: bool = False) -> httpx.Response:
        """GET a path (recordings). With ``auth``, the credentials go as query parameters."""
        url = self.base + path
        try:
            return self._http.get(url, params=self.credentials() if auth else None)
        except httpx.HTTPError as exc:
            raise TransportError(f"GET {url}: {type(exc).__name__}: {exc}") from exc

    def recording(self, gravacao: str) -> httpx.Response:
        return self.get(RECORDINGS_PATH + gravacao + ".gsm")
