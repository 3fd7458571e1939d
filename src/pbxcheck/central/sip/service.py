"""The reference central's SIP side: registrar, B2BUA, simulated far end, click-to-call, screen sync.

Started by ``server.Central`` through :func:`create_service` on the central's own loop, on the
sockets the central bound: UDP and TCP on ``sip_port`` (7048), WS on ``ws_plain_port`` and WSS on
``ws_port`` (8089, TLS from ``central/tls.py``), path ``/ws``, subprotocol ``sip``.

What it does, clause by clause:

* **REGISTER** (SIP-REG-1..3, SIP-SEC-1). Digest: realm ``xhand``, ``qop="auth"``, ``algorithm=MD5``,
  an opaque fixed per central, and Asterisk/PJSIP-style nonces ``<epoch>/<hex>`` bound to the
  source IP and valid for ``nonce_lifetime`` s (``central/sip_auth.py``). A correct answer on an
  expired nonce gets a new challenge with ``stale=TRUE``; an nc not greater than the last accepted
  for that nonce (a replay) gets a fresh challenge. An unknown extension is verified against a random
  password, so it is answered by the very same 401 as a wrong password (no enumeration, SIP-REG-2).
  Expires (Contact ``expires`` param, else the Expires header, else 3600) is capped at 3600 and
  honoured; 0 removes the binding; ``Contact: *`` with Expires 0 removes it too.
  Bindings and the NAT collision rule: ``central/sip_registrar.py`` (SIP-NAT-1).
* **Authorised, then refused** (403, never before the challenge so nothing is revealed to a caller
  without the password): the username is not the To (REGISTER) / From (INVITE) user; the extension
  belongs to a blocked classe5 client (C5-1, ``store.is_extension_blocked``); REGISTER or INVITE
  over WS/WSS by an extension without ramal-web (SIP-WS-1).
* **INVITE** (SIP-INV-1/2): 401; the device ACKs it (absorbed by the transaction layer); the
  authenticated INVITE gets ``100 Trying``, ``183 Session Progress`` with SDP, then ``200 OK`` with
  SDP; ACK; BYE gets 200. The SDP answer picks the first offered codec among G729/PCMA/PCMU/GSM
  (telephone-event echoed) and an even RTP port in 10000-20000 (no RTP is sent or relayed: the
  harness checks signalling). No common codec: 488.
  To another extension: the central is a B2BUA: it INVITEs the callee's binding (401-free, from the
  central), relays ringing as 183 and the callee's answer as 200, ACKs it, and ties the two dialogs
  (a BYE on either side is answered and sent on to the other). Unregistered extension: 480.
  To any other number: a simulated far end answers after ``far_end_answer_delay`` clock seconds.
* **Click-to-call** (C2C-2): the central INVITEs the origin's binding (From: the destino number);
  once the phone answers, it ACKs and completes the call to destino (the simulated far end, after
  ``far_end_answer_delay``). When the phone hangs up, the call record (``id_clicktocall``) and its
  recording are written. An origin with no registered device falls back to the HTTP side's
  simulation (CallEngine), so HTTP-only checks still get their record.
* **statusramais** (RAM-2/RAM-3): each live call gives one channel per extension involved:
  caller ``SAIDA``, callee ``ENTRADA``; ``Callerid`` the other party; ``Extension`` the dialled
  number; the same ``IDCHAMADA`` (``<epoch>.<seq>``) and ``GRAVACAO`` on both; ``Up`` once answered.
  JSON1..3 are call variables: an INFO carrying DTMF (``application/dtmf-relay`` ``Signal=5`` or
  ``application/dtmf`` ``5``) from either party appends the digit to JSON1 (the document's "digits
  typed in the IVR"); a header ``X-JSON1``/``X-JSON2``/``X-JSON3`` on the INVITE or an INFO sets that
  variable to the header's value. Every call writes a call record and its recording at hang-up.
* **Bad input** (SIP-SEC-1): every request first goes through ``sip.validate.uas_precheck`` (RFC 4475
  application-layer answers: 400, 416, 420, 483, 505...); bytes that do not parse get a stateless
  400 when it can be addressed (``validate.reject_unparseable``), else are dropped. Nothing a peer
  sends can stop the side: the endpoint catches every handler error and counts it.

Fault switches: ``central/sip_faults.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pbxcheck.contract import DIRECAO_ENTRADA, DIRECAO_SAIDA, RTP_PORT_RANGE, SIP_REALM, SIP_WS_PATH
from pbxcheck.sip import digest, sdp
from pbxcheck.sip.drivers.base import Flow
from pbxcheck.sip.drivers.tcp import TcpServer
from pbxcheck.sip.drivers.udp import UdpEndpoint
from pbxcheck.sip.drivers.ws import WsServer
from pbxcheck.sip.endpoint import ClientTransaction, SipEndpoint, SipTimeout, new_branch, new_call_id, new_tag
from pbxcheck.sip.errors import DigestError, SdpError, SipParseError
from pbxcheck.sip.headers import NameAddr, SipUri
from pbxcheck.sip.ladder import MessageLog
from pbxcheck.sip.message import Request, Response, make_request, make_response
from pbxcheck.sip.transaction import make_cancel
from pbxcheck.sip.validate import reject_unparseable, uas_precheck

from . import records
from .calls import CallEngine, Channel
from .sip_auth import Lockout, NonceAuthority, NonceState
from .sip_registrar import Registrar
from .store import Store

if TYPE_CHECKING:
    from .server import Central, SipSockets

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER"
ACCEPT = ("application/sdp", "application/dtmf-relay", "application/dtmf")
SERVER = "pbxcheck-central"
SUPPORTED = (18, 8, 0, 3)  # G729, PCMA, PCMU, GSM: what the central can answer (SIP-INV-2)
MAX_EXPIRES = 3600
NEW_TAG = "\x00new"  # sentinel for _respond: make up a To tag
_DTMF_RELAY = re.compile(r"^signal\s*=\s*([0-9A-D*#])", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class _Account:
    number: str
    password: str = field(repr=False)
    ramal_web: bool
    blocked: bool


@dataclass
class SipSettings:
    nonce_lifetime: float = 30.0  # seconds a nonce stays fresh (then stale=TRUE)
    far_end_answer_delay: float = 1.0  # clock seconds until a simulated outside number answers
    far_end_progress_delay: float = 0.05  # seconds until its 183 Session Progress
    ring_timeout: float = 30.0  # clock seconds a device may ring before the call is given up
    max_call: float = 3600.0  # a call nobody hangs up is ended after this (clock seconds)
    log_messages: bool = False  # keep a MessageLog of every message (debugging; costs CPU)


@dataclass(eq=False)
class Leg:
    """One dialog between the central and a device (or the simulated far end, flow None)."""

    ext: str  # the extension on that side ("" for the far end)
    call_id: str
    local_tag: str
    local_uri: NameAddr  # our From (UAC) / To (UAS) value, tag included
    remote_uri: NameAddr
    remote_target: str
    flow: Flow | None
    uas: bool  # True: the device sent the INVITE; False: we did
    invite: Request | None = None  # their INVITE (uas) or ours (uac)
    tx: ClientTransaction | None = None
    remote_tag: str | None = None
    local_cseq: int = 1
    route_set: list[str] = field(default_factory=list)
    answered: bool = False  # 2xx exchanged
    sdp: bytes = b""  # what we sent on this leg

    def request(self, side: SipSide, method: str, *, headers: list[tuple[str, str]] | None = None,
                body: bytes = b"", content_type: str | None = None, cseq: int | None = None) -> Request:
        assert self.flow is not None
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        to = self.remote_uri.with_tag(self.remote_tag) if self.remote_tag and not self.remote_uri.tag \
            else self.remote_uri
        pairs = [("Route", r) for r in self.route_set] + list(headers or [])
        return make_request(method, self.remote_target, from_=self.local_uri, to=to, call_id=self.call_id, cseq=cseq,
                            via=side.via(self.flow), headers=pairs, body=body, content_type=content_type)


@dataclass(eq=False)
class LiveCall:
    idchamada: str
    gravacao: str
    caller: str  # extension (or destino for click-to-call ringing its origin)
    callee: str  # dialled number
    kind: str  # "ext" (extension to extension), "external" (far end), "c2c"
    started: float
    a: Leg | None = None  # the device that started it (c2c: the origin extension, called by us)
    b: Leg | None = None  # the callee device (kind "ext")
    c2c_id: str | None = None
    channels: list[Channel] = field(default_factory=list)
    json: list[str] = field(default_factory=lambda: ["", "", ""])
    answered_at: float | None = None
    ended: bool = False
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    hangup_side: str = "ORIGEM"

    def set_json(self, index: int, value: str) -> None:
        self.json[index] = value[:254]
        for ch in self.channels:
            ch.json = (self.json[0], self.json[1], self.json[2])

    def mark_up(self) -> None:
        now = time.time()
        self.answered_at = self.answered_at or now
        for ch in self.channels:
            if not ch.up:
                ch.up = True
                ch.started = now


class SipSide:
    def __init__(self, store: Store, *, host: str = "127.0.0.1", sockets: SipSockets | None = None,
                 ssl_context: ssl.SSLContext | None = None, faults: frozenset[str] = frozenset(),
                 clock_speed: float = 1.0, settings: SipSettings | None = None,
                 ports: dict[str, int] | None = None) -> None:
        self.store = store
        self.host = host
        self.sockets = sockets
        self.ssl_context = ssl_context
        self.faults = faults
        self.speed = clock_speed
        self.settings = settings or SipSettings()
        self.ports = dict(ports or (sockets.ports if sockets is not None else {}))
        self.log = MessageLog(limit=20_000) if self.settings.log_messages else None
        self.endpoint = SipEndpoint(on_request=self._on_request, on_parse_error=self._on_parse_error, log=self.log)
        self.nonces = NonceAuthority(SIP_REALM, lifetime=self.settings.nonce_lifetime)
        self.lockout = Lockout.from_env()  # off unless PBXCHECK_SIP_LOCKOUT is set (sip_auth.py)
        self.opaque = secrets.token_hex(8)
        self._decoy_password = secrets.token_urlsafe(12)  # unknown extensions are checked against this
        self.registrar = Registrar(collide="no-port-collision" not in faults)
        self.calls: dict[str, tuple[LiveCall, Leg]] = {}  # Call-ID of a leg -> (call, leg)
        self.live: list[LiveCall] = []
        self._rtp_next = RTP_PORT_RANGE[0]
        self._seq = 0  # last call sequence number handed out (IDCHAMADA)
        self.dead = False  # crash-on-torture: set after the first malformed message
        self.stats: dict[str, int] = {"registered": 0, "challenged": 0, "parse_errors": 0, "rejected": 0,
                                      "forbidden": 0}
        self.udp: UdpEndpoint | None = None
        self.tcp: TcpServer | None = None
        self.ws: WsServer | None = None
        self.wss: WsServer | None = None
        self.fallback: CallEngine | None = None  # the HTTP side's simulation, for unregistered origins

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.sockets
        h = self._receive
        if s is not None:
            self.udp = await UdpEndpoint.open(self.host, 0, h, sock=s.udp, rcvbuf=4 * 2**20)
            self.tcp = await TcpServer.start(self.host, 0, h, sock=s.tcp)
            self.ws = await WsServer.start(self.host, 0, h, path=SIP_WS_PATH, sock=s.ws)
            if self.ssl_context is not None:
                self.wss = await WsServer.start(self.host, 0, h, path=SIP_WS_PATH, sock=s.wss,
                                                ssl_context=self.ssl_context)
            else:
                s.wss.close()
        else:
            self.udp = await UdpEndpoint.open(self.host, self.ports.get("udp", 0), h, rcvbuf=4 * 2**20)
            self.ports["udp"] = self.udp.local[1]
            self.tcp = await TcpServer.start(self.host, self.ports.get("tcp", self.ports["udp"]), h)
            self.ports["tcp"] = self.tcp.local[1]
            self.ws = await WsServer.start(self.host, self.ports.get("ws", 0), h, path=SIP_WS_PATH)
            self.ports["ws"] = self.ws.local[1]
            if self.ssl_context is not None:
                self.wss = await WsServer.start(self.host, self.ports.get("wss", 0), h, path=SIP_WS_PATH,
                                                ssl_context=self.ssl_context)
                self.ports["wss"] = self.wss.local[1]

    async def stop(self) -> None:
        for call in list(self.live):
            self._finish(call, record=False)
        self.endpoint.close()
        if self.udp is not None:
            self.udp.close()
        for server in (self.tcp, self.ws, self.wss):
            if server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.close(), 3)

    # --- plumbing -------------------------------------------------------------------------------------

    def _receive(self, data: bytes, flow: Flow) -> None:
        if self.dead:
            return
        self.endpoint.receive(data, flow)

    def _broken_by_torture(self) -> None:
        if "crash-on-torture" in self.faults:
            self.dead = True

    def _on_parse_error(self, data: bytes, flow: Flow, exc: SipParseError) -> None:
        self.stats["parse_errors"] += 1
        self._broken_by_torture()
        if self.dead:
            return
        answer = reject_unparseable(data, exc)
        if answer is not None:
            self.endpoint._raw(answer, flow)

    def via(self, flow: Flow) -> str:
        return f"SIP/2.0/{flow.transport} {flow.local[0]}:{flow.local[1]};rport;branch={new_branch()}"

    def contact(self, flow: Flow, user: str = "central") -> str:
        return f"<sip:{user}@{flow.local[0]}:{flow.local[1]};transport={flow.transport.lower()}>"

    def _respond(self, req: Request, flow: Flow, status: int, reason: str | None = None, *,
                 to_tag: str | None = NEW_TAG, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> None:
        """Answer ``req``; ``to_tag`` NEW_TAG: a fresh To tag (stateless answers), None: no tag (100)."""
        pairs = [("Server", SERVER), *(headers or [])]
        resp = make_response(req, status, reason, to_tag=new_tag() if to_tag is NEW_TAG else to_tag, headers=pairs,
                             body=body, content_type="application/sdp" if body else None)
        self.endpoint.respond(req, flow, resp)

    def _later(self, delay: float, fn: Any, *args: Any, call: LiveCall | None = None) -> asyncio.TimerHandle:
        handle = asyncio.get_running_loop().call_later(delay / self.speed, fn, *args)
        if call is not None:
            call.timers.append(handle)
        return handle

    # --- dispatch -------------------------------------------------------------------------------------

    def _on_request(self, req: Request, flow: Flow) -> None:
        rejection = uas_precheck(req, accept=ACCEPT)
        if rejection is not None:
            self.stats["rejected"] += 1
            if req.method != "ACK":
                self.endpoint.respond(req, flow, rejection.response(req, to_tag=new_tag()))
            self._broken_by_torture()
            return
        m = req.method
        if m == "REGISTER":
            self._on_register(req, flow)
        elif m == "INVITE":
            self._on_invite(req, flow)
        elif m in ("ACK", "BYE", "CANCEL", "INFO"):
            self._in_dialog(req, flow)
        elif m == "OPTIONS":
            self._respond(req, flow, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp")])
        else:
            self._respond(req, flow, 405, headers=[("Allow", ALLOW)])

    # --- digest ---------------------------------------------------------------------------------------

    def _challenge(self, req: Request, flow: Flow, *, stale: bool = False) -> None:
        self.stats["challenged"] += 1
        no_qop = "challenge-no-qop" in self.faults
        ch = digest.Challenge(realm=SIP_REALM, nonce=self.nonces.issue(flow.remote[0]),
                              opaque=None if no_qop else self.opaque, algorithm="MD5",
                              qop=() if no_qop else ("auth",), stale=stale)
        self._respond(req, flow, 401, headers=[("WWW-Authenticate", str(ch))])

    def _account(self, number: str) -> _Account | None:
        """One query per request for what the SIP side needs of an extension (password, ramal-web,
        blocked): a REGISTER flood must not cost four SQLite round trips per message."""
        row = self.store.db.execute(
            "SELECT e.password, e.ramal_web, coalesce(c.blocked, 0) FROM extensions e"
            " LEFT JOIN classe5 c ON c.login = e.classe5 WHERE e.number=?", (number,)).fetchone()
        return None if row is None else _Account(number, row[0], bool(row[1]), bool(row[2]))

    def _authenticate(self, req: Request, flow: Flow, claimed: _Account | None) -> _Account | None:
        """The authenticated extension, or None after answering (401 challenge)."""
        value = req.headers.get("Authorization")
        if value is None:
            self._challenge(req, flow)
            return None
        try:
            creds = digest.Credentials.parse(value)
        except DigestError:
            self._challenge(req, flow)  # RFC 4475 regaut01: unknown scheme -> challenge
            return None
        if self.lockout.locked(flow.remote[0]):
            self._respond(req, flow, 403, "Forbidden (too many failed attempts)")
            return None
        lax = "nonce-replay-accepted" in self.faults
        row = claimed if claimed is not None and claimed.number == creds.username else self._account(creds.username)
        if creds.realm != SIP_REALM or (creds.opaque is not None and creds.opaque != self.opaque):
            self._challenge(req, flow)
            return None
        state = self.nonces.check(creds.nonce, flow.remote[0])
        if state is NonceState.INVALID and not lax:
            self._challenge(req, flow)
            return None
        if creds.qop is None and "challenge-no-qop" not in self.faults:
            self._challenge(req, flow)  # we demanded qop=auth (RFC 2069 answers are weaker: no cnonce/nc)
            return None
        password = row.password if row is not None else self._decoy_password
        good = digest.verify(creds, password, req.method, realm=SIP_REALM)
        if "wrong-password-accepted" in self.faults and row is not None:
            good = True
        if not good or row is None:
            self.lockout.failed(flow.remote[0])
            self._challenge(req, flow)
            return None
        if state is NonceState.STALE and not lax:
            self._challenge(req, flow, stale=True)
            return None
        if creds.qop is not None:
            try:
                nc = int(creds.nc or "", 16)
            except ValueError:
                nc = 0
            if not self.nonces.accept_nc(creds.nonce, nc, replay_allowed=lax):
                self._challenge(req, flow)  # a replayed or wrong nonce count
                return None
        return row

    def _admit(self, req: Request, flow: Flow, claimed: str | None) -> str | None:
        """Authentication and the refusals that come after it; the extension, or None (answered)."""
        if claimed is None:
            self._respond(req, flow, 400, "Bad Request (no user in " + ("To" if req.method == "REGISTER" else "From") + ")")
            return None
        account = self._account(claimed)
        if "unknown-ext-404" in self.faults and account is None:
            self._respond(req, flow, 404)
            return None
        no_auth = (req.method == "REGISTER" and "register-no-challenge" in self.faults) or \
                  (req.method == "INVITE" and "invite-no-challenge" in self.faults)
        if no_auth and "Authorization" not in req.headers and account is not None:
            found: _Account | None = account
        else:
            found = self._authenticate(req, flow, account)
        if found is None:
            return None
        user = found.number
        if user != claimed:
            self._forbid(req, flow, "username does not match the " + ("To" if req.method == "REGISTER" else "From"))
            return None
        if found.blocked and "classe5-sip-not-blocked" not in self.faults:
            self._forbid(req, flow, "client blocked")
            return None
        if flow.transport in ("WS", "WSS") and "ws-open-to-all" not in self.faults:
            if not found.ramal_web:
                self._forbid(req, flow, "ramal-web disabled")
                return None
        return user

    def _forbid(self, req: Request, flow: Flow, why: str) -> None:
        self.stats["forbidden"] += 1
        self._respond(req, flow, 403, f"Forbidden ({why})")
        return None

    # --- REGISTER -------------------------------------------------------------------------------------

    def _on_register(self, req: Request, flow: Flow) -> None:
        to_uri = req.to.uri
        claimed = to_uri.user if isinstance(to_uri, SipUri) else None
        user = self._admit(req, flow, claimed)
        if user is None:
            return
        ignore_expires = "expires-ignored" in self.faults
        contact = req.contact  # parsed (and cached) by the parser; None for "Contact: *" or no Contact
        if contact is None and req.contact_star:
            if req.expires != 0:
                self._respond(req, flow, 400, "Bad Request (Contact * needs Expires 0)")
                return
            if not ignore_expires:
                self.registrar.remove(user)
            self._respond(req, flow, 200, headers=[("Date", _http_date())])
            return
        if contact is None:  # a query: list the current binding
            b = self.registrar.lookup(user)
            headers = [("Date", _http_date())]
            if b is not None:
                left = max(0, int(b.expires_at - self.registrar.clock()))
                headers.append(("Contact", f"<{b.contact}>;expires={left}"))
            self._respond(req, flow, 200, headers=headers)
            return
        exp_s = contact.param("expires")
        expires = int(exp_s) if exp_s is not None and exp_s.isdigit() and len(exp_s) < 10 else req.expires
        expires = MAX_EXPIRES if expires is None else min(expires, MAX_EXPIRES)
        if ignore_expires:
            expires = MAX_EXPIRES
        uri = str(contact.uri)
        if expires == 0:
            self.registrar.remove(user)
            self._respond(req, flow, 200, headers=[("Date", _http_date())])
            return
        self.registrar.update(user, uri, flow, expires, call_id=req.call_id, cseq=req.cseq.number)
        self.stats["registered"] += 1
        self._respond(req, flow, 200, headers=[("Contact", f"<{uri}>;expires={expires}"), ("Expires", str(expires)),
                                               ("Date", _http_date())])

    # --- media ----------------------------------------------------------------------------------------

    def _rtp_port(self) -> int:
        if "rtp-port-out-of-range" in self.faults:
            return 30000 + 2 * secrets.randbelow(5000)
        port = self._rtp_next
        self._rtp_next = port + 2 if port + 2 < RTP_PORT_RANGE[1] else RTP_PORT_RANGE[0]
        return port

    def _answer_sdp(self, offer: bytes, ip: str) -> bytes | None:
        """Our SDP answer to ``offer`` (None: nothing in common, answer 488)."""
        try:
            session = sdp.parse_sdp(offer)
            answer = sdp.make_answer(session, SUPPORTED, ip=ip, rtp_port=self._rtp_port(),
                                     session_id=secrets.randbelow(2**31))
        except SdpError:
            return None
        body = answer.to_bytes()
        if "codec-not-offered" in self.faults:
            body = re.sub(rb"m=audio (\d+) (\S+) \d+", rb"m=audio \1 \2 9", body, count=1)
            body = re.sub(rb"a=rtpmap:\d+ [A-Za-z0-9]+/8000", b"a=rtpmap:9 G722/8000", body, count=1)
        return body

    def _offer_sdp(self, ip: str) -> bytes:
        codecs = SUPPORTED if "codec-not-offered" not in self.faults else (9, *SUPPORTED)
        return sdp.make_offer(ip, self._rtp_port(), codecs, session_id=secrets.randbelow(2**31)).to_bytes()

    # --- calls: bookkeeping -----------------------------------------------------------------------------

    def _new_call(self, caller: str, callee: str, kind: str, *, c2c_id: str | None = None) -> LiveCall:
        now = time.time()
        # <epoch>.<seq> like Asterisk's uniqueid; the store's next sequence number, but never one a call
        # still in progress holds (its record is written only at hang-up)
        seq = int(records.next_uniqueid(self.store, now).rpartition(".")[2])
        self._seq = max(seq, self._seq + 1)
        uniqueid = f"{int(now)}.{self._seq}"
        ramal = caller if kind != "c2c" else callee
        gravacao = records.gravacao_name(now, ramal, "S", callee if kind != "c2c" else caller, uniqueid)
        call = LiveCall(uniqueid, gravacao, caller, callee, kind, now, c2c_id=c2c_id)
        self.live.append(call)
        return call

    def _channel(self, call: LiveCall, ramal: str, direcao: str, callerid: str) -> None:
        call.channels.append(Channel(ramal=ramal, direcao=direcao, callerid=callerid, extension=call.callee,
                                     started=time.time(), gravacao=call.gravacao, idchamada=call.idchamada))

    def live_channels(self) -> list[Channel]:
        if "ramais-no-sip" in self.faults:
            return []
        return [ch for call in self.live for ch in call.channels]

    def _finish(self, call: LiveCall, *, record: bool = True) -> None:
        """The call is over: forget it, stop its timers, write its record (and so its recording)."""
        if call.ended:
            return
        call.ended = True
        for t in call.timers:
            t.cancel()
        if call in self.live:
            self.live.remove(call)
        for leg in (call.a, call.b):
            if leg is not None:
                self.calls.pop(leg.call_id, None)
        if not record:
            return
        now = time.time()
        answered = call.answered_at is not None
        talk = max(1, round(now - call.answered_at)) if call.answered_at else 0
        ramal = call.callee if call.kind == "c2c" else call.caller
        numero = call.caller if call.kind == "c2c" else call.callee
        if call.c2c_id and "c2c-no-record" in self.faults:
            return
        with self.store.tx():
            rec = records.call_record(
                self.store, ts=now, numero=numero, ramal=ramal, duracao=talk,
                tipo="CLICKTOCALL" if call.kind == "c2c" else "RAMAL" if call.kind == "ext" else "SAIDA",
                statuschamada="ANSWER" if answered else "NO ANSWER", grupo=ramal, sidehangup=call.hangup_side,
                clicktocall_id=call.c2c_id, uniqueid=call.idchamada,
                gravacao=call.gravacao if answered else "")
            self.store.add_call(rec, now)

    # --- INVITE from a device -------------------------------------------------------------------------

    def _on_invite(self, req: Request, flow: Flow) -> None:
        if req.to.tag is not None:
            self._in_dialog(req, flow)  # a re-INVITE
            return
        from_uri = req.from_.uri
        caller = self._admit(req, flow, from_uri.user if isinstance(from_uri, SipUri) else None)
        if caller is None:
            return
        try:
            number = req.sip_uri.user
        except SipParseError:
            number = None
        if not number:
            self._respond(req, flow, 404)
            return
        offer = req.body if req.content_type == "application/sdp" and req.body else b""
        answer = self._answer_sdp(offer, flow.local[0]) if offer else self._offer_sdp(flow.local[0])
        if answer is None:
            self._respond(req, flow, 488)
            return
        callee_row = self.store.extension(number)
        if callee_row is not None and self.registrar.route(number) is None:
            self._respond(req, flow, 480, "Temporarily Unavailable (not registered)")
            return
        kind = "ext" if callee_row is not None else "external"
        call = self._new_call(caller, number, kind)
        leg = Leg(caller, req.call_id, new_tag(), req.to, req.from_, "", flow, True, invite=req,
                  remote_tag=req.from_.tag, sdp=answer)
        leg.local_uri = req.to.with_tag(leg.local_tag)
        leg.remote_target = str(req.contact.uri) if req.contact is not None else str(req.from_.uri)
        leg.route_set = list(req.headers.get_all("Record-Route"))
        call.a = leg
        self.calls[leg.call_id] = (call, leg)
        self._read_json_headers(call, req)
        self._channel(call, caller, DIRECAO_SAIDA, number)
        self._respond(req, flow, 100, to_tag=None)
        self._later(self.settings.max_call, self._hangup_both, call, "max call duration", call=call)
        if kind == "external":
            if "invite-no-183" not in self.faults:
                self._later(self.settings.far_end_progress_delay * self.speed, self._progress, call, call=call)
            self._later(self.settings.far_end_answer_delay, self._answer_a, call, call=call)
        else:
            self._channel(call, number, DIRECAO_ENTRADA, caller)
            if "invite-no-183" not in self.faults:
                self._progress(call)
            asyncio.get_running_loop().create_task(self._bridge_to_callee(call, number))

    def _uas_response(self, leg: Leg, status: int, body: bytes = b"", reason: str | None = None) -> None:
        assert leg.invite is not None and leg.flow is not None
        self._respond(leg.invite, leg.flow, status, reason, to_tag=leg.local_tag,
                      headers=[("Contact", self.contact(leg.flow, leg.local_uri.sip_uri.user or "central")),
                               ("Allow", ALLOW)], body=body)

    def _progress(self, call: LiveCall) -> None:
        leg = call.a
        if call.ended or leg is None or not leg.uas or leg.answered:
            return
        self._uas_response(leg, 183, leg.sdp)

    def _answer_a(self, call: LiveCall) -> None:
        leg = call.a
        if call.ended or leg is None or leg.answered:
            return
        leg.answered = True
        self._uas_response(leg, 200, leg.sdp)
        call.mark_up()

    def _fail_a(self, call: LiveCall, status: int, reason: str | None = None) -> None:
        leg = call.a
        if leg is not None and leg.uas and not leg.answered and not call.ended:
            self._uas_response(leg, status, reason=reason)
        call.hangup_side = "DESTINO"
        self._finish(call)

    async def _bridge_to_callee(self, call: LiveCall, number: str) -> None:
        """B2BUA: INVITE the callee's device, relay its answer to the caller."""
        target = self.registrar.route(number)
        if target is None:
            self._fail_a(call, 480)
            return
        flow = target.flow
        caller = call.caller
        leg = Leg(number, new_call_id(), new_tag(),
                  NameAddr(caller, SipUri("sip", caller, None, self.host)),
                  NameAddr(None, SipUri("sip", number, None, self.host)), target.contact, flow, False)
        leg.local_uri = leg.local_uri.with_tag(leg.local_tag)
        call.b = leg
        self.calls[leg.call_id] = (call, leg)
        ok = await self._place(call, leg, self._offer_sdp(flow.local[0]),
                               [("X-Call-Id", call.idchamada)])
        if call.ended:
            return
        if not ok:
            status = leg.tx.final.result().status if leg.tx and leg.tx.final.done() and \
                not leg.tx.final.cancelled() and leg.tx.final.exception() is None else 480
            self._fail_a(call, status if 400 <= status < 700 else 480)
            return
        self._answer_a(call)

    async def _place(self, call: LiveCall, leg: Leg, offer: bytes, headers: list[tuple[str, str]]) -> bool:
        """Send our INVITE on ``leg`` and wait for the answer (ring timeout); ACK a 2xx. True: answered."""
        assert leg.flow is not None
        inv = make_request("INVITE", leg.remote_target, from_=leg.local_uri, to=leg.remote_uri, call_id=leg.call_id,
                           cseq=leg.local_cseq, via=self.via(leg.flow), contact=self.contact(leg.flow, call.caller),
                           headers=[("Allow", ALLOW), ("User-Agent", SERVER), *headers], body=offer,
                           content_type="application/sdp")
        leg.invite = inv
        leg.sdp = offer
        leg.tx = self.endpoint.request(inv, leg.flow)
        try:
            resp = await leg.tx.wait(self.settings.ring_timeout / self.speed)
        except SipTimeout:
            await self._cancel_leg(leg)
            return False
        except asyncio.CancelledError:
            return False
        if resp.status >= 300 or call.ended:
            if call.ended and resp.status < 300:
                self._ack_and_bye(leg, resp)
            return False
        leg.remote_tag = resp.to.tag
        leg.remote_uri = resp.to
        if resp.contact is not None:
            leg.remote_target = str(resp.contact.uri)
        leg.route_set = list(reversed(resp.headers.get_all("Record-Route")))
        self.endpoint.send_ack(leg.request(self, "ACK", cseq=resp.cseq.number), leg.flow)
        leg.answered = True
        return True

    def _ack_and_bye(self, leg: Leg, resp: Response) -> None:
        assert leg.flow is not None
        leg.remote_tag = resp.to.tag
        if resp.contact is not None:
            leg.remote_target = str(resp.contact.uri)
        self.endpoint.send_ack(leg.request(self, "ACK", cseq=resp.cseq.number), leg.flow)
        self._bye(leg)

    async def _cancel_leg(self, leg: Leg) -> None:
        tx = leg.tx
        if tx is None or leg.flow is None or tx.final.done():
            return
        cancel = make_cancel(tx.request)
        try:
            await self.endpoint.request(cancel, leg.flow).wait(2.0)
        except (SipTimeout, asyncio.CancelledError):
            pass

    def _bye(self, leg: Leg) -> None:
        if leg.flow is None or leg.flow.closed:
            return
        tx = self.endpoint.request(leg.request(self, "BYE"), leg.flow)
        tx.final.add_done_callback(lambda f: f.cancelled() or f.exception())  # outcome not needed

    def _hangup_both(self, call: LiveCall, why: str = "") -> None:
        for leg in (call.a, call.b):
            if leg is None or leg.flow is None:
                continue
            if leg.answered:
                self._bye(leg)
            elif leg.uas:
                self._uas_response(leg, 487 if why == "cancel" else 480)
            else:
                asyncio.get_running_loop().create_task(self._cancel_leg(leg))
        self._finish(call)

    # --- click-to-call ------------------------------------------------------------------------------

    def can_ring(self, ext: str) -> bool:
        return self.registrar.route(ext) is not None

    def originate(self, origem: str, destino: str, c2c_id: str) -> None:
        """C2C-2: ring ``origem``'s device; once answered, connect it to ``destino`` (far end)."""
        target = self.registrar.route(origem)
        if target is None:
            return
        call = self._new_call(destino, origem, "c2c", c2c_id=c2c_id)
        flow = target.flow
        leg = Leg(origem, new_call_id(), new_tag(), NameAddr(destino, SipUri("sip", destino, None, self.host)),
                  NameAddr(None, SipUri("sip", origem, None, self.host)), target.contact, flow, False)
        leg.local_uri = leg.local_uri.with_tag(leg.local_tag)
        call.a = leg
        self.calls[leg.call_id] = (call, leg)
        self._channel(call, origem, DIRECAO_SAIDA, destino)
        call.channels[0].extension = destino
        self._later(self.settings.max_call, self._hangup_both, call, "max call duration", call=call)
        asyncio.get_running_loop().create_task(self._run_c2c(call, leg, flow))

    async def _run_c2c(self, call: LiveCall, leg: Leg, flow: Flow) -> None:
        ok = await self._place(call, leg, self._offer_sdp(flow.local[0]), [("X-Clicktocall-Id", call.c2c_id or "")])
        if call.ended:
            return
        if not ok:
            call.hangup_side = "ORIGEM"
            self._finish(call)
            return
        # the origin picked up: complete the call to destino (the far end answers after a delay)
        self._later(self.settings.far_end_answer_delay, call.mark_up, call=call)

    # --- in-dialog requests ---------------------------------------------------------------------------

    def _in_dialog(self, req: Request, flow: Flow) -> None:
        found = self.calls.get(req.call_id)
        m = req.method
        if found is None:
            if m != "ACK":
                self._respond(req, flow, 481)
            return
        call, leg = found
        if m == "ACK":
            return  # the 2xx retransmissions stop in the endpoint
        if m == "CANCEL":
            self._respond(req, flow, 200)
            if leg.uas and not leg.answered and leg.invite is not None and req.branch == leg.invite.branch:
                call.hangup_side = "ORIGEM"
                self._hangup_both(call, "cancel")
            return
        if m == "BYE":
            if "bye-not-answered" in self.faults:
                return
            self._respond(req, flow, 200)
            call.hangup_side = "ORIGEM" if leg is call.a else "DESTINO"
            other = call.b if leg is call.a else call.a
            if other is not None and other.flow is not None:
                if other.answered:
                    self._bye(other)
                elif other.uas:
                    self._uas_response(other, 480)
                else:
                    asyncio.get_running_loop().create_task(self._cancel_leg(other))
            self._finish(call)
            return
        if m == "INFO":
            self._read_json_headers(call, req)
            digit = _dtmf_digit(req)
            if digit is not None:
                call.set_json(0, call.json[0] + digit)
            self._respond(req, flow, 200)
            return
        if m == "INVITE":  # re-INVITE: keep the session as it is
            self._respond(req, flow, 200, to_tag=leg.local_tag, body=leg.sdp,
                          headers=[("Contact", self.contact(flow))])
            return

    @staticmethod
    def _read_json_headers(call: LiveCall, req: Request) -> None:
        for i in range(3):
            v = req.headers.get(f"X-JSON{i + 1}")
            if v is not None:
                call.set_json(i, v)


def _dtmf_digit(req: Request) -> str | None:
    text = req.body.decode("utf-8", "replace")
    if req.content_type == "application/dtmf-relay":
        m = _DTMF_RELAY.search(text)
        return m.group(1).upper() if m else None
    if req.content_type == "application/dtmf":
        t = text.strip()
        return t[:1].upper() if t[:1] and t[:1].upper() in "0123456789ABCD*#" else None
    return None


_date_cache: list[object] = [0, ""]


def _http_date() -> str:
    """RFC 1123 date for the Date header, formatted once per second (a REGISTER flood asks often)."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))
    return str(_date_cache[1])


class SipCallEngine(CallEngine):
    """The HTTP side's CallEngine with a phone on the line: click-to-call rings the registered device,
    statusramais shows live SIP calls, ``is_registered`` asks the registrar."""

    def __init__(self, store: Store, sip: SipSide, *, clock_speed: float = 1.0,
                 faults: frozenset[str] = frozenset()) -> None:
        super().__init__(store, clock_speed=clock_speed, faults=faults)
        self.sip = sip

    def _simulate(self, origem: str, destino: str, call_id: str, now: float) -> None:
        if "c2c-no-ring" in self.faults or not self.sip.can_ring(origem):
            super()._simulate(origem, destino, call_id, now)  # no device to ring: the HTTP-only model
            return
        self.sip.originate(origem, destino, call_id)

    def live_channels(self) -> list[Channel]:
        return super().live_channels() + self.sip.live_channels()

    def is_registered(self, number: str) -> bool:
        return self.sip.registrar.lookup(number) is not None


def create_service(central: Central, settings: SipSettings | None = None) -> SipSide:
    """The hook ``server.Central`` calls: the SIP side on the central's sockets, and the CallEngine
    swapped for one that rings real devices. Tests pass ``settings`` (short nonce lifetime...) through
    ``functools.partial(create_service, settings=...)``."""
    assert central.store is not None
    ctx: ssl.SSLContext | None = None
    if central.tls is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(central.tls.cert_file, central.tls.key_file)
    host = central.config.host if central.config.host not in ("0.0.0.0", "", "::") else "127.0.0.1"
    side = SipSide(central.store, host=host, sockets=central.sip_sockets, ssl_context=ctx, faults=central.faults,
                   clock_speed=central.config.clock_speed, settings=settings)
    old = central.calls
    central.calls = SipCallEngine(central.store, side, clock_speed=central.config.clock_speed, faults=central.faults)
    if old is not None:
        old.close()
    return side
