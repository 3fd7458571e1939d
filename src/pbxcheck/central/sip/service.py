"""The reference central's SIP side, wired: sockets and drivers, start/stop, the one transaction
endpoint, RFC 3581 on every answer, and dispatch by method to the parts.

Started by ``server.Central`` through :func:`create_service` on the central's own loop, on the
sockets the central bound: UDP and TCP on ``sip_port`` (7048), WS on ``ws_plain_port`` and WSS on
``ws_port`` (8089, TLS from ``central/tls.py``), path ``/ws``, subprotocol ``sip``.

The parts, each given only what it uses (``base.Replies`` / ``base.Dialogs``, the store, ...):

* ``admission.py``: digest challenge and verification, nonces, lockout, the 403 refusals
  (SIP-REG-1/2, SIP-SEC-1, C5-1, SIP-WS-1);
* ``registration.py``: REGISTER, bindings and the NAT flow rule (SIP-REG-3, SIP-NAT-1);
* ``b2bua.py``: INVITE, the B2BUA legs, in-dialog requests, hang-up, call records (SIP-INV-1, RAM-2/3);
* ``clicktocall.py``: click-to-call ringing the origin's phone, the HTTP side's call engine (C2C-2);
* ``media.py``: SDP offer/answer, RTP ports, DTMF and X-JSON headers (SIP-INV-2, RAM-3);
* ``faults.py``: the SIP fault switches.

Bad input (SIP-SEC-1): every request first goes through ``sip.validate.uas_precheck`` (RFC 4475
application-layer answers: 400, 416, 420, 483, 505...); bytes that do not parse get a stateless 400
when it can be addressed (``validate.reject_unparseable``), else are dropped. Nothing a peer sends
can stop the side: the endpoint catches every handler error and counts it.

Via (RFC 3581 §4, RFC 3261 §18.2.1): every answer's top Via gets ``received=<source IP>`` when the
sent-by host is not the source address (always when it is a name) and, when the request asked with
an empty ``rport``, ``rport=<source port>`` and ``received``; answers go back on the flow the request
came on, so over UDP to received:rport.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from pbxcheck.contract import SIP_WS_PATH
from pbxcheck.sip.dialog import new_tag
from pbxcheck.sip.drivers.base import Flow
from pbxcheck.sip.drivers.tcp import TcpServer
from pbxcheck.sip.drivers.udp import UdpEndpoint
from pbxcheck.sip.drivers.ws import WsServer
from pbxcheck.sip.errors import SipParseError
from pbxcheck.sip.grammar import split_commas
from pbxcheck.sip.ladder import OUT, MessageLog
from pbxcheck.sip.message import Headers, Request, make_response
from pbxcheck.sip.transaction import new_branch
from pbxcheck.sip.validate import reject_unparseable, uas_precheck

from ..calls import Channel
from ..sockets import SipSockets
from ..store import Store
from ..tls import TlsFiles
from .admission import Admission
from .b2bua import B2bua
from .base import ACCEPT, ALLOW, NEW_TAG, SERVER, SipSettings, Stats
from .clicktocall import ClickToCall, SipCallEngine
from .media import Media
from .registration import Registrar, Registration
from .transactions import ClientTransaction, SipEndpoint


class SipService:
    """The SIP side: owns the drivers and the endpoint, implements ``base.Dialogs`` for the parts."""

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        sockets: SipSockets | None = None,
        ssl_context: ssl.SSLContext | None = None,
        faults: frozenset[str] = frozenset(),
        clock_speed: float = 1.0,
        settings: SipSettings | None = None,
        ports: dict[str, int] | None = None,
    ) -> None:
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
        self.dead = False  # crash-on-torture: set after the first malformed message
        self.stats: Stats = {"registered": 0, "challenged": 0, "parse_errors": 0, "rejected": 0, "forbidden": 0}
        self.registrar = Registrar(collide="no-port-collision" not in faults)
        self.admission = Admission(store, self, self.stats, faults=faults, nonce_lifetime=self.settings.nonce_lifetime)
        self.registration = Registration(self.registrar, self.admission, self, self.stats, faults=faults)
        self.media = Media(faults=faults)
        self.b2bua = B2bua(
            store,
            self.registrar,
            self.admission,
            self.media,
            self,
            self.settings,
            host=host,
            faults=faults,
            clock_speed=clock_speed,
        )
        self.c2c = ClickToCall(self.b2bua, self.registrar, self.settings)
        self.udp: UdpEndpoint | None = None
        self.tcp: TcpServer | None = None
        self.ws: WsServer | None = None
        self.wss: WsServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.sockets
        h = self._receive
        if s is not None:
            self.udp = await UdpEndpoint.open(self.host, 0, h, sock=s.udp, rcvbuf=4 * 2**20)
            self.tcp = await TcpServer.start(self.host, 0, h, sock=s.tcp)
            self.ws = await WsServer.start(self.host, 0, h, path=SIP_WS_PATH, sock=s.ws)
            if self.ssl_context is not None:
                self.wss = await WsServer.start(
                    self.host, 0, h, path=SIP_WS_PATH, sock=s.wss, ssl_context=self.ssl_context
                )
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
                self.wss = await WsServer.start(
                    self.host, self.ports.get("wss", 0), h, path=SIP_WS_PATH, ssl_context=self.ssl_context
                )
                self.ports["wss"] = self.wss.local[1]

    async def stop(self) -> None:
        self.b2bua.stop()
        self.endpoint.close()
        for task in list(self._tasks):
            task.cancel()
        if self.udp is not None:
            self.udp.close()
        for server in (self.tcp, self.ws, self.wss):
            if server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.close(), 3)

    def live_channels(self) -> list[Channel]:
        return self.b2bua.live_channels()

    # --- input --------------------------------------------------------------------------------------

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
        if answer is not None:  # stateless: no transaction to keep, so straight onto the flow
            if self.log is not None:
                self.log.record(OUT, flow.transport, flow.local, flow.remote, answer)
            flow.send(answer)

    def _on_request(self, req: Request, flow: Flow) -> None:
        rejection = uas_precheck(req, accept=ACCEPT)
        if rejection is not None:
            self.stats["rejected"] += 1
            if req.method != "ACK":
                self.endpoint.respond(req, flow, rejection.response(answered_as(req, flow), to_tag=new_tag()))
            self._broken_by_torture()
            return
        m = req.method
        if m == "REGISTER":
            self.registration.on_register(req, flow)
        elif m == "INVITE":
            self.b2bua.on_invite(req, flow)
        elif m in ("ACK", "BYE", "CANCEL", "INFO"):
            self.b2bua.in_dialog(req, flow)
        elif m == "OPTIONS":
            self.respond(req, flow, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp")])
        else:
            self.respond(req, flow, 405, headers=[("Allow", ALLOW)])

    # --- base.Dialogs: what the parts use -------------------------------------------------------------

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
        pairs = [("Server", SERVER), *(headers or [])]
        resp = make_response(
            req,
            status,
            reason,
            to_tag=new_tag() if to_tag is NEW_TAG else to_tag,
            headers=pairs,
            body=body,
            content_type="application/sdp" if body else None,
            via=answer_vias(req, flow),
        )
        self.endpoint.respond(req, flow, resp)

    def later(self, delay: float, fn: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay / self.speed, fn, *args)

    def via(self, flow: Flow) -> str:
        return f"SIP/2.0/{flow.transport} {flow.local[0]}:{flow.local[1]};rport;branch={new_branch()}"

    def contact(self, flow: Flow, user: str = "central") -> str:
        return f"<sip:{user}@{flow.local[0]}:{flow.local[1]};transport={flow.transport.lower()}>"

    def request(self, req: Request, flow: Flow) -> ClientTransaction:
        return self.endpoint.request(req, flow)

    def send_ack(self, ack: Request, flow: Flow) -> None:
        self.endpoint.send_ack(ack, flow)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def answered_as(req: Request, flow: Flow) -> Request:
    """``req`` as its answers must echo it: the top Via with ``received``/``rport`` filled in (RFC 3581
    §4, RFC 3261 §18.2.1). The same object when nothing is to be added; memoised on the request (an
    INVITE is answered 100, 183, 200), never handed to the endpoint (its transaction keys stay)."""
    cached = req.__dict__.get("_answered_as")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    vias = answer_vias(req, flow)
    out = req
    if vias is not None:
        raw = req.headers.get_raw("Via")
        if len(raw) == 1:
            headers = req.headers.with_("Via", vias[0])
        else:
            items = list(req.headers.items)
            i = next(k for k, (n, _) in enumerate(items) if n == "Via")
            items[i] = ("Via", vias[0])
            headers = Headers(tuple(items))
        out = Request(req.method, req.uri, headers, req.body, req.version)
        for name in ("to", "from_", "call_id", "cseq"):  # already parsed: do not parse again
            if name in req.__dict__:
                out.__dict__[name] = req.__dict__[name]
    req.__dict__["_answered_as"] = out
    return out


def answer_vias(req: Request, flow: Flow) -> list[str] | None:
    """The Via header lines ``req``'s answers echo (``make_response(..., via=)``): the request's with
    ``received``/``rport`` stamped into the top one (see ``answered_as``); None when nothing is to
    be added. Memoised on the request; what ``respond`` uses, so an answer costs no second request."""
    cached = req.__dict__.get("_answer_vias", False)
    if cached is not False:
        return cached  # type: ignore[no-any-return]
    out: list[str] | None = None
    try:
        via = req.top_via
    except SipParseError:
        via = None
    if via is not None:
        ip, port = flow.remote
        empty_rport = via.has_rport and via.rport is None
        if empty_rport or via.host.strip("[]").lower() != ip.lower():
            raw = req.headers.get_raw("Via")
            first = raw[0] if "," not in raw[0] else None
            if first is not None and via.received is None and (not empty_rport or _EMPTY_RPORT.search(first)):
                # the common case, on the text: a REGISTER flood pays a few microseconds, not a re-parse
                top = _EMPTY_RPORT.sub(f";rport={port}", first, count=1) if empty_rport else first
                top = f"{top};received={ip}"
            else:
                stamped = via.with_param("received", ip)
                if empty_rport:
                    stamped = stamped.with_param("rport", str(port))
                top = ", ".join([str(stamped), *split_commas(raw[0])[1:]])
            out = [top, *raw[1:]]
    req.__dict__["_answer_vias"] = out
    return out


_EMPTY_RPORT = re.compile(r";[ \t]*rport(?=[ \t]*(?:;|$))", re.IGNORECASE)


class CentralParts(Protocol):
    """What :func:`create_service` reads of the central (``server.Central`` has it)."""

    @property
    def store(self) -> Store | None: ...

    @property
    def tls(self) -> TlsFiles | None: ...

    @property
    def sip_sockets(self) -> SipSockets | None: ...

    @property
    def faults(self) -> frozenset[str]: ...

    @property
    def host(self) -> str: ...

    @property
    def clock_speed(self) -> float: ...


def create_service(central: CentralParts, settings: SipSettings | None = None) -> tuple[SipService, SipCallEngine]:
    """The hook ``server.Central`` calls: the SIP side on the central's sockets, and the CallEngine that
    rings real devices (the central puts it in place of its own). Tests pass ``settings`` (short nonce
    lifetime...) through ``functools.partial(create_service, settings=...)``."""
    assert central.store is not None
    ctx: ssl.SSLContext | None = None
    if central.tls is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(central.tls.cert_file, central.tls.key_file)
    host = central.host if central.host not in ("0.0.0.0", "", "::") else "127.0.0.1"
    side = SipService(
        central.store,
        host=host,
        sockets=central.sip_sockets,
        ssl_context=ctx,
        faults=central.faults,
        clock_speed=central.clock_speed,
        settings=settings,
    )
    engine = SipCallEngine(central.store, side.c2c, clock_speed=central.clock_speed, faults=central.faults)
    return side, engine
