"""Secrets never leave the process: every text bound for a report or a terminal goes through here."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"


class Redactor:
    """Replaces each secret value (longest first) with ``[redacted]`` in text, bytes or JSON data."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def text(self, s: str) -> str:
        for secret in self.secrets:
            s = s.replace(secret, REDACTED)
        return s

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value

    def bytes(self, b: bytes) -> bytes:
        for secret in self.secrets:
            b = b.replace(secret.encode(), REDACTED.encode())
        return b


def curl_line(url: str, body: Any, *, redactor: Redactor, insecure: bool = False,
              ca_file: str | None = None, interface: str | None = None) -> str:
    """A copy-paste reproduction of one API call, secrets shown as [redacted]."""
    payload = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    parts = ["curl", "-sS", "-X", "POST"]
    if insecure:
        parts.append("-k")
    if ca_file:
        parts += ["--cacert", ca_file]
    if interface:
        parts += ["--interface", interface]
    parts += ["-H", "Content-Type: application/json", "--data-binary", redactor.text(payload), url]
    return " ".join(shlex.quote(p) for p in parts)
