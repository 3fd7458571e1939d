"""The probes' SIP kit: what is specific to probing, on the core's pieces.

A probe is an attacker and an auditor at once: it sends exactly the requests it means (a replayed
Authorization, a wrong ``nc``, a foreign nonce) and reads whatever comes back, even an answer the
strict parser would reject. So a :class:`Channel` sends them as client transactions of the one engine
and reads the answers with the core's lenient scanner (``sip.scan.RawMessage``). REGISTERs are built by
``sip.register.make_register``, other requests by a ``sip.dialog.Dialog``, digests by ``sip.digest``
(:func:`authorization` only adds the wrong knobs), IDs by ``sip.ids``. A probe's ordinary phone is a
``sip.ua.UserAgent`` (``SipSession.phone``); :func:`register` and :func:`call` drive it and report
silence or a refusal instead of raising. Failing a clause with the exchange (ladder, raw messages,
pcap) is the per-check session's (``checks.sipsession``). Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import SipError
from ..sip import digest
from ..sip.aio import SipTimeout
from ..sip.dialog import Dialog
from ..sip.errors import SipParseError
from ..sip.flow import Addr, Flow
from ..sip.headers import NameAddr, SipUri, parse_auth_params
from ..sip.ids import new_call_id, new_instance_host, new_tag
from ..sip.ladder import MessageLog
from ..sip.message import Request, Response
from ..sip.register import make_register
from ..sip.scan import RawMessage, scan
from ..sip.ua import Call, RegisterResult, UaPort, UserAgent
from ..sip_target import ua_config_for
from ..target import Target
from ..wrong import wrong_like

wrong_password = wrong_like  # a guess of the real password's shape, never derived from it
USER_AGENT = "pbxcheck-probe"
HEADERS = (("User-Agent", USER_AGENT), ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"))

M = TypeVar("M", RawMessage, Response)


def final(answers: Sequence[M]) -> M | None:
    """The last final answer (status >= 200) among ``answers``, if any."""
    return next((r for r in reversed(answers) if (r.status or 0) >= 200), None)


def has_sdp(r: Response) -> bool:
    return r.content_type == "application/sdp" and bool(r.body.strip())


def challenge_params(value: str) -> dict[str, str]:
    """``Digest realm="x", nonce="y"`` → {'scheme': 'Digest', 'realm': 'x', ...}; what can be read of a
    malformed one (a probe reports challenges, it does not reject them)."""
    try:
        scheme, params = parse_auth_params(value)
    except SipParseError:
        scheme, params = value.strip().partition(" ")[0], {}
    return {"scheme": scheme, **params}


# RFC 2617 3.2.2: nc counts the requests this client (the whole harness) sent with a nonce; a server may
# hand one nonce to every request from an IP within a second, so a second channel continues the count.
_NONCE_COUNTS: dict[str, int] = {}


def authorization(
    chal: digest.Challenge, user: str, password: str, uri: str, *, nc: int | None = None, nonce: str | None = None
) -> str:
    """A REGISTER's ``digest.build_authorization`` with the probes' knobs: ``nc`` defaults to the next count for the
    nonce, an explicit one is sent as is (replays, wrong counts); ``nonce`` replaces the challenge's
    (stale, foreign)."""
    chal = dataclasses.replace(chal, nonce=nonce) if nonce is not None else chal
    if nc is None:
        nc = _NONCE_COUNTS.get(chal.nonce, 0) + 1
    if len(_NONCE_COUNTS) > 10_000:
        _NONCE_COUNTS.clear()
    _NONCE_COUNTS[chal.nonce] = max(_NONCE_COUNTS.get(chal.nonce, 0), nc)
    return str(digest.build_authorization(chal, user, password, "REGISTER", uri, nc=nc))


# --- the channel: the engine's transactions, requests built as the probe picks ------------------------


def _raw(m: Response) -> RawMessage:
    return RawMessage(m.start_line, m.headers.items, m.body)


def _cseq_key(value: str) -> str:
    return " ".join(value.split()).upper()


class Channel(UaPort):
    """One transport to the target (UDP, TCP, WS, WSS) on the one engine (a ``sip.ua.UaPort`` with no
    agent) and one device's registration (its Call-ID, From tag and CSeq, RFC 3261 §10.2.4): requests
    run as client transactions; whatever comes in is kept, read leniently, in ``received``. An answer
    the strict parser rejects is still read (``sip.scan``) and handed to the request it names. A
    request from the target goes to the port's agents (phones), if any."""

    def __init__(self, transport: str, log: MessageLog) -> None:
        super().__init__(transport, log)
        self.domain = self.via_host = ""  # the target's SIP host; our sent-by (an ``.invalid`` host on a WebSocket)
        self.received: list[RawMessage] = []  # everything that came in, read leniently
        self._lenient: dict[tuple[str | None, str], Callable[[RawMessage], None]] = {}
        self.call_id, self.from_tag, self.cseq = new_call_id(), new_tag(), 1 + secrets.randbelow(20000)

    @classmethod
    async def to(cls, target: Target, transport: str, log: MessageLog, *, local: Addr = ("127.0.0.1", 0)) -> Channel:
        cfg = ua_config_for(target, None, transport=transport, local_host=local[0], local_port=local[1], timeout=3.0)
        self = await cls.open(cfg, log)
        assert isinstance(self, Channel)
        self.domain = target.sip_host
        self.via_host = new_instance_host() if self.is_ws else f"{self.local[0]}:{self.local[1]}"
        return self

    @property
    def is_ws(self) -> bool:
        return self.transport in ("WS", "WSS")

    def contact(self, user: str) -> str:
        return f"<sip:{user}@{self.via_host};transport={'ws' if self.is_ws else self.transport.lower()}>"

    def uri_for(self, user: str | None = None) -> str:
        """``sip:[user@]host:port;transport=x`` as the document's device writes it (``sip:host`` on a WebSocket)."""
        at = f"{user}@" if user else ""
        if self.is_ws:
            return f"sip:{at}{self.domain}"
        return f"sip:{at}{self.domain}:{self.flow.remote[1] if self.flow else 0};transport={self.transport.lower()}"

    @property
    def server_uri(self) -> str:
        return self.uri_for(None)

    def register(
        self, user: str, expires: int | None = 90, auth: Iterable[tuple[str, str]] = (), *, contact: bool = True
    ) -> Request:
        """This device's next REGISTER as ``user`` (any user: an unknown one too); ``auth`` is written as
        given (a replayed or deliberately wrong Authorization); no ``contact``: a fetch of the bindings."""
        self.cseq += 1
        return make_register(
            self.domain,
            user,
            sent_by=self.via_host,
            transport=self.transport,
            call_id=self.call_id,
            cseq=self.cseq,
            from_tag=self.from_tag,
            expires=expires,
            contact=self.contact(user) if contact else "",
            authorization=auth,
            uri=self.server_uri,
            headers=HEADERS[1:],
            user_agent=USER_AGENT,
        )

    def dialog(self, user: str, target: str | None = None) -> Dialog:
        """A new dialog (fresh Call-ID and tag) from ``user`` to ``user``, sent to ``target`` (``user``'s
        URI at the target by default): ``make_request_in_dialog(method, via=ch.via, ...)`` builds its requests."""
        aor = NameAddr(None, SipUri("sip", user, None, self.domain))
        return Dialog.outgoing(
            call_id=new_call_id(),
            local_uri=aor,
            local_tag=new_tag(),
            remote_uri=aor,
            remote_target=target or self.uri_for(user),
            local_seq=secrets.randbelow(20000),
            local_contact=self.contact(user),
        )

    @property
    def via(self) -> str:
        return f"SIP/2.0/{self.transport} {self.via_host};rport"

    def _receive(self, data: bytes, flow: Flow) -> None:
        if data.strip():
            self.received.append(scan(data))
        self.endpoint.receive(data, flow)

    def _on_request(self, req: Request, flow: Flow) -> None:
        if self.agents:  # a bare channel answers nothing it did not ask for (``received`` keeps it)
            super()._on_request(req, flow)

    def _on_parse_error(self, data: bytes, flow: Flow, exc: SipParseError) -> None:
        m = scan(data)
        deliver = self._lenient.get((m.call_id, _cseq_key(m.header("CSeq") or ""))) if m.is_response else None
        if deliver is not None:
            deliver(m)

    async def request(self, req: Request, *, timeout: float = 2.0) -> list[RawMessage]:
        """Send ``req`` as a client transaction; the answers, provisional first, until a final one or
        ``timeout`` (the engine retransmits over UDP)."""
        assert self.flow is not None
        got: list[RawMessage] = []
        done: asyncio.Future[RawMessage] = asyncio.get_running_loop().create_future()

        def answer(m: RawMessage) -> None:
            if m.status is None or m.status < 200:
                got.append(m)
            elif not done.done():
                done.set_result(m)

        key = (req.call_id, _cseq_key(str(req.cseq)))
        self._lenient[key] = answer
        tx = self.endpoint.request(req, self.flow, on_provisional=lambda r: answer(_raw(r)))
        tx.final.add_done_callback(lambda f: None if f.cancelled() or f.exception() else answer(_raw(f.result())))
        try:
            await asyncio.wait([done], timeout=timeout)
            return got + [done.result()] if done.done() else got
        finally:
            self._lenient.pop(key, None)
            if not tx.final.done():
                self.endpoint.forget(tx)


@dataclass
class Exchange:
    """A REGISTER sent once without and once with credentials: what came back each time."""

    first: list[RawMessage]
    second: list[RawMessage] = field(default_factory=list)
    challenge: digest.Challenge | None = None  # the first answer's, when it could be read

    @property
    def status(self) -> int | None:
        f = final(self.second or self.first)
        return f.status if f else None


async def register_as(
    ch: Channel,
    user: str,
    password: str | None,
    expires: int | None = 90,
    *,
    timeout: float = 2.0,
    contact: bool = True,
) -> Exchange:
    """REGISTER from ``ch`` as ``user`` and, if challenged, once more answering with ``password``: the
    document's two-step with whatever user and password the probe picks (wrong ones included; None:
    stop at the challenge)."""
    ex = Exchange(await ch.request(ch.register(user, expires, contact=contact), timeout=timeout))
    f = final(ex.first)
    if f is None or f.status not in (401, 407):
        return ex
    with suppress(SipError):
        ex.challenge = digest.Challenge.parse(f.header(digest.challenge_header(f.status or 401)) or "")
    if ex.challenge is not None and password is not None:
        auth = [
            (digest.credentials_header(f.status or 401), authorization(ex.challenge, user, password, ch.server_uri))
        ]
        ex.second = await ch.request(ch.register(user, expires, auth, contact=contact), timeout=timeout)
    return ex


# --- the probes' phone: a sip.ua.UserAgent, whose silence and refusals are results, not errors ----------


async def register(ua: UserAgent, expires: int = 90) -> RegisterResult | None:
    """REGISTER, answering one challenge; None when the registrar stays silent."""
    try:
        return await ua.register(expires, max_challenges=1)
    except SipTimeout:
        return None


async def call(
    ua: UserAgent, number: str, *, hold: float = 0.1, ring_timeout: float = 6.0, hangup: bool = True
) -> Call:
    """INVITE (SDP) → 401/407 (ACKed) → INVITE+auth → 1xx → 200 (SDP) → ACK → ``hold`` s → BYE; what
    came back is the call's (``answers_to``, ``failure``), silence included."""
    c = ua.invite(number, ring_timeout=ring_timeout)
    with suppress(SipError):
        await c.wait_answered(2 * ring_timeout + 1)
        if hangup:
            await asyncio.sleep(hold)
            await c.hangup(timeout=2.0)
    return c
