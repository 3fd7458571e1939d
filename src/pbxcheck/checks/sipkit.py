"""The probes' SIP toolkit: what is specific to probing, on the core's pieces.

A probe is an attacker and an auditor at once: it sends exactly the bytes it means (a replayed
Authorization, a wrong ``nc``, a foreign nonce) and reads whatever comes back, even an answer the
strict parser would reject. So a :class:`Channel` puts exactly those bytes on the wire (as client
transactions of the one engine) and reads answers with the core's lenient scanner (``Msg`` is a
``sip.scan.RawMessage``); messages are built by the core's builders (``sip.register.make_register``,
``message.make_request``), digests by ``sip.digest`` and IDs by ``sip.ids``. A probe's ordinary phone
is a ``sip.ua.UserAgent`` (:class:`Phone` reads its answers as ``Msg``). The glue: one
:class:`~pbxcheck.sip.ladder.MessageLog` per check, turned into the failure text, the ladder, the raw
messages and a pcap (:class:`SipSession`). Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import tempfile
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from ..contract import ClauseId
from ..errors import SipError
from ..redact import Redactor
from ..sip import digest
from ..sip.aio import SipTimeout
from ..sip.errors import DigestError, SipParseError
from ..sip.flow import Addr, Flow
from ..sip.headers import parse_auth_params
from ..sip.ids import new_branch, new_call_id, new_cnonce, new_instance_host, new_tag
from ..sip.ladder import MessageLog, render_ladder
from ..sip.message import Request, Response, make_request, to_bytes
from ..sip.parser import parse_message
from ..sip.register import make_register
from ..sip.scan import RawMessage, scan
from ..sip.ua import Call, UaPort, UserAgent
from ..sip_target import ua_config_for
from ..target import Extension, Target
from ..wrong import wrong_like
from .checker import ClauseFailure
from .failure import failure_headline, format_failure

wrong_password = wrong_like  # a guess of the real password's shape, never derived from it
UA = [("User-Agent", "pbxcheck-probe"), ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")]


class Msg(RawMessage):
    """A message read leniently (``sip.scan``), with the probes' shorthands."""

    __slots__ = ()

    @classmethod
    def read(cls, raw: bytes) -> Msg:
        r = scan(raw)
        return cls(r.start_line, r.headers, r.body, r.complete)

    first_line = property(lambda self: self.start_line)
    get = RawMessage.header
    all = RawMessage.headers_all

    @property
    def cseq(self) -> tuple[int, str]:
        v = (self.header("CSeq") or "0 ?").split()
        return (int(v[0]) if v and v[0].isdigit() else 0, v[1].upper() if len(v) > 1 else "?")

    @property
    def has_sdp(self) -> bool:
        return "application/sdp" in (self.header("Content-Type") or "").lower() and bool(self.body.strip())


def final(responses: list[Msg]) -> Msg | None:
    return next((r for r in reversed(responses) if r.status is not None and r.status >= 200), None)


def status_of(responses: list[Msg]) -> int | None:
    f = final(responses)
    return f.status if f else None


# --- digest with the probes' knobs (the arithmetic and the header are sip.digest's) ------------------


def challenge_params(value: str) -> dict[str, str]:
    """``Digest realm="x", nonce="y"`` → {'scheme': 'Digest', 'realm': 'x', ...}; what can be read of a
    malformed one (a probe reports challenges, it does not reject them)."""
    try:
        scheme, params = parse_auth_params(value)
    except SipParseError:
        scheme, params = value.strip().partition(" ")[0], {}
    return {"scheme": scheme, **params}


# RFC 2617 3.2.2: nc counts the requests this client (the whole harness) sent with a nonce; a server may
# hand one nonce to every request from an IP within a second, so a second phone continues the count.
_NONCE_COUNTS: dict[str, int] = {}


def digest_header(
    chal: dict[str, str],
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int | None = None,
    nonce: str | None = None,
) -> str:
    """An Authorization value answering ``chal``; ``nc`` defaults to the next count for the nonce, an
    explicit one is sent as is (replays, wrong counts); ``nonce`` overrides the challenge's (stale, foreign)."""
    nonce = nonce or chal.get("nonce", "")
    qop = "auth" if "auth" in [q.strip() for q in chal.get("qop", "").split(",")] else None
    if nc is None:
        nc = _NONCE_COUNTS.get(nonce, 0) + 1 if qop else 1
    if len(_NONCE_COUNTS) > 10_000:
        _NONCE_COUNTS.clear()
    _NONCE_COUNTS[nonce] = max(_NONCE_COUNTS.get(nonce, 0), nc)
    realm, algorithm = chal.get("realm", ""), chal.get("algorithm", "MD5")
    cnonce, nc_hex = (new_cnonce(), f"{nc:08x}") if qop else (None, None)

    def response(alg: str) -> str:
        return digest.compute_response(
            algorithm=alg,
            username=username,
            realm=realm,
            password=password,
            method=method,
            uri=uri,
            nonce=nonce,
            qop=qop,
            nc=nc_hex,
            cnonce=cnonce,
        )

    try:
        value = response(algorithm)
    except DigestError:  # an algorithm we do not know: answer in MD5, the document's
        value = response("MD5")
    return str(
        digest.Credentials(username, realm, nonce, uri, value, algorithm, cnonce, chal.get("opaque"), qop, nc_hex)
    )


@dataclass
class Dialogish:
    """What a hand-built sequence of out-of-dialog requests shares (Call-ID, From tag, CSeq); a
    dialog's state is ``sip.dialog.Dialog``'s."""

    call_id: str = field(default_factory=new_call_id)
    from_tag: str = field(default_factory=new_tag)
    cseq: int = field(default_factory=lambda: 1 + secrets.randbelow(20000))

    def next(self) -> int:
        self.cseq += 1
        return self.cseq


# --- the channel: the engine's transactions, bytes built by the probe ---------------------------------


def _msg(m: Request | Response) -> Msg:
    return Msg(m.start_line, m.headers.items, m.body)


class Channel(UaPort):
    """One transport to the target (UDP, TCP, WS, WSS) on the one engine (a ``sip.ua.UaPort`` with no
    agent): requests run as client transactions; whatever comes in is kept, read leniently, in
    ``received``. An answer the strict parser rejects is still read (``sip.scan``) and handed to the
    request it names. A request from the target goes to the port's agents (phones), if any."""

    def __init__(self, transport: str, log: MessageLog) -> None:
        super().__init__(transport, log)
        self.target: Target
        self.domain = self.via_host = ""  # the target's SIP host; our sent-by (an ``.invalid`` host on a WebSocket)
        self.received: list[Msg] = []  # everything that came in, read leniently
        self._lenient: dict[tuple[str | None, int, str], Callable[[Msg], None]] = {}

    @classmethod
    async def to(cls, target: Target, transport: str, log: MessageLog, *, local: Addr = ("127.0.0.1", 0)) -> Channel:
        cfg = ua_config_for(target, None, transport=transport, local_host=local[0], local_port=local[1], timeout=3.0)
        self = await cls.open(cfg, log)
        assert isinstance(self, Channel)
        self.target, self.domain = target, target.sip_host
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

    def build(
        self,
        method: str,
        uri: str,
        *,
        from_user: str,
        to_user: str | None = None,
        d: Dialogish,
        cseq: int | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str = "application/sdp",
        contact: bool = True,
    ) -> bytes:
        """A request as bytes (the core's builders); ``headers`` are added verbatim (Authorization, Expires...)."""
        cseq = d.cseq if cseq is None else cseq
        with_contact = contact and method in ("REGISTER", "INVITE", "OPTIONS")
        if method == "REGISTER":
            return to_bytes(
                make_register(
                    self.domain,
                    from_user,
                    sent_by=self.via_host,
                    transport=self.transport,
                    call_id=d.call_id,
                    cseq=cseq,
                    from_tag=d.from_tag,
                    expires=None,
                    contact=self.contact(from_user) if with_contact else "",
                    uri=uri,
                    headers=[*UA[1:], *headers],
                    user_agent=UA[0][1],
                )
            )
        return to_bytes(
            make_request(
                method,
                uri,
                from_=f"<sip:{from_user}@{self.domain}>;tag={d.from_tag}",
                to=f"<sip:{to_user or from_user}@{self.domain}>",
                call_id=d.call_id,
                cseq=cseq,
                via=f"SIP/2.0/{self.transport} {self.via_host};rport;branch={new_branch()}",
                contact=self.contact(from_user) if with_contact else None,
                body=body,
                headers=[*UA, *headers],
                content_type=content_type if body else None,
            )
        )

    def _receive(self, data: bytes, flow: Flow) -> None:
        if data.strip():
            self.received.append(Msg.read(data))
        self.endpoint.receive(data, flow)

    def _on_request(self, req: Request, flow: Flow) -> None:
        if self.agents:  # a bare channel answers nothing it did not ask for (``received`` keeps it)
            super()._on_request(req, flow)

    def _on_parse_error(self, data: bytes, flow: Flow, exc: SipParseError) -> None:
        m = Msg.read(data)
        deliver = self._lenient.get((m.call_id, *m.cseq)) if m.is_response else None
        if deliver is not None:
            deliver(m)

    async def request(self, data: bytes, *, timeout: float = 2.0) -> list[Msg]:
        """Send ``data`` as a client transaction; the answers, provisional first, until a final one or
        ``timeout`` (the engine retransmits over UDP)."""
        assert self.flow is not None
        req = parse_message(data)
        assert isinstance(req, Request)
        got: list[Msg] = []
        done: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()

        def answer(m: Msg) -> None:
            if m.status is None or m.status < 200:
                got.append(m)
            elif not done.done():
                done.set_result(m)

        key = (req.call_id, req.cseq.number, req.method)
        self._lenient[key] = answer
        tx = self.endpoint.request(req, self.flow, on_provisional=lambda r: answer(_msg(r)))
        tx.final.add_done_callback(lambda f: None if f.cancelled() or f.exception() else answer(_msg(f.result())))
        try:
            await asyncio.wait([done], timeout=timeout)
            return got + [done.result()] if done.done() else got
        finally:
            self._lenient.pop(key, None)
            if not tx.final.done():
                self.endpoint.forget(tx)


# --- REGISTER as the probe picks (any user, any password), and the probes' phone (a sip.ua agent) ---


@dataclass
class Exchange:
    """A request sent once without and once with credentials: what came back each time."""

    first: list[Msg]
    second: list[Msg] = field(default_factory=list)
    challenge: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> int | None:
        return status_of(self.second) if self.second else status_of(self.first)

    @property
    def first_status(self) -> int | None:
        return status_of(self.first)


def register_request(
    ch: Channel,
    user: str,
    d: Dialogish,
    expires: int | None = 90,
    headers: Iterable[tuple[str, str]] = (),
    *,
    contact: bool = True,
) -> bytes:
    extra = [("Expires", str(expires))] if expires is not None else []
    return ch.build(
        "REGISTER", ch.server_uri, from_user=user, d=d, cseq=d.next(), headers=[*extra, *headers], contact=contact
    )


async def register_as(
    ch: Channel,
    user: str,
    password: str,
    expires: int | None = 90,
    *,
    d: Dialogish | None = None,
    timeout: float = 2.0,
    contact: bool = True,
) -> Exchange:
    """REGISTER from ``ch`` as ``user`` and, if challenged, once more answering with ``password``: the
    document's two-step with whatever user and password the probe picks (wrong ones included)."""
    d = d or Dialogish()
    ex = Exchange(await ch.request(register_request(ch, user, d, expires, contact=contact), timeout=timeout))
    f = final(ex.first)
    if f is not None and f.status in (401, 407):
        ex.challenge = challenge_params(f.get("www-authenticate" if f.status == 401 else "proxy-authenticate") or "")
        auth = digest_header(ex.challenge, method="REGISTER", uri=ch.server_uri, username=user, password=password)
        name = "Authorization" if f.status == 401 else "Proxy-Authorization"
        ex.second = await ch.request(
            register_request(ch, user, d, expires, [(name, auth)], contact=contact), timeout=timeout
        )
    return ex


@dataclass
class CallResult:
    ok: bool
    invite1: list[Msg] = field(default_factory=list)  # the answers to the first INVITE (the challenge)
    invite2: list[Msg] = field(default_factory=list)  # to the authenticated one (invite1's when unchallenged)
    bye: list[Msg] = field(default_factory=list)
    problem: str = ""
    call: Call | None = None


class Phone:
    """One extension of the target file as a ``sip.ua.UserAgent`` (it answers a call 183 with SDP, then
    200), read the probes' way: every answer as a :class:`Msg`, the first INVITE's apart."""

    def __init__(self, ua: UserAgent) -> None:
        self.ua, self.number = ua, ua.config.user

    async def register(self, expires: int = 90, *, timeout: float = 2.0) -> Exchange:
        """REGISTER, and if challenged once more with credentials; silence is an empty Exchange."""
        saved, self.ua.config.timeout = self.ua.config.timeout, timeout
        try:
            r = await self.ua.register(expires, max_challenges=1)
        except SipTimeout:
            return Exchange([])
        finally:
            self.ua.config.timeout = saved
        if not r.challenges:
            return Exchange([_msg(r.response)])
        c = r.challenges[0]
        return Exchange(
            [_msg(c)],
            [_msg(r.response)],
            challenge_params(c.headers.get("WWW-Authenticate" if c.status == 401 else "Proxy-Authenticate") or ""),
        )

    async def call(
        self, to_user: str, *, hold: float = 0.1, ring_timeout: float = 6.0, hangup: bool = True
    ) -> CallResult:
        """INVITE (SDP) → 401/407 (ACKed) → INVITE+auth → 1xx → 200 (SDP) → ACK → hold → BYE."""
        call = self.ua.invite(to_user, ring_timeout=ring_timeout)
        try:
            await call.wait_answered(2 * ring_timeout + 1)
        except SipError:
            pass
        got = [_msg(r) for r in call.responses]
        cut = next((i + 1 for i, m in enumerate(got) if m.status in (401, 407)), 0)
        res = CallResult(call.answered.is_set(), got[:cut] or got, got[cut:] if cut else got, call=call)
        if not res.ok:
            f = final(res.invite2)
            res.problem = (
                f"the call was answered {f.first_line}"
                if f
                else f"no final answer to the {'authenticated ' if cut else 'first '}INVITE"
            )
        elif hangup:
            await asyncio.sleep(hold)
            res.bye = await self.bye(call)
        return res

    async def bye(self, call: Call) -> list[Msg]:
        return await answers(call, call.hangup(timeout=2.0))

    def incoming(self) -> list[Call]:
        return [c for c in self.ua.calls.values() if c.direction == "in"]

    @property
    def invites(self) -> list[Msg]:
        return [_msg(c.invite) for c in self.incoming() if c.invite is not None]


async def answers(call: Call, step: Coroutine[Any, Any, int]) -> list[Msg]:
    """What ``step`` (a request in ``call``: ``call.info(...)``) got back, as read; silence: nothing."""
    before = len(call.responses)
    try:
        await step
    except SipError:
        pass  # silence: no answers
    return [_msg(r) for r in call.responses[before:]]


# --- the per-check session (the ``sip`` fixture): channels, and failing a clause with the exchange ----


RAW_LIMIT = 60_000  # characters of raw messages kept in one attachment / failure text


class SipSession:
    def __init__(self, target: Target, redactor: Redactor, name: str) -> None:
        self.target, self.redactor, self.name = target, redactor, name
        self.log = MessageLog(limit=5000)
        self.channels: list[Channel] = []
        self.agents: list[UserAgent] = []
        self.crafted = False  # set by probes that sent scapy-crafted packets: a pcap is attached
        self.notes: list[str] = []

    def extensions(self, n: int, *, ramal_web: bool | None = None, exclude: tuple[str, ...] = ()) -> list[Extension]:
        """``n`` extensions (the disposable classe5 client's last: C5-1 blocks it), or skip."""
        pool = [
            e
            for e in self.target.extensions
            if e.number not in exclude and (ramal_web is None or e.ramal_web == ramal_web)
        ]
        pool.sort(key=lambda e: e.classe5_client == self.target.disposable_classe5)
        if len(pool) < n:
            kind = "" if ramal_web is None else (" with ramal_web" if ramal_web else " without ramal_web")
            pytest.skip(f"the target file lists fewer than {n} extensions{kind} ([[extensions]])")
        return pool[:n]

    def never_valid_extension(self) -> str:
        """A random extension number that is not in the target file (the enumeration baseline)."""
        known = {e.number for e in self.target.extensions}
        while (cand := "8" + "".join(str(secrets.randbelow(10)) for _ in range(6))) in known:
            pass
        return cand

    async def channel(self, transport: str = "UDP", *, local: Addr = ("127.0.0.1", 0)) -> Channel:
        ch = await Channel.to(self.target, transport, self.log, local=local)
        self.channels.append(ch)
        return ch

    async def phone(
        self,
        ext: Extension,
        transport: str = "UDP",
        *,
        local: Addr = ("127.0.0.1", 0),
        beside: Phone | None = None,
        answer_delay: float = 0.05,
    ) -> Phone:
        """``ext`` as a user agent on its own socket, or on ``beside``'s (two devices behind one NAT mapping)."""
        cfg = ua_config_for(
            self.target,
            ext.number,
            transport=transport,
            local_host=local[0],
            local_port=local[1],
            auto_answer=answer_delay,
            early_media=True,
            user_agent=UA[0][1],
            timeout=2.0,
            unregister_on_close=False,
            rtp_port=10_000 + 2 * secrets.randbelow(4000),
        )  # SIP-INV-2's range
        port = beside.ua.port if beside else await self.channel(transport, local=local)
        ua = await UserAgent(cfg, port).start()
        self.agents.append(ua)
        return Phone(ua)

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 20.0) -> Any:
        async def main() -> Any:
            try:
                return await asyncio.wait_for(coro, timeout)
            except TimeoutError:
                self.fail_any(f"the probe did not finish within {timeout:.0f} s (bounded)")
            finally:
                for ua in self.agents:
                    await ua.close()
                for ch in self.channels:
                    await ch.close()
                del self.agents[:], self.channels[:]

        return asyncio.run(main())

    def ladder(self) -> str:
        return self.redactor.text(render_ladder(self.log.entries, title=f"SIP exchange of {self.name}"))

    def raw(self) -> str:
        text = "\n".join(
            f"--- {e.transport} {e.src[0]}:{e.src[1]} -> {e.dst[0]}:{e.dst[1]}\n"
            + e.data.decode("utf-8", "replace").replace("\r\n", "\n")
            for e in self.log.entries
        )
        if len(text) > RAW_LIMIT:
            text = text[:RAW_LIMIT] + f"\n… ({len(text)} characters in all; the rest in the Allure attachment)"
        return self.redactor.text(text)

    def fail(self, clause_id: ClauseId, what: str) -> NoReturn:
        """Fail ``clause_id`` through the shared formatter: what went wrong, the ladder, the notes,
        the raw messages (the reproduction of a SIP exchange)."""
        tail = self.raw()
        sections = [
            self.ladder(),
            "\n".join(self.notes),
            "raw messages (last of the exchange):\n" + tail[-6000:] if tail else "",
        ]
        raise ClauseFailure(
            clause_id,
            format_failure(clause_id, what, sections, redactor=self.redactor),
            headline=failure_headline(clause_id, what, redactor=self.redactor),
        )

    def fail_any(self, what: str) -> NoReturn:
        raise AssertionError(self.redactor.text(what + "\n\n" + self.ladder()))

    def check(self, condition: object, clause_id: ClauseId, what: str | Callable[[], str]) -> None:
        if not condition:
            self.fail(clause_id, what() if callable(what) else what)

    def attach(self, failed: bool) -> None:
        """The ladder, the raw messages and (crafted packets or a failure) a pcap, to the Allure report."""
        try:
            import allure
        except ImportError:
            return
        if not len(self.log):
            return
        allure.attach(self.ladder(), name="SIP ladder", attachment_type=allure.attachment_type.TEXT)
        allure.attach(self.raw(), name="SIP messages", attachment_type=allure.attachment_type.TEXT)
        if self.crafted or failed:
            try:
                from pbxcheck.sip.drivers.craft import write_pcap

                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "exchange.pcap"
                    write_pcap(
                        [dataclasses.replace(e, data=self.redactor.bytes(e.data)) for e in self.log.entries], path
                    )
                    allure.attach(
                        path.read_bytes(),
                        name="SIP pcap",
                        extension="pcap",
                        attachment_type=getattr(allure.attachment_type, "PCAP", None),
                    )
            except Exception as exc:  # a pcap is a bonus; never fail a check for it
                self.notes.append(f"(no pcap: {exc})")
