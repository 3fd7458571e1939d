"""The probes' SIP toolkit: a logged channel to the target, hand-built requests, a lenient reader.

A probe is an attacker and an auditor at once: it must send exactly the bytes it means (a replayed
Authorization, a wrong ``nc``, a torture message) and read whatever comes back, even a response a
strict parser would reject. So requests are built here as text, field by field, and answers are read
leniently (``Msg``); the digest arithmetic is the core's (``pbxcheck.sip.digest``) and every message
goes through one :class:`~pbxcheck.sip.ladder.MessageLog` per check, which the conftest turns into
the ladder, raw-message and pcap attachments.

Everything here is bounded: every wait has a timeout, and nothing retransmits more than once.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import ssl
import tempfile
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest

from ..contract import SIP_INV2_CODECS, ClauseId
from ..contract import TELEPHONE_EVENT_PT as TELEPHONE_EVENT_PT
from ..redact import Redactor
from ..sip.drivers.base import Addr, Flow
from ..sip.ladder import IN, OUT, MessageLog, render_ladder
from ..target import Extension, Target
from .checker import ClauseFailure
from .failure import failure_headline, format_failure

# RFC 3261 7.3.3 compact forms (and the later RFCs' ones a central might use).
_COMPACT = {"v": "via", "i": "call-id", "f": "from", "t": "to", "m": "contact", "l": "content-length",
            "c": "content-type", "k": "supported", "e": "content-encoding", "s": "subject", "o": "event",
            "u": "allow-events", "r": "refer-to", "b": "referred-by", "x": "session-expires"}

# The codecs the document's device offers and the central lists ("Codecs disponíveis"), payload → name.
OFFERED_CODECS = SIP_INV2_CODECS  # SIP-INV-2: G729, PCMU, PCMA, GSM (payload type -> name)


def token(n: int = 12) -> str:
    return secrets.token_hex(n)


def wrong_password(real: str) -> str:
    """A wrong password of ``real``'s shape (length, alphabet), random and never derived from it: a
    guess that looks like a password, and a report that shows it leaks nothing of the real one."""
    from pbxcheck.wrong import wrong_like

    return wrong_like(real)


def branch() -> str:
    return "z9hG4bK" + token(10)


# --- reading -------------------------------------------------------------------------------------


@dataclass
class Msg:
    """A received SIP message, read leniently: header lookup by long or compact name, case-insensitive."""

    raw: bytes
    first_line: str
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def read(cls, raw: bytes) -> Msg:
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            head, _, body = raw.partition(b"\n\n")
        lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
        first = lines[0].strip() if lines else ""
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:  # folded continuation (RFC 3261 7.3.1)
                name, value = headers[-1]
                headers[-1] = (name, value + " " + line.strip())
                continue
            name, colon, value = line.partition(":")
            if not colon:
                continue
            key = name.strip().lower()
            headers.append((_COMPACT.get(key, key), value.strip()))
        return cls(raw, first, headers, body)

    @property
    def is_response(self) -> bool:
        return self.first_line.startswith("SIP/")

    @property
    def status(self) -> int | None:
        if not self.is_response:
            return None
        parts = self.first_line.split(" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None

    @property
    def reason(self) -> str:
        parts = self.first_line.split(" ", 2)
        return parts[2] if self.is_response and len(parts) > 2 else ""

    @property
    def method(self) -> str | None:
        return None if self.is_response else self.first_line.split(" ", 1)[0]

    @property
    def uri(self) -> str:
        parts = self.first_line.split(" ")
        return parts[1] if not self.is_response and len(parts) > 1 else ""

    def get(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        key = _COMPACT.get(name.lower(), name.lower())
        return [v for k, v in self.headers if k == key]

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        value = (self.get("cseq") or "0 ?").split()
        return (int(value[0]) if value and value[0].isdigit() else 0, value[1].upper() if len(value) > 1 else "?")

    @property
    def to_tag(self) -> str | None:
        return _param(self.get("to") or "", "tag")

    @property
    def has_sdp(self) -> bool:
        return "application/sdp" in (self.get("content-type") or "").lower() and bool(self.body.strip())

    def label(self) -> str:
        return self.first_line


def _param(value: str, name: str) -> str | None:
    m = re.search(r";\s*" + re.escape(name) + r"\s*=\s*([^;,>\s]+)", value, re.IGNORECASE)
    return m.group(1) if m else None


def challenge_params(value: str) -> dict[str, str]:
    """``Digest realm="x", nonce="y", qop="auth"`` → {'scheme': 'Digest', 'realm': 'x', ...} (keys lower case)."""
    scheme, _, rest = value.strip().partition(" ")
    out = {"scheme": scheme}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)', rest):
        v = m.group(2)
        out[m.group(1).lower()] = v[1:-1] if v.startswith('"') else v
    return out


# --- SDP (the document's offer, and what to check in an answer) ----------------------------------


def sdp_offer(ip: str, port: int, payloads: Iterable[int] = (18, 0, 8, 3, TELEPHONE_EVENT_PT)) -> bytes:
    """The document's device offer (G729, PCMU, PCMA, and GSM, the central's fourth codec; telephone-event)."""
    from pbxcheck.sip.sdp import make_offer

    pts = list(payloads)
    codecs = tuple(p for p in pts if p != TELEPHONE_EVENT_PT)
    te = TELEPHONE_EVENT_PT if TELEPHONE_EVENT_PT in pts else None
    return make_offer(ip, port, codecs, te, session_id=secrets.randbelow(10**9)).to_bytes()


@dataclass
class SdpSummary:
    port: int | None
    payloads: list[int]
    rtpmap: dict[int, str]

    @classmethod
    def read(cls, body: bytes) -> SdpSummary:
        text = body.decode("utf-8", "replace")
        m = re.search(r"^m=audio\s+(\d+)\s+\S+((?:\s+\d+)*)\s*$", text, re.MULTILINE)
        port = int(m.group(1)) if m else None
        payloads = [int(x) for x in m.group(2).split()] if m else []
        rtpmap = {int(a): b.split("/")[0] for a, b in re.findall(r"^a=rtpmap:(\d+)\s+(\S+)", text, re.MULTILINE)}
        return cls(port, payloads, rtpmap)


def sdp_answer(offer: bytes, ip: str, port: int) -> bytes:
    """Our callee's RFC 3264 answer (the core's); a plain PCMU/PCMA offer when the offer is unusable."""
    from pbxcheck.sip.errors import SdpError
    from pbxcheck.sip.sdp import make_answer, parse_sdp

    try:
        return make_answer(parse_sdp(offer), ip=ip, rtp_port=port).to_bytes()
    except SdpError:
        return sdp_offer(ip, port, (0, 8, TELEPHONE_EVENT_PT))


# --- digest (RFC 2617 / 7616 MD5, qop=auth), with every knob a probe needs -----------------------


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


# RFC 2617 3.2.2: nc counts the requests *this client* sent with a nonce. The harness is one client
# (many extensions, one process), and a server may hand the same nonce to every request from one
# source IP within a second (PJSIP-style ``<epoch>/<hash>`` nonces), so the count is kept per nonce
# for the whole process: a second phone reusing a nonce continues the count instead of replaying 1.
_NONCE_COUNTS: dict[str, int] = {}


def next_nc(nonce: str) -> int:
    n = _NONCE_COUNTS.get(nonce, 0) + 1
    if len(_NONCE_COUNTS) > 10_000:
        _NONCE_COUNTS.clear()
    _NONCE_COUNTS[nonce] = n
    return n


def digest_header(chal: dict[str, str], *, method: str, uri: str, username: str, password: str,
                  nc: int | None = None, cnonce: str | None = None, nonce: str | None = None,
                  header_nc: int | None = None) -> str:
    """An Authorization value answering ``chal``. ``nc`` defaults to the next count for the nonce; an
    explicit ``nc`` is sent as is (replays, wrong counts). ``nonce`` overrides the challenge's
    (stale or foreign nonces), ``header_nc`` writes a different nc than the one hashed."""
    core_digest: Any
    try:
        from ..sip import digest as core_digest  # the core's arithmetic, when it is installed
    except ImportError:  # pragma: no cover - only while the core is being written
        core_digest = None
    realm = chal.get("realm", "")
    nonce = nonce or chal.get("nonce", "")
    cnonce = cnonce or token(8)
    qop = "auth" if "auth" in [q.strip() for q in chal.get("qop", "").split(",")] else None
    if nc is None:
        nc = next_nc(nonce) if qop else 1
    else:
        _NONCE_COUNTS[nonce] = max(_NONCE_COUNTS.get(nonce, 0), nc)
    nc_hex = f"{nc:08x}"
    response = None
    if core_digest is not None and hasattr(core_digest, "compute_response"):
        try:
            response = core_digest.compute_response(
                username=username, realm=realm, password=password, method=method, uri=uri, nonce=nonce,
                nc=nc_hex if qop else None, cnonce=cnonce if qop else None, qop=qop,
                algorithm=chal.get("algorithm", "MD5"))
        except TypeError:
            response = None
    if response is None:
        ha1 = _md5(f"{username}:{realm}:{password}")
        ha2 = _md5(f"{method}:{uri}")
        response = _md5(f"{ha1}:{nonce}:{nc_hex}:{cnonce}:auth:{ha2}") if qop else _md5(f"{ha1}:{nonce}:{ha2}")
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
             f'response="{response}"', f"algorithm={chal.get('algorithm', 'MD5')}"]
    if "opaque" in chal:
        parts.append(f'opaque="{chal["opaque"]}"')
    if qop:
        parts += [f'cnonce="{cnonce}"', "qop=auth", f"nc={(header_nc if header_nc is not None else nc):08x}"]
    return "Digest " + ", ".join(parts)


# --- building requests ---------------------------------------------------------------------------


@dataclass
class Dialogish:
    """What a request sequence shares: Call-ID, From tag, CSeq counter."""

    call_id: str = field(default_factory=lambda: token(12))
    from_tag: str = field(default_factory=lambda: token(6))
    cseq: int = field(default_factory=lambda: 1 + secrets.randbelow(20000))
    to_tag: str | None = None
    route: list[str] = field(default_factory=list)
    remote_target: str | None = None

    def next(self) -> int:
        self.cseq += 1
        return self.cseq


# --- the channel ---------------------------------------------------------------------------------


class Channel:
    """One transport to the target (UDP, TCP, WS, WSS); every message in and out goes to ``log``.

    Responses are matched to the request they answer by Call-ID and CSeq; requests the target sends
    us (an INVITE to our callee, an OPTIONS keepalive) queue in ``incoming``. ``auto`` answers
    requests automatically (see :class:`Phone`).
    """

    def __init__(self, target: Target, transport: str, log: MessageLog) -> None:
        self.target = target
        self.transport = transport
        self.log = log
        self.flow: Flow | None = None
        self.local: Addr = ("127.0.0.1", 0)
        self.remote: Addr = (target.sip_host, target.sip_udp_port)
        self._waiters: dict[tuple[str, int, str], asyncio.Queue[Msg]] = {}
        self.incoming: asyncio.Queue[Msg] = asyncio.Queue()
        self.received: list[Msg] = []
        self.on_request: Any = None  # callable(Msg) for automatic answering
        self._closers: list[Any] = []
        self.ws_host = f"{token(5)}.invalid"

    # opening ----------------------------------------------------------------------------------

    @classmethod
    async def open(cls, target: Target, transport: str, log: MessageLog, *, local: Addr = ("127.0.0.1", 0),
                   timeout: float = 3.0) -> Channel:
        self = cls(target, transport.upper(), log)
        if self.transport == "UDP":
            from pbxcheck.sip.drivers.udp import UdpEndpoint

            self.remote = (target.sip_host, target.sip_udp_port)
            ep = await UdpEndpoint.open(local[0], local[1], self._handle)
            self.flow = ep.flow(self.remote)
            self.local = ep.local
            self._closers.append(ep.close)
        elif self.transport == "TCP":
            from pbxcheck.sip.drivers.tcp import tcp_connect

            self.remote = (target.sip_host, target.sip_tcp_port)
            self.flow = await tcp_connect(self.remote, self._handle, local=local if local[1] else None,
                                          timeout=timeout)
            self.local = self.flow.local
            self._closers.append(self.flow.close)
        elif self.transport in ("WS", "WSS"):
            from pbxcheck.sip.drivers.ws import ws_connect

            url = target.sip_ws_url if self.transport == "WS" else target.sip_wss_url
            if not url:
                raise LookupError(f"the target file has no sip.{self.transport.lower()}_url")
            parts = urlsplit(url)
            self.remote = (parts.hostname or target.sip_host, parts.port or (443 if parts.scheme == "wss" else 80))
            self.flow = await ws_connect(url, self._handle, ssl_context=ssl_context(target), timeout=timeout)
            self.local = self.flow.local
            self._closers.append(self.flow.close)
        else:
            raise ValueError(f"unknown transport {transport!r}")
        return self

    async def close(self) -> None:
        for c in self._closers:
            try:
                c()
            except Exception:
                pass
        await asyncio.sleep(0)

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # addresses as they appear in our headers -----------------------------------------------------

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

    # building -----------------------------------------------------------------------------------

    def build(self, method: str, uri: str, *, from_user: str, to_user: str | None = None, d: Dialogish,
              cseq: int | None = None, cseq_method: str | None = None, via_branch: str | None = None,
              headers: Iterable[tuple[str, str]] = (), body: bytes = b"", content_type: str = "application/sdp",
              contact: bool = True) -> bytes:
        """A request as bytes; ``headers`` adds (name, value) pairs verbatim (Authorization, Expires...)."""
        to_user = to_user or from_user
        via_t = self.transport if self.transport != "WSS" else "WSS"
        to_hdr = f"<sip:{to_user}@{self.domain}>" + (f";tag={d.to_tag}" if d.to_tag else "")
        lines = [f"{method} {uri} SIP/2.0",
                 f"Via: SIP/2.0/{via_t} {self.via_host};rport;branch={via_branch or branch()}",
                 "Max-Forwards: 70",
                 f"From: <sip:{from_user}@{self.domain}>;tag={d.from_tag}",
                 f"To: {to_hdr}",
                 f"Call-ID: {d.call_id}",
                 f"CSeq: {cseq if cseq is not None else d.cseq} {cseq_method or method}"]
        lines += [f"Route: {r}" for r in d.route]
        if contact and method in ("REGISTER", "INVITE", "OPTIONS"):
            lines.append(f"Contact: {self.contact(from_user)}")
        lines += ["User-Agent: pbxcheck-probe", "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS"]
        lines += [f"{k}: {v}" for k, v in headers]
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def response_to(self, req: Msg, code: int, reason: str, *, to_tag: str | None = None, body: bytes = b"",
                    contact_user: str | None = None) -> bytes:
        """A response to a request the target sent us (our callee answering)."""
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {v}" for v in req.all("via")]
        to = req.get("to") or ""
        if to_tag and "tag=" not in to:
            to += f";tag={to_tag}"
        lines += [f"From: {req.get('from') or ''}", f"To: {to}", f"Call-ID: {req.call_id}",
                  f"CSeq: {req.get('cseq') or ''}"]
        lines += [f"Record-Route: {r}" for r in req.all("record-route")]
        if contact_user and code < 300 and req.method == "INVITE":
            lines.append(f"Contact: {self.contact(contact_user)}")
        lines.append("User-Agent: pbxcheck-probe")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    # moving bytes -------------------------------------------------------------------------------

    def _handle(self, data: bytes, flow: Flow) -> None:
        if not data.strip():
            return  # keepalive CRLFs
        self.log.record(IN, self.transport, self.local, self.remote if flow is None else flow.remote, data)
        msg = Msg.read(data)
        self.received.append(msg)
        if msg.is_response:
            n, m = msg.cseq
            q = self._waiters.get((msg.call_id, n, m))
            if q is not None:
                q.put_nowait(msg)
            return
        if self.on_request is not None:
            try:
                self.on_request(msg)
            except Exception:
                pass
        self.incoming.put_nowait(msg)

    def send(self, data: bytes) -> None:
        assert self.flow is not None
        self.log.record(OUT, self.transport, self.local, self.remote, data)
        self.flow.send(data)

    async def request(self, data: bytes, *, timeout: float = 2.0, final_timeout: float | None = None) -> list[Msg]:
        """Send a request; the responses to it, provisional first, until a final one or ``timeout``.

        Over UDP the request is retransmitted once after 0.5 s if nothing came back (loopback does not
        lose datagrams, but a busy central may). ``final_timeout`` extends the wait once a provisional
        response shows the request is being worked on (a ringing callee)."""
        msg = Msg.read(data)
        key = (msg.call_id, *msg.cseq)
        q: asyncio.Queue[Msg] = asyncio.Queue()
        self._waiters[key] = q
        got: list[Msg] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        retx_at: float | None = loop.time() + 0.5 if self.transport == "UDP" else None
        try:
            self.send(data)
            while True:
                now = loop.time()
                if now >= deadline:
                    return got
                wait = deadline - now
                if retx_at is not None and not got:
                    wait = min(wait, max(retx_at - now, 0.001))
                try:
                    r = await asyncio.wait_for(q.get(), wait)
                except TimeoutError:
                    if retx_at is not None and not got and loop.time() >= retx_at:
                        retx_at = None
                        self.send(data)
                    continue
                got.append(r)
                if r.status is not None and r.status >= 200:
                    return got
                if final_timeout is not None:
                    deadline = max(deadline, loop.time() + final_timeout)
        finally:
            self._waiters.pop(key, None)

    async def wait_request(self, method: str, timeout: float) -> Msg | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                m = await asyncio.wait_for(self.incoming.get(), left)
            except TimeoutError:
                return None
            if m.method == method:
                return m


def ssl_context(target: Target) -> ssl.SSLContext:
    """WSS uses the target's [sip] TLS settings, which may differ from the API's."""
    return target.sip_ssl_context()


def final(responses: list[Msg]) -> Msg | None:
    return next((r for r in reversed(responses) if r.status is not None and r.status >= 200), None)


def status_of(responses: list[Msg]) -> int | None:
    f = final(responses)
    return f.status if f else None


def first_lines(responses: list[Msg]) -> list[str]:
    return [r.first_line for r in responses]


# --- a phone: registers, calls, answers ----------------------------------------------------------


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
    answer: SdpSummary | None = None
    problem: str = ""
    d: Dialogish | None = None


class Phone:
    """One extension on one channel: REGISTER with digest, calls out, answers calls in (auto)."""

    def __init__(self, ch: Channel, number: str, password: str, *, answer_delay: float = 0.05,
                 rtp_port: int = 10_000 + 2 * secrets.randbelow(4000), send_183: bool = True) -> None:
        self.ch = ch
        self.number = number
        self.password = password
        self.answer_delay = answer_delay
        self.rtp_port = rtp_port
        self.send_183 = send_183
        self.reg = Dialogish()
        self.invites: list[Msg] = []
        self.answered = asyncio.Event()
        self.byes: list[Msg] = []
        self.got_bye = asyncio.Event()
        self.in_dialogs: dict[str, tuple[Msg, str]] = {}  # call-id -> (INVITE, our to-tag)
        self.auto_answer = True
        self.tasks: set[asyncio.Task[None]] = set()
        # None: nc from the process-wide count per nonce; a dict: this phone's own count (a separate device)
        self.own_nc: dict[str, int] | None = None
        ch.on_request = self._on_request

    # REGISTER -----------------------------------------------------------------------------------

    def register_request(self, expires: int | None, headers: Iterable[tuple[str, str]] = (), *,
                         user: str | None = None) -> bytes:
        user = user or self.number
        extra = list(headers)
        if expires is not None:
            extra.insert(0, ("Expires", str(expires)))
        return self.ch.build("REGISTER", self.ch.server_uri, from_user=user, d=self.reg, cseq=self.reg.next(),
                             headers=extra)

    async def register(self, expires: int | None = 90, *, password: str | None = None, user: str | None = None,
                       timeout: float = 2.0) -> Exchange:
        """REGISTER, and if challenged, once more with credentials (the document's two-step)."""
        user = user or self.number
        first = await self.ch.request(self.register_request(expires, user=user), timeout=timeout)
        ex = Exchange(first)
        f = final(first)
        if f is None or f.status not in (401, 407):
            return ex
        hname = "www-authenticate" if f.status == 401 else "proxy-authenticate"
        ex.challenge_header = f.get(hname) or ""
        ex.challenge = challenge_params(ex.challenge_header)
        nc = None
        if self.own_nc is not None:  # an independent device: it counts only its own requests
            nonce = ex.challenge.get("nonce", "")
            nc = self.own_nc[nonce] = self.own_nc.get(nonce, 0) + 1
        auth = digest_header(ex.challenge, method="REGISTER", uri=self.ch.server_uri, username=user,
                             password=self.password if password is None else password, nc=nc)
        aname = "Authorization" if f.status == 401 else "Proxy-Authorization"
        ex.second = await self.ch.request(self.register_request(expires, [(aname, auth)], user=user),
                                          timeout=timeout)
        return ex

    # calling out --------------------------------------------------------------------------------

    def _ack_for_error(self, invite: bytes, resp: Msg, d: Dialogish, uri: str, cseq: int) -> bytes:
        via_branch = _param(Msg.read(invite).get("via") or "", "branch")
        tag = resp.to_tag
        d2 = Dialogish(d.call_id, d.from_tag, cseq, tag)
        return self.ch.build("ACK", uri, from_user=self.number, to_user=Msg.read(invite).uri.split("@")[0][4:],
                             d=d2, cseq=cseq, via_branch=via_branch, contact=False)

    async def call(self, to_user: str, *, hold: float = 0.1, ring_timeout: float = 6.0,
                   payloads: Iterable[int] = (18, 0, 8, 3, TELEPHONE_EVENT_PT), hangup: bool = True) -> CallResult:
        """INVITE (SDP) → 401/407 → ACK → INVITE+auth → 1xx → 200 (SDP) → ACK → hold → BYE → 200."""
        ch = self.ch
        d = Dialogish()
        uri = ch.uri_for(to_user)
        offer = sdp_offer(ch.local[0] if ch.transport in ("UDP", "TCP") else "127.0.0.1", self.rtp_port, payloads)
        res = CallResult(False, d=d)
        cseq = d.cseq
        inv = ch.build("INVITE", uri, from_user=self.number, to_user=to_user, d=d, cseq=cseq, body=offer)
        res.invite1 = await ch.request(inv, timeout=3.0)
        f = final(res.invite1)
        if f is None:
            res.problem = "no final answer to the first INVITE"
            return res
        if f.status in (401, 407):
            ch.send(self._ack_for_error(inv, f, d, uri, cseq))
            chal = challenge_params(f.get("www-authenticate" if f.status == 401 else "proxy-authenticate") or "")
            auth = digest_header(chal, method="INVITE", uri=uri, username=self.number, password=self.password)
            aname = "Authorization" if f.status == 401 else "Proxy-Authorization"
            cseq = d.next()
            inv = ch.build("INVITE", uri, from_user=self.number, to_user=to_user, d=d, cseq=cseq, body=offer,
                           headers=[(aname, auth)])
            res.invite2 = await ch.request(inv, timeout=3.0, final_timeout=ring_timeout)
            f = final(res.invite2)
            if f is None:
                res.problem = "no final answer to the authenticated INVITE"
                return res
        else:
            res.invite2 = res.invite1
        if f.status != 200:
            if (f.status or 0) >= 300:  # a response always has one
                ch.send(self._ack_for_error(inv, f, d, uri, cseq))
            res.problem = f"the call was answered {f.first_line}"
            return res
        d.to_tag = f.to_tag
        d.route = list(reversed(f.all("record-route")))
        contact = f.get("contact") or ""
        m = re.search(r"<([^>]+)>", contact)
        d.remote_target = m.group(1) if m else (contact.split(";")[0].strip() or uri)
        res.answer = SdpSummary.read(f.body) if f.has_sdp else None
        ch.send(ch.build("ACK", d.remote_target, from_user=self.number, to_user=to_user, d=d, cseq=cseq,
                         contact=False))
        res.ok = True
        if hangup:
            await asyncio.sleep(hold)
            res.bye = await self.bye(to_user, d)
        return res

    async def bye(self, to_user: str, d: Dialogish) -> list[Msg]:
        return await self.in_dialog("BYE", to_user, d)

    async def in_dialog(self, method: str, to_user: str, d: Dialogish, *, body: bytes = b"",
                        content_type: str = "application/sdp") -> list[Msg]:
        """A request inside the call ``d`` (BYE, INFO); answered once more with credentials if challenged."""
        uri = d.remote_target or self.ch.uri_for(to_user)
        headers: list[tuple[str, str]] = []
        got: list[Msg] = []
        for _ in range(2):
            req = self.ch.build(method, uri, from_user=self.number, to_user=to_user, d=d, cseq=d.next(),
                                contact=False, body=body, content_type=content_type, headers=headers)
            got += await self.ch.request(req, timeout=2.0)
            f = final(got)
            if f is None or f.status not in (401, 407) or headers:
                break
            chal = challenge_params(f.get("www-authenticate" if f.status == 401 else "proxy-authenticate") or "")
            auth = digest_header(chal, method=method, uri=uri, username=self.number, password=self.password)
            headers = [("Authorization" if f.status == 401 else "Proxy-Authorization", auth)]
        return got

    # answering ----------------------------------------------------------------------------------

    def _on_request(self, req: Msg) -> None:
        ch = self.ch
        if req.method == "INVITE":
            if req.call_id in self.in_dialogs:  # a retransmission or a re-INVITE: answer again
                first, tag = self.in_dialogs[req.call_id]
                body = sdp_answer(req.body, "127.0.0.1", self.rtp_port) if req.has_sdp else b""
                ch.send(ch.response_to(req, 200, "OK", to_tag=tag, body=body, contact_user=self.number))
                return
            tag = token(6)
            self.in_dialogs[req.call_id] = (req, tag)
            self.invites.append(req)
            ch.send(ch.response_to(req, 100, "Trying"))
            if self.auto_answer:
                t = asyncio.get_running_loop().create_task(self._answer(req, tag))
                self.tasks.add(t)
                t.add_done_callback(self.tasks.discard)
            else:
                ch.send(ch.response_to(req, 180, "Ringing", to_tag=tag))
        elif req.method == "BYE":
            self.byes.append(req)
            self.got_bye.set()
            ch.send(ch.response_to(req, 200, "OK"))
        elif req.method in ("OPTIONS", "NOTIFY", "INFO", "UPDATE"):
            ch.send(ch.response_to(req, 200, "OK"))
        elif req.method == "CANCEL":
            ch.send(ch.response_to(req, 200, "OK"))
            if req.call_id in self.in_dialogs:
                inv, tag = self.in_dialogs[req.call_id]
                ch.send(ch.response_to(inv, 487, "Request Terminated", to_tag=tag))

    async def _answer(self, req: Msg, tag: str) -> None:
        body = sdp_answer(req.body, "127.0.0.1", self.rtp_port) if req.has_sdp else \
            sdp_offer("127.0.0.1", self.rtp_port, (0, 8, TELEPHONE_EVENT_PT))
        if self.send_183:
            self.ch.send(self.ch.response_to(req, 183, "Session Progress", to_tag=tag, body=body,
                                             contact_user=self.number))
        await asyncio.sleep(self.answer_delay)
        self.ch.send(self.ch.response_to(req, 200, "OK", to_tag=tag, body=body, contact_user=self.number))
        self.answered.set()

    async def hangup_incoming(self, call_id: str | None = None) -> list[Msg]:
        """BYE for a call we answered (the newest one when ``call_id`` is None)."""
        if not self.in_dialogs:
            return []
        cid = call_id or self.invites[-1].call_id
        inv, tag = self.in_dialogs[cid]
        # we are the callee: our From is the INVITE's To, with our tag
        d = Dialogish(call_id=cid, from_tag=tag, cseq=1 + secrets.randbelow(1000))
        frm = _uri_user(inv.get("from") or "")
        d.to_tag = _param(inv.get("from") or "", "tag")
        d.route = list(inv.all("record-route"))
        contact = inv.get("contact") or ""
        m = re.search(r"<([^>]+)>", contact)
        d.remote_target = m.group(1) if m else None
        req = self.ch.build("BYE", d.remote_target or self.ch.uri_for(frm), from_user=self.number, to_user=frm,
                            d=d, cseq=d.cseq, contact=False)
        return await self.ch.request(req, timeout=2.0)


def _uri_user(value: str) -> str:
    m = re.search(r"sips?:([^@;>]+)@", value)
    return m.group(1) if m else ""


# --- the per-check session (the ``sip`` fixture) ---------------------------------------------------


RAW_LIMIT = 60_000  # characters of raw messages kept in one attachment / failure text


class SipSession:
    def __init__(self, target: Target, redactor: Redactor, name: str) -> None:
        self.target = target
        self.redactor = redactor
        self.name = name
        self.log = MessageLog(limit=5000)
        self.channels: list[Channel] = []
        self.crafted = False  # set by probes that sent scapy-crafted packets: a pcap is attached
        self.notes: list[str] = []

    # --- extensions of the target file ------------------------------------------------------

    def extensions(self, n: int, *, ramal_web: bool | None = None, exclude: tuple[str, ...] = ()) -> list[Extension]:
        """``n`` extensions (skipping the disposable classe5 client's, which C5-1 blocks), or skip."""
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
        while True:
            cand = "8" + "".join(str(secrets.randbelow(10)) for _ in range(6))
            if cand not in known:
                return cand

    # --- channels ----------------------------------------------------------------------------

    async def channel(self, transport: str = "UDP", *, local: tuple[str, int] = ("127.0.0.1", 0)) -> Channel:
        ch = await Channel.open(self.target, transport, self.log, local=local)
        self.channels.append(ch)
        return ch

    async def phone(self, ext: Extension, transport: str = "UDP", *, local: tuple[str, int] = ("127.0.0.1", 0),
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

    # --- failing with the exchange ----------------------------------------------------------

    def ladder(self) -> str:
        return self.redactor.text(render_ladder(self.log.entries, title=f"SIP exchange of {self.name}"))

    def raw(self) -> str:
        parts = []
        for e in self.log.entries:
            arrow = "->" if e.direction == "out" else "<-"
            head = f"--- {e.transport} {e.src[0]}:{e.src[1]} {arrow.replace('<-', '->')} {e.dst[0]}:{e.dst[1]}"
            parts.append(head + "\n" + e.data.decode("utf-8", "replace").replace("\r\n", "\n"))
        text = "\n".join(parts)
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

    # --- attachments -------------------------------------------------------------------------

    def attach(self, failed: bool) -> None:
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
                    entries = [_Redacted(e, self.redactor) for e in self.log.entries]
                    write_pcap(entries, path)
                    allure.attach(path.read_bytes(), name="SIP pcap", attachment_type=allure.attachment_type.PCAP
                                  if hasattr(allure.attachment_type, "PCAP") else None, extension="pcap")
            except Exception as exc:  # a pcap is a bonus; never fail a check for it
                self.notes.append(f"(no pcap: {exc})")


class _Redacted:
    """A LogEntry view whose bytes went through the redactor (for the pcap)."""

    def __init__(self, entry: Any, redactor: Redactor) -> None:
        self._e = entry
        self.data = redactor.bytes(entry.data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._e, name)


