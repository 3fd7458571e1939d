"""The probes' SIP toolkit: what is specific to probing, on the core's pieces.

A probe is an attacker and an auditor at once: it sends exactly the bytes it means (a replayed
Authorization, a wrong ``nc``, a foreign nonce) and reads whatever comes back, even an answer the
strict parser would reject. So a :class:`Channel` puts bytes on the wire itself (one retransmission
over UDP, every request counted) and reads answers with the core's lenient scanner (``Msg`` is a
``sip.scan.RawMessage``); messages are built by the core's builders (``sip.register.make_register``,
``message.make_request``/``make_response``), digests by ``sip.digest`` and IDs by ``sip.ids``. The
glue: one :class:`~pbxcheck.sip.ladder.MessageLog` per check, turned into the failure text, the
ladder, the raw messages and a pcap (:class:`SipSession`). Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import tempfile
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest

from ..contract import TELEPHONE_EVENT_PT as TELEPHONE_EVENT_PT
from ..contract import ClauseId
from ..redact import Redactor
from ..sip import digest
from ..sip.aio import SipEndpoint
from ..sip.dialog import Dialog
from ..sip.drivers.tcp import tcp_connect
from ..sip.drivers.udp import UdpEndpoint
from ..sip.drivers.ws import ws_connect
from ..sip.errors import DigestError, SdpError, SipParseError
from ..sip.flow import Addr, Flow
from ..sip.headers import NameAddr, parse_auth_params
from ..sip.ids import new_branch, new_call_id, new_cnonce, new_instance_host, new_tag
from ..sip.ladder import MessageLog, render_ladder
from ..sip.message import Headers, Request, Response, make_request, make_response, to_bytes
from ..sip.parser import parse_message
from ..sip.register import make_register
from ..sip.scan import RawMessage, scan
from ..sip.sdp import make_answer, make_offer, parse_sdp
from ..target import Extension, Target
from ..wrong import wrong_like
from .checker import ClauseFailure
from .failure import failure_headline, format_failure

PAYLOADS = (18, 0, 8, 3, TELEPHONE_EVENT_PT)  # the document's device offer (G729, PCMU, PCMA, GSM; DTMF)
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
    def to_tag(self) -> str | None:
        return _param(self.header("To") or "", "tag")

    @property
    def has_sdp(self) -> bool:
        return "application/sdp" in (self.header("Content-Type") or "").lower() and bool(self.body.strip())

    def parsed(self) -> Request | Response:
        """The core's message of what was read (for ``make_response`` and ``sip.dialog.Dialog``)."""
        h = Headers(self.headers)
        if self.is_response:
            return Response(self.status or 0, self.reason, h, self.body)
        return Request(self.method or "", self.uri or "", h, self.body)


def _param(value: str, name: str) -> str | None:
    m = re.search(r";\s*" + re.escape(name) + r"\s*=\s*([^;,>\s]+)", value, re.IGNORECASE)
    return m.group(1) if m else None


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


def digest_header(chal: dict[str, str], *, method: str, uri: str, username: str, password: str,
                  nc: int | None = None, nonce: str | None = None) -> str:
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
        return digest.compute_response(algorithm=alg, username=username, realm=realm, password=password,
                                       method=method, uri=uri, nonce=nonce, qop=qop, nc=nc_hex, cnonce=cnonce)
    try:
        value = response(algorithm)
    except DigestError:  # an algorithm we do not know: answer in MD5, the document's
        value = response("MD5")
    return str(digest.Credentials(username, realm, nonce, uri, value, algorithm, cnonce, chal.get("opaque"),
                                  qop, nc_hex))


def sdp_offer(ip: str, port: int, payloads: Iterable[int] = PAYLOADS) -> bytes:
    pts = list(payloads)
    te = TELEPHONE_EVENT_PT if TELEPHONE_EVENT_PT in pts else None
    codecs = tuple(p for p in pts if p != TELEPHONE_EVENT_PT)
    return make_offer(ip, port, codecs, te, session_id=secrets.randbelow(10**9)).to_bytes()


def sdp_answer(offer: bytes, ip: str, port: int) -> bytes:
    """The core's RFC 3264 answer; a plain PCMU/PCMA offer when the offer is unusable."""
    try:
        return make_answer(parse_sdp(offer), ip=ip, rtp_port=port).to_bytes()
    except SdpError:
        return sdp_offer(ip, port, (0, 8, TELEPHONE_EVENT_PT))


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


class Channel:
    """One transport to the target (UDP, TCP, WS, WSS) on the one engine (``sip.aio.SipEndpoint``):
    requests run as client transactions, requests from the target reach ``on_request`` (and queue in
    ``incoming``) and are answered through server transactions. An answer the strict parser rejects
    is still read (``sip.scan``) and handed to the request it names: a probe reports, it does not drop."""

    def __init__(self, target: Target, transport: str, log: MessageLog) -> None:
        self.target, self.transport, self.log = target, transport, log
        self.ep = SipEndpoint(on_request=self._on_request, on_parse_error=self._on_unparsed, log=log)
        self.flow: Flow | None = None
        self.local: Addr = ("127.0.0.1", 0)
        self.remote: Addr = (target.sip_host, target.sip_udp_port)
        self.incoming: asyncio.Queue[Msg] = asyncio.Queue()
        self.received: list[Msg] = []  # everything that came in, read leniently
        self.on_request: Callable[[Msg], None] | None = None
        self.ws_host = new_instance_host()
        self._lenient: dict[tuple[str | None, int, str], Callable[[Msg], None]] = {}
        self._close: Callable[[], None] | None = None

    @classmethod
    async def open(cls, target: Target, transport: str, log: MessageLog, *, local: Addr = ("127.0.0.1", 0),
                   timeout: float = 3.0) -> Channel:
        self = cls(target, transport.upper(), log)
        if self.transport == "UDP":
            ep = await UdpEndpoint.open(local[0], local[1], self._receive)
            self.flow, self._close = ep.flow(self.remote), ep.close
        elif self.transport == "TCP":
            self.remote = (target.sip_host, target.sip_tcp_port)
            self.flow = await tcp_connect(self.remote, self._receive, local=local if local[1] else None,
                                          timeout=timeout)
        elif self.transport in ("WS", "WSS"):
            url = target.sip_ws_url if self.transport == "WS" else target.sip_wss_url
            if not url:
                raise LookupError(f"the target file has no sip.{self.transport.lower()}_url")
            p = urlsplit(url)
            self.remote = (p.hostname or target.sip_host, p.port or (443 if p.scheme == "wss" else 80))
            self.flow = await ws_connect(url, self._receive, ssl_context=target.sip_ssl_context(), timeout=timeout)
        else:
            raise ValueError(f"unknown transport {transport!r}")
        self.local = self.flow.local
        return self

    async def close(self) -> None:
        self.ep.close()
        try:
            (self._close or (self.flow.close if self.flow else lambda: None))()
        except Exception:
            pass
        await asyncio.sleep(0)

    @property
    def is_ws(self) -> bool:
        return self.transport in ("WS", "WSS")

    @property
    def via_host(self) -> str:
        """Our sent-by: the socket's address, or a made-up ``.invalid`` host on a WebSocket (RFC 7118)."""
        return self.ws_host if self.is_ws else f"{self.local[0]}:{self.local[1]}"

    def contact(self, user: str) -> str:
        return f"<sip:{user}@{self.via_host};transport={'ws' if self.is_ws else self.transport.lower()}>"

    @property
    def domain(self) -> str:
        return self.target.sip_host

    def uri_for(self, user: str | None = None) -> str:
        """``sip:[user@]host:port;transport=x`` as the document's device writes it (``sip:host`` on a WebSocket)."""
        at = f"{user}@" if user else ""
        if self.is_ws:
            return f"sip:{at}{self.domain}"
        return f"sip:{at}{self.domain}:{self.remote[1]};transport={self.transport.lower()}"

    @property
    def server_uri(self) -> str:
        return self.uri_for(None)

    def build(self, method: str, uri: str, *, from_user: str, to_user: str | None = None, d: Dialogish,
              cseq: int | None = None, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
              content_type: str = "application/sdp", contact: bool = True) -> bytes:
        """A request as bytes (the core's builders); ``headers`` are added verbatim (Authorization, Expires...)."""
        cseq = d.cseq if cseq is None else cseq
        with_contact = contact and method in ("REGISTER", "INVITE", "OPTIONS")
        if method == "REGISTER":
            return to_bytes(make_register(self.domain, from_user, sent_by=self.via_host, transport=self.transport,
                                          call_id=d.call_id, cseq=cseq, from_tag=d.from_tag, expires=None,
                                          contact=self.contact(from_user) if with_contact else "", uri=uri,
                                          headers=[*UA[1:], *headers], user_agent=UA[0][1]))
        return to_bytes(make_request(
            method, uri, from_=f"<sip:{from_user}@{self.domain}>;tag={d.from_tag}",
            to=f"<sip:{to_user or from_user}@{self.domain}>", call_id=d.call_id, cseq=cseq,
            via=f"{self.via()};branch={new_branch()}", contact=self.contact(from_user) if with_contact else None,
            body=body, headers=[*UA, *headers], content_type=content_type if body else None))

    def via(self) -> str:
        return f"SIP/2.0/{self.transport} {self.via_host};rport"

    def dialog_request(self, d: Dialog, method: str, *, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                       content_type: str = "application/sdp") -> tuple[Dialog, Request]:
        """A request in ``d`` (``Dialog.make_request_in_dialog``) from this channel."""
        return d.make_request_in_dialog(method, via=self.via(), headers=[*(UA if method != "ACK" else UA[:1]),
                                        *headers], body=body, content_type=content_type if body else None)

    def respond(self, req: Msg, code: int, reason: str, *, to_tag: str | None = None, body: bytes = b"",
                contact_user: str | None = None) -> None:
        """Answer a request the target sent us, through its server transaction."""
        assert self.flow is not None
        request = req.parsed()
        assert isinstance(request, Request)
        extra = [("Record-Route", r) for r in req.all("Record-Route")]
        if contact_user and code < 300 and req.method == "INVITE":
            extra.append(("Contact", self.contact(contact_user)))
        self.ep.respond(request, self.flow, make_response(
            request, code, reason, to_tag=to_tag, body=body, headers=[*extra, UA[0]],
            content_type="application/sdp" if body else None))

    def _receive(self, data: bytes, flow: Flow) -> None:
        if data.strip():
            self.received.append(Msg.read(data))
        self.ep.receive(data, flow)

    def _on_request(self, req: Request, flow: Flow) -> None:
        msg = _msg(req)
        if self.on_request is not None:
            try:
                self.on_request(msg)
            except Exception:
                pass
        self.incoming.put_nowait(msg)

    def _on_unparsed(self, data: bytes, flow: Flow, exc: SipParseError) -> None:
        m = Msg.read(data)
        deliver = self._lenient.get((m.call_id, *m.cseq)) if m.is_response else None
        if deliver is not None:
            deliver(m)

    def send(self, data: bytes) -> None:
        """Bytes outside any transaction (an ACK for a 2xx goes through :meth:`ack`)."""
        assert self.flow is not None
        self.ep.send_bytes(data, self.flow)

    def ack(self, ack: Request) -> None:
        """The ACK for a 2xx, through the engine (it answers the 2xx's retransmissions with it)."""
        assert self.flow is not None
        self.ep.send_ack(ack, self.flow)

    async def request(self, data: bytes, *, timeout: float = 2.0, final_timeout: float | None = None) -> list[Msg]:
        """Send ``data`` as a client transaction; the answers, provisional first, until a final one or
        ``timeout`` (the engine retransmits over UDP). ``final_timeout`` extends the wait once a
        provisional answer shows the request is being worked on (a ringing callee)."""
        assert self.flow is not None
        req = parse_message(data)
        assert isinstance(req, Request)
        loop = asyncio.get_running_loop()
        got: list[Msg] = []
        done: asyncio.Future[Msg] = loop.create_future()
        deadline = loop.time() + timeout

        def answer(m: Msg) -> None:
            nonlocal deadline
            if m.status is not None and m.status >= 200:
                if not done.done():
                    done.set_result(m)
                return
            got.append(m)
            if final_timeout is not None:
                deadline = max(deadline, loop.time() + final_timeout)

        key = (req.call_id, req.cseq.number, req.method)
        self._lenient[key] = answer
        tx = self.ep.request(req, self.flow, on_provisional=lambda r: answer(_msg(r)))
        tx.final.add_done_callback(lambda f: None if f.cancelled() or f.exception() else answer(_msg(f.result())))
        try:
            while not done.done() and (left := deadline - loop.time()) > 0:
                await asyncio.wait([done], timeout=left)
            return got + [done.result()] if done.done() else got
        finally:
            self._lenient.pop(key, None)
            if not tx.final.done():
                self.ep.forget(tx)


# --- a phone on a channel: registers, calls, answers (with a password or user of the probe's choosing) ---


@dataclass
class Exchange:
    """A request sent once without and once with credentials: what came back each time."""

    first: list[Msg]
    second: list[Msg] = field(default_factory=list)
    challenge: dict[str, str] = field(default_factory=dict)
    challenge_header: str = ""

    @property
    def status(self) -> int | None:
        return status_of(self.second) if self.second else status_of(self.first)

    @property
    def first_status(self) -> int | None:
        return status_of(self.first)


@dataclass
class CallResult:
    ok: bool
    invite1: list[Msg] = field(default_factory=list)
    invite2: list[Msg] = field(default_factory=list)
    bye: list[Msg] = field(default_factory=list)
    problem: str = ""
    d: Dialog | None = None


class Phone:
    """One extension on one channel: REGISTER with digest, calls out, answers calls in (183 SDP, 200)."""

    def __init__(self, ch: Channel, number: str, password: str, *, answer_delay: float = 0.05,
                 rtp_port: int | None = None, send_183: bool = True) -> None:
        self.ch, self.number, self.password = ch, number, password
        self.answer_delay, self.send_183 = answer_delay, send_183
        self.rtp_port = rtp_port or 10_000 + 2 * secrets.randbelow(4000)
        self.reg = Dialogish()
        self.invites: list[Msg] = []
        self.answered, self.got_bye = asyncio.Event(), asyncio.Event()
        self.byes: list[Msg] = []
        self.in_dialogs: dict[str | None, tuple[Msg, str]] = {}  # call-id -> (INVITE, our to-tag)
        self.dialogs: dict[str, Dialog] = {}  # call-id -> the dialog as it stands (Dialog is frozen)
        self.tasks: set[asyncio.Task[None]] = set()
        self.own_nc: dict[str, int] | None = None  # a dict: a separate device's own count per nonce
        ch.on_request = self._on_request

    def _credentials(self, f: Msg, method: str, uri: str, *, user: str | None = None,
                     password: str | None = None) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
        text = f.get("www-authenticate" if f.status == 401 else "proxy-authenticate") or ""
        chal, nc = challenge_params(text), None
        if self.own_nc is not None:  # an independent device: it counts only its own requests
            nc = self.own_nc[chal.get("nonce", "")] = self.own_nc.get(chal.get("nonce", ""), 0) + 1
        auth = digest_header(chal, method=method, uri=uri, username=user or self.number, nc=nc,
                             password=self.password if password is None else password)
        return text, chal, [("Authorization" if f.status == 401 else "Proxy-Authorization", auth)]

    def register_request(self, expires: int | None, headers: Iterable[tuple[str, str]] = (), *,
                         user: str | None = None) -> bytes:
        extra = [("Expires", str(expires))] if expires is not None else []
        return self.ch.build("REGISTER", self.ch.server_uri, from_user=user or self.number, d=self.reg,
                             cseq=self.reg.next(), headers=[*extra, *headers])

    async def register(self, expires: int | None = 90, *, password: str | None = None, user: str | None = None,
                       timeout: float = 2.0) -> Exchange:
        """REGISTER, and if challenged, once more with credentials (the document's two-step)."""
        ex = Exchange(await self.ch.request(self.register_request(expires, user=user), timeout=timeout))
        f = final(ex.first)
        if f is not None and f.status in (401, 407):
            ex.challenge_header, ex.challenge, auth = self._credentials(f, "REGISTER", self.ch.server_uri,
                                                                        user=user, password=password)
            ex.second = await self.ch.request(self.register_request(expires, auth, user=user), timeout=timeout)
        return ex

    async def call(self, to_user: str, *, hold: float = 0.1, ring_timeout: float = 6.0,
                   payloads: Iterable[int] = PAYLOADS, hangup: bool = True) -> CallResult:
        """INVITE (SDP) → 401/407 (the engine ACKs it) → INVITE+auth → 1xx → 200 (SDP) → ACK → hold → BYE."""
        ch, uri = self.ch, self.ch.uri_for(to_user)
        d = Dialog.outgoing(call_id=new_call_id(), local_uri=NameAddr.parse(f"<sip:{self.number}@{ch.domain}>"),
                            local_tag=new_tag(), remote_uri=NameAddr.parse(f"<sip:{to_user}@{ch.domain}>"),
                            remote_target=uri, local_seq=secrets.randbelow(20000), local_contact=ch.contact(self.number))
        offer = sdp_offer(ch.local[0] if not ch.is_ws else "127.0.0.1", self.rtp_port, payloads)
        d, inv = ch.dialog_request(d, "INVITE", body=offer)
        res = CallResult(False)
        res.invite1 = res.invite2 = await ch.request(to_bytes(inv), timeout=3.0)
        f = final(res.invite1)
        if f is not None and f.status in (401, 407):
            d, inv = ch.dialog_request(d, "INVITE", body=offer, headers=self._credentials(f, "INVITE", uri)[2])
            res.invite2 = await ch.request(to_bytes(inv), timeout=3.0, final_timeout=ring_timeout)
            f = final(res.invite2)
        if f is None or f.status != 200:
            res.problem = f"the call was answered {f.first_line}" if f else \
                f"no final answer to the {'authenticated ' if res.invite2 is not res.invite1 else 'first '}INVITE"
            return res
        d, ack = ch.dialog_request(d.on_response(f.parsed()), "ACK")  # type: ignore[arg-type]
        ch.ack(ack)
        res.d = self.dialogs[d.call_id] = d
        res.ok = True
        if hangup:
            await asyncio.sleep(hold)
            res.bye = await self.bye(to_user, d)
        return res

    async def bye(self, to_user: str, d: Dialog) -> list[Msg]:
        return await self.in_dialog("BYE", to_user, d)

    async def in_dialog(self, method: str, to_user: str, d: Dialog, *, body: bytes = b"",
                        content_type: str = "application/sdp") -> list[Msg]:
        """A request inside the call ``d`` (BYE, INFO); sent once more with credentials if challenged."""
        d = self.dialogs.get(d.call_id, d)
        headers: list[tuple[str, str]] = []
        got: list[Msg] = []
        for _ in range(2):
            d, req = self.ch.dialog_request(d, method, headers=headers, body=body, content_type=content_type)
            self.dialogs[d.call_id] = d
            got += await self.ch.request(to_bytes(req), timeout=2.0)
            f = final(got)
            if f is None or f.status not in (401, 407) or headers:
                break
            headers = self._credentials(f, method, req.uri)[2]
        return got

    def _on_request(self, req: Msg) -> None:
        ch = self.ch
        if req.method == "INVITE" and req.call_id in self.in_dialogs:  # a re-INVITE: answer again
            body = sdp_answer(req.body, "127.0.0.1", self.rtp_port) if req.has_sdp else b""
            ch.respond(req, 200, "OK", to_tag=self.in_dialogs[req.call_id][1], body=body, contact_user=self.number)
        elif req.method == "INVITE":
            tag = new_tag()
            self.in_dialogs[req.call_id] = (req, tag)
            self.invites.append(req)
            ch.respond(req, 100, "Trying")
            t = asyncio.get_running_loop().create_task(self._answer(req, tag))
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)
        elif req.method == "BYE":
            self.byes.append(req)
            self.got_bye.set()
            ch.respond(req, 200, "OK")
        elif req.method in ("OPTIONS", "NOTIFY", "INFO", "UPDATE", "CANCEL"):
            ch.respond(req, 200, "OK")
            if req.method == "CANCEL" and req.call_id in self.in_dialogs:
                inv, tag = self.in_dialogs[req.call_id]
                ch.respond(inv, 487, "Request Terminated", to_tag=tag)

    async def _answer(self, req: Msg, tag: str) -> None:
        body = sdp_answer(req.body, "127.0.0.1", self.rtp_port) if req.has_sdp else \
            sdp_offer("127.0.0.1", self.rtp_port, (0, 8, TELEPHONE_EVENT_PT))
        if self.send_183:
            self.ch.respond(req, 183, "Session Progress", to_tag=tag, body=body, contact_user=self.number)
        await asyncio.sleep(self.answer_delay)
        self.ch.respond(req, 200, "OK", to_tag=tag, body=body, contact_user=self.number)
        self.answered.set()

    async def hangup_incoming(self, call_id: str | None = None) -> list[Msg]:
        """BYE for a call we answered (the newest one when ``call_id`` is None)."""
        if not self.in_dialogs:
            return []
        inv, tag = self.in_dialogs[call_id or self.invites[-1].call_id]
        d = Dialog.incoming(inv.parsed(), tag).confirm()  # type: ignore[arg-type]
        d, bye = self.ch.dialog_request(self.dialogs.get(d.call_id, d), "BYE")
        self.dialogs[d.call_id] = d
        return await self.ch.request(to_bytes(bye), timeout=2.0)


# --- the per-check session (the ``sip`` fixture): channels, and failing a clause with the exchange ----


RAW_LIMIT = 60_000  # characters of raw messages kept in one attachment / failure text


class SipSession:
    def __init__(self, target: Target, redactor: Redactor, name: str) -> None:
        self.target, self.redactor, self.name = target, redactor, name
        self.log = MessageLog(limit=5000)
        self.channels: list[Channel] = []
        self.crafted = False  # set by probes that sent scapy-crafted packets: a pcap is attached
        self.notes: list[str] = []

    def extensions(self, n: int, *, ramal_web: bool | None = None, exclude: tuple[str, ...] = ()) -> list[Extension]:
        """``n`` extensions (the disposable classe5 client's last: C5-1 blocks it), or skip."""
        pool = [e for e in self.target.extensions if e.number not in exclude
                and (ramal_web is None or e.ramal_web == ramal_web)]
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
        ch = await Channel.open(self.target, transport, self.log, local=local)
        self.channels.append(ch)
        return ch

    async def phone(self, ext: Extension, transport: str = "UDP", *, local: Addr = ("127.0.0.1", 0),
                    **kw: Any) -> Phone:
        return Phone(await self.channel(transport, local=local), ext.number, ext.password, **kw)

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 20.0) -> Any:
        async def main() -> Any:
            try:
                return await asyncio.wait_for(coro, timeout)
            except TimeoutError:
                self.fail_any(f"the probe did not finish within {timeout:.0f} s (bounded)")
            finally:
                for ch in self.channels:
                    await ch.close()
                self.channels.clear()
        return asyncio.run(main())

    def ladder(self) -> str:
        return self.redactor.text(render_ladder(self.log.entries, title=f"SIP exchange of {self.name}"))

    def raw(self) -> str:
        text = "\n".join(f"--- {e.transport} {e.src[0]}:{e.src[1]} -> {e.dst[0]}:{e.dst[1]}\n"
                         + e.data.decode("utf-8", "replace").replace("\r\n", "\n") for e in self.log.entries)
        if len(text) > RAW_LIMIT:
            text = text[:RAW_LIMIT] + f"\n… ({len(text)} characters in all; the rest in the Allure attachment)"
        return self.redactor.text(text)

    def fail(self, clause_id: ClauseId, what: str) -> NoReturn:
        """Fail ``clause_id`` through the shared formatter: what went wrong, the ladder, the notes,
        the raw messages (the reproduction of a SIP exchange)."""
        tail = self.raw()
        sections = [self.ladder(), "\n".join(self.notes),
                    "raw messages (last of the exchange):\n" + tail[-6000:] if tail else ""]
        raise ClauseFailure(clause_id, format_failure(clause_id, what, sections, redactor=self.redactor),
                            headline=failure_headline(clause_id, what, redactor=self.redactor))

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
                    write_pcap([dataclasses.replace(e, data=self.redactor.bytes(e.data)) for e in self.log.entries],
                               path)
                    allure.attach(path.read_bytes(), name="SIP pcap", extension="pcap",
                                  attachment_type=getattr(allure.attachment_type, "PCAP", None))
            except Exception as exc:  # a pcap is a bonus; never fail a check for it
                self.notes.append(f"(no pcap: {exc})")
