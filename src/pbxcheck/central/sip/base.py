"""What the parts of the SIP side share: its settings, its names, and the narrow interfaces the
service gives them (``Replies`` to answer and set timers, ``Dialogs`` to also send requests), so
no part reaches into the service or the central and no import circle can form."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from pbxcheck.sip.drivers.base import Flow
from pbxcheck.sip.message import Request

from .transactions import ClientTransaction

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER"
ACCEPT = ("application/sdp", "application/dtmf-relay", "application/dtmf")
SERVER = "pbxcheck-central"
NEW_TAG = "\x00new"  # sentinel for respond(): make up a To tag

Stats = dict[str, int]  # counters the tests read: registered, challenged, parse_errors, rejected, forbidden


@dataclass
class SipSettings:
    nonce_lifetime: float = 30.0  # seconds a nonce stays fresh (then stale=TRUE)
    far_end_answer_delay: float = 1.0  # clock seconds until a simulated outside number answers
    far_end_progress_delay: float = 0.05  # seconds until its 183 Session Progress
    ring_timeout: float = 30.0  # clock seconds a device may ring before the call is given up
    max_call: float = 3600.0  # a call nobody hangs up is ended after this (clock seconds)
    log_messages: bool = False  # keep a MessageLog of every message (debugging; costs CPU)


class Replies(Protocol):
    """Answering requests and waiting: what admission and registration need of the service."""

    def respond(
        self,
        req: Request,
        flow: Flow,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = NEW_TAG,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        """Answer ``req``; ``to_tag`` NEW_TAG: a fresh To tag (stateless answers), None: no tag (100)."""

    def later(self, delay: float, fn: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
        """Call ``fn(*args)`` after ``delay`` clock seconds (the central's clock speed applies)."""


class Dialogs(Replies, Protocol):
    """Also placing requests of our own: what the B2BUA and click-to-call need."""

    def via(self, flow: Flow) -> str: ...

    def contact(self, flow: Flow, user: str = "central") -> str: ...

    def request(self, req: Request, flow: Flow) -> ClientTransaction: ...

    def send_ack(self, ack: Request, flow: Flow) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...
