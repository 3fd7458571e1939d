"""A SIP user agent on the sans-IO core: what a desk phone does, scripted.

``UserAgent`` registers (401/407 digest, qop=auth, nc counted per nonce, stale handled), refreshes,
unregisters (Expires 0), calls (INVITE with an SDP offer of G729/PCMU/PCMA/GSM + telephone-event;
a 401/407 is ACKed and the INVITE sent again with credentials; 100/180/183/200; ACK), answers an
incoming INVITE (180, or 183 with SDP, then 200 with the SDP answer after ``auto_answer`` seconds),
sends INFO (DTMF) and hangs up (BYE). Every message in or out lands in ``ua.log``
(``sip.ladder.MessageLog``): ``ua.log.ladder(call_id)`` draws the document's "Call flow".

Several agents may share one :class:`UaPort` (one local socket): that is how a test plays two devices
behind one NAT mapping (SIP-NAT-1). The port hands a new incoming request to the agent whose dialog
it belongs to, else to the agent whose user the Request-URI names, else to the agent that registered
last through the port (the one a NAT would now forward to).

The password lives only in ``UaConfig.password`` (``repr=False``) and in the digest computation; it
is never written into a message or the log.

Usage::

    async with UserAgent(ua_config_for(target, "2001")) as ua:  # pbxcheck.sip_target
        assert (await ua.register()).status == 200
        call = await ua.call("944511712")
        await call.hangup()
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from pbxcheck.errors import SipError
from pbxcheck.sip import digest, sdp
from pbxcheck.sip.dialog import Dialog, DialogState
from pbxcheck.sip.errors import SdpError, SipParseError, TransactionError
from pbxcheck.sip.headers import NameAddr, SipUri
from pbxcheck.sip.message import Request, Response, make_response
from pbxcheck.sip.register import make_register
from pbxcheck.sip.transaction import make_cancel
from pbxcheck.sip.validate import reject_unparseable

from .aio import ClientTransaction, SipEndpoint, SipTimeout
from .drivers.tcp import tcp_connect
from .drivers.udp import UdpEndpoint
from .drivers.ws import ws_connect
from .flow import Addr, Flow
from .ids import new_branch, new_call_id, new_cnonce, new_instance_host, new_tag
from .ladder import MessageLog

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY"
CODECS = (18, 0, 8, 3)  # G729, PCMU, PCMA, GSM: the document's set (SIP-INV-2)


class CallState(StrEnum):
    """A call as the agent's user sees it: its dialog's state (``Call.dialog.state``) and whether
    the 2xx was ACKed (a StrEnum: ``call.state == "confirmed"`` reads as before)."""

    CALLING = "calling"  # our INVITE is out, no response with a To tag yet
    EARLY = "early"  # ringing: a 1xx with a To tag (ours or theirs)
    ANSWERING = "answering"  # we sent 200 to their INVITE, no ACK yet
    CONFIRMED = "confirmed"  # answered and ACKed
    ENDED = "ended"


class CallFailed(SipError):
    """The INVITE got a final error response (or none)."""

    def __init__(self, status: int, reason: str, response: Response | None = None) -> None:
        self.status = status
        self.reason = reason
        self.response = response
        super().__init__(f"call failed: {status} {reason}")


@dataclass
class UaConfig:
    user: str
    password: str = field(repr=False)
    domain: str = "127.0.0.1"  # host of the AOR and of the REGISTER Request-URI
    server: Addr = ("127.0.0.1", 7048)  # where UDP/TCP requests go (the outbound proxy)
    transport: str = "UDP"  # UDP, TCP, WS, WSS
    ws_url: str | None = None
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    local_host: str = "127.0.0.1"
    local_port: int = 0
    display_name: str | None = None
    user_agent: str = "pbxcheck-ua"
    expires: int = 90  # the document's device asks for 90
    auto_answer: float | None = 0.2  # seconds from INVITE to 200; None: only Call.answer() answers
    early_media: bool = False  # answer an INVITE with 183+SDP instead of 180
    rtp_port: int = 0  # 0: an even port picked at random
    codecs: tuple[int, ...] = CODECS
    timeout: float = 5.0  # for non-INVITE transactions (REGISTER, BYE, INFO)
    auth_username: str | None = None  # defaults to ``user``
    unregister_on_close: bool = True  # like a phone switched off: a binding must not outlive its socket


@dataclass(frozen=True)
class RegisterResult:
    status: int
    reason: str
    response: Response
    expires: int | None  # what the registrar granted (Contact expires or Expires), when it said
    attempts: int  # requests sent (2 for the usual 401 + authenticated REGISTER)
    challenges: tuple[Response, ...] = ()

    @property
    def first(self) -> Response:
        """The answer to the first REGISTER: its challenge, or the response when none was answered."""
        return self.challenges[0] if self.challenges else self.response


class UaPort:
    """One local transport to the server (socket or connection), shared by one or more agents."""

    def __init__(self, transport: str, log: MessageLog) -> None:
        self.transport = transport
        self.log = log
        self.endpoint = SipEndpoint(on_request=self._on_request, on_parse_error=self._on_parse_error, log=log)
        self.flow: Flow | None = None
        self.udp: UdpEndpoint | None = None
        self.agents: list[UserAgent] = []
        self.last_registrant: UserAgent | None = None
        self.parse_errors = 0
        self.on_message: Callable[[Request, Flow], None] | None = None  # every request reaching the port (ACK too)

    @classmethod
    async def open(cls, config: UaConfig, log: MessageLog | None = None) -> UaPort:
        self = cls(config.transport.upper(), log or MessageLog())
        t = self.transport
        if t == "UDP":
            self.udp = await UdpEndpoint.open(config.local_host, config.local_port, self._receive)
            self.flow = self.udp.flow(config.server)
        elif t == "TCP":
            local = (config.local_host, config.local_port)
            self.flow = await tcp_connect(config.server, self._receive, local=local, timeout=config.timeout)
        elif t in ("WS", "WSS"):
            if not config.ws_url:
                raise SipError(f"transport {t} needs ws_url")
            self.flow = await ws_connect(
                config.ws_url, self._receive, ssl_context=config.ssl_context, timeout=config.timeout
            )
        else:
            raise SipError(f"unknown transport {t!r} (UDP, TCP, WS, WSS)")
        return self

    @property
    def local(self) -> Addr:
        assert self.flow is not None
        return self.flow.local

    def _receive(self, data: bytes, flow: Flow) -> None:
        self.endpoint.receive(data, flow)  # a subclass may read the bytes first (the probes' Channel)

    def _on_parse_error(self, data: bytes, flow: Flow, exc: SipParseError) -> None:
        self.parse_errors += 1
        answer = reject_unparseable(data, exc)
        if answer is not None and flow.transport == "UDP":
            self.endpoint.send_bytes(answer, flow)

    def _on_request(self, req: Request, flow: Flow) -> None:
        if self.on_message is not None:
            self.on_message(req, flow)
        agent = self._agent_for(req)
        if agent is None:
            self.endpoint.respond(req, flow, make_response(req, 404, to_tag=new_tag()))
            return
        agent._on_request(req, flow)

    def _agent_for(self, req: Request) -> UserAgent | None:
        for a in self.agents:
            if req.call_id in a.calls:
                return a
        try:
            user = req.sip_uri.user
        except SipParseError:
            user = None
        for a in self.agents:
            if user is not None and a.config.user == user:
                return a
        return self.last_registrant or (self.agents[0] if self.agents else None)

    async def close(self) -> None:
        self.endpoint.close()
        if self.udp is not None:
            self.udp.close()
        elif self.flow is not None:
            try:
                await asyncio.wait_for(self.flow.aclose(), 2.0)
            except (TimeoutError, OSError):
                self.flow.close()


@dataclass
class _AuthState:
    header: str  # "Authorization" or "Proxy-Authorization"
    challenge: digest.Challenge
    nc: int = 0


class UserAgent:
    def __init__(self, config: UaConfig, port: UaPort | None = None) -> None:
        self.config = config
        self.port = port
        self._own_port = port is None
        self.calls: dict[str, Call] = {}
        self.incoming: asyncio.Queue[Call] = asyncio.Queue()
        self._auth: dict[str, _AuthState] = {}  # realm -> last challenge and nonce count
        self._reg_call_id = new_call_id()
        self._reg_tag = new_tag()
        self._cseq = secrets.randbelow(10_000) + 1
        self._instance_host = new_instance_host()  # RFC 7118 §5: WS clients' Via/Contact host
        self.registered_until: float | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> UserAgent:
        if self.port is None:
            self.port = await UaPort.open(self.config)
        self.port.agents.append(self)
        return self

    async def close(self) -> None:
        for call in list(self.calls.values()):
            if call.state is CallState.CONFIRMED:
                try:
                    await call.hangup(timeout=1.0)
                except (SipError, OSError):
                    pass
            call._end("closed")
        if (
            self.config.unregister_on_close
            and self.registered_until is not None
            and self.port is not None
            and self.port.flow is not None
            and not self.port.flow.closed
        ):
            saved = self.config.timeout
            self.config.timeout = 1.0
            try:
                await self.unregister()
            except (SipError, OSError):
                pass  # best effort: the registrar's Expires cleans up what we could not
            finally:
                self.config.timeout = saved
        if self.port is not None:
            if self in self.port.agents:
                self.port.agents.remove(self)
            if self._own_port:
                await self.port.close()

    async def __aenter__(self) -> UserAgent:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- addressing -------------------------------------------------------------------------------

    @property
    def endpoint(self) -> SipEndpoint:
        assert self.port is not None, "start() the agent first"
        return self.port.endpoint

    @property
    def flow(self) -> Flow:
        assert self.port is not None and self.port.flow is not None, "start() the agent first"
        return self.port.flow

    @property
    def log(self) -> MessageLog:
        assert self.port is not None, "start() the agent first"
        return self.port.log

    @property
    def aor(self) -> NameAddr:
        return NameAddr(self.config.display_name, SipUri("sip", self.config.user, None, self.config.domain))

    def _sent_by(self) -> str:
        if self.flow.transport in ("WS", "WSS"):
            return self._instance_host
        return f"{self.flow.local[0]}:{self.flow.local[1]}"

    def contact(self) -> NameAddr:
        t = self.flow.transport.lower()
        host, port = (self._instance_host, None) if t in ("ws", "wss") else self.flow.local
        uri = SipUri("sip", self.config.user, None, host, port, (("transport", t),))
        return NameAddr(None, uri)

    def via(self) -> str:
        return f"SIP/2.0/{self.flow.transport} {self._sent_by()};rport;branch={new_branch()}"

    def next_cseq(self) -> int:
        self._cseq += 1
        return self._cseq

    def _common_headers(self) -> list[tuple[str, str]]:
        return [("User-Agent", self.config.user_agent), ("Allow", ALLOW)]

    # --- digest -----------------------------------------------------------------------------------

    def _remember_challenge(self, resp: Response) -> bool:
        """Store the challenge of a 401/407; False when there is none usable."""
        name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        value = resp.headers.get(name)
        if value is None:
            return False
        try:
            ch = digest.Challenge.parse(value)
        except SipError:
            return False
        self._auth[ch.realm] = _AuthState("Authorization" if resp.status == 401 else "Proxy-Authorization", ch)
        return True

    def _credentials(self, method: str, uri: str) -> list[tuple[str, str]]:
        """Authorization headers for every realm we hold a challenge for, nc counted per nonce."""
        out = []
        for state in self._auth.values():
            state.nc += 1
            creds = digest.build_authorization(
                state.challenge,
                username=self.config.auth_username or self.config.user,
                password=self.config.password,
                method=method,
                uri=uri,
                nc=state.nc,
                cnonce=new_cnonce(),
            )
            out.append((state.header, str(creds)))
        return out

    # --- registration -----------------------------------------------------------------------------

    def _register_request(self, expires: int, *, star: bool = False) -> Request:
        uri = f"sip:{self.config.domain}"
        return make_register(
            self.config.domain,
            self.config.user,
            sent_by=self._sent_by(),
            transport=self.flow.transport,
            call_id=self._reg_call_id,
            cseq=self.next_cseq(),
            from_tag=self._reg_tag,
            expires=expires,
            contact="*" if star else self.contact(),
            authorization=self._credentials("REGISTER", uri),
            aor=self.aor,
            headers=[("Allow", ALLOW)],
            user_agent=self.config.user_agent,
        )

    async def register(
        self, expires: int | None = None, *, star: bool = False, max_challenges: int = 2
    ) -> RegisterResult:
        """REGISTER (refresh, or with ``expires=0`` unregister); answers a 401/407 with credentials.

        A refresh sends the credentials of the last challenge right away with the next nc (what
        phones do), so a registrar that checks nc sees 1, 2, 3... on one nonce.
        """
        exp = self.config.expires if expires is None else expires
        challenges: list[Response] = []
        attempts = 0
        while True:
            req = self._register_request(exp, star=star)
            attempts += 1
            resp = await self.endpoint.request(req, self.flow).wait(self.config.timeout)
            if resp.status in (401, 407) and len(challenges) < max_challenges and self._remember_challenge(resp):
                challenges.append(resp)
                continue
            break
        granted: int | None = None
        if resp.status == 200:
            granted = self._granted_expires(resp)
            lifetime = exp if granted is None else granted  # a registrar that says nothing granted what we asked
            self.registered_until = time.monotonic() + lifetime if lifetime else None
            if self.port is not None and exp > 0:
                self.port.last_registrant = self
        return RegisterResult(resp.status, resp.reason, resp, granted, attempts, tuple(challenges))

    def _granted_expires(self, resp: Response) -> int | None:
        """Our Contact's ``expires``, else the Expires header; None when the registrar says neither."""
        mine = self.contact().uri
        try:
            for c in resp.contacts:
                if (
                    isinstance(c.uri, SipUri)
                    and c.uri.user == self.config.user
                    and (c.uri.host == getattr(mine, "host", None))
                ):
                    v = c.param("expires")
                    if v is not None and v.isdigit():
                        return int(v)
        except SipParseError:
            pass
        return resp.expires

    async def unregister(self) -> RegisterResult:
        result = await self.register(0)
        self.registered_until = None
        return result

    # --- calls ------------------------------------------------------------------------------------

    def invite(
        self, number: str, *, headers: Iterable[tuple[str, str]] = (), ring_timeout: float = 30.0, with_sdp: bool = True
    ) -> Call:
        """Start a call to ``number`` (user part at our domain); returns at once. ``await
        call.wait_answered()`` for the 200, or watch ``call.statuses``."""
        dialog = Dialog.outgoing(
            call_id=new_call_id(),
            local_uri=self.aor,
            local_tag=new_tag(),
            remote_uri=NameAddr(None, SipUri("sip", number, None, self.config.domain)),
            local_seq=self.next_cseq(),
            local_contact=str(self.contact()),
        )
        call = Call(self, dialog, "out")
        call.rtp_port = self.config.rtp_port or 2 * (20_000 + secrets.randbelow(10_000))
        call.local_sdp = (
            sdp.make_offer(self.flow.local[0], call.rtp_port, codecs=self.config.codecs).to_bytes() if with_sdp else b""
        )
        self.calls[call.call_id] = call
        call.task = asyncio.get_running_loop().create_task(call._run_uac(list(headers), ring_timeout))
        return call

    async def call(self, number: str, *, timeout: float = 30.0, headers: Iterable[tuple[str, str]] = ()) -> Call:
        """Call ``number`` and wait until it is answered (CallFailed otherwise)."""
        call = self.invite(number, headers=headers, ring_timeout=timeout)
        await call.wait_answered(timeout + 1)
        return call

    def calls_in(self) -> list[Call]:
        """The calls we received, oldest first."""
        return [c for c in self.calls.values() if c.direction == "in"]

    async def next_incoming(self, timeout: float = 10.0) -> Call:
        try:
            return await asyncio.wait_for(self.incoming.get(), timeout)
        except TimeoutError:
            raise SipTimeout(f"no INVITE for {self.config.user} within {timeout} s") from None

    # --- requests from the network -----------------------------------------------------------------

    def _on_request(self, req: Request, flow: Flow) -> None:
        call = self.calls.get(req.call_id)
        m = req.method
        if m == "INVITE" and call is None:
            self._incoming_invite(req, flow)
        elif call is not None:
            call._on_request(req, flow)
        elif m == "ACK":
            return
        elif m in ("OPTIONS", "NOTIFY"):
            self.endpoint.respond(req, flow, make_response(req, 200, to_tag=new_tag(), headers=[("Allow", ALLOW)]))
        else:
            self.endpoint.respond(req, flow, make_response(req, 481, to_tag=new_tag()))

    def _incoming_invite(self, req: Request, flow: Flow) -> None:
        call = Call(self, Dialog.incoming(req, new_tag(), local_contact=str(self.contact())), "in")
        call.invite = req
        call.invite_flow = flow
        call.remote_sdp = req.body if req.content_type == "application/sdp" else b""
        call.rtp_port = self.config.rtp_port or 2 * (20_000 + secrets.randbelow(10_000))
        self.calls[call.call_id] = call
        if self.config.early_media and call.remote_sdp:
            call.local_sdp = self._answer_sdp(call)
            self.endpoint.respond(req, flow, call._response(183, body=call.local_sdp))
        else:
            self.endpoint.respond(req, flow, call._response(180))
        self.incoming.put_nowait(call)
        if self.config.auto_answer is not None:
            asyncio.get_running_loop().call_later(self.config.auto_answer, call._auto_answer)

    def _answer_sdp(self, call: Call) -> bytes:
        host = self.flow.local[0]
        if call.remote_sdp:
            try:
                offer = sdp.parse_sdp(call.remote_sdp)
                return sdp.make_answer(offer, self.config.codecs, ip=host, rtp_port=call.rtp_port).to_bytes()
            except SdpError:
                pass  # an offer we cannot answer: offer our own instead (the caller will 488 or cope)
        return sdp.make_offer(host, call.rtp_port, codecs=self.config.codecs).to_bytes()


class Call:
    """One call (INVITE usage) seen from our agent. Its dialog state (Call-ID, tags, CSeq numbers,
    remote target, route set, early/confirmed/terminated) is ``self.dialog``, a ``sip.dialog.Dialog``
    that builds every request we send in it; the rest is the call's media and bookkeeping."""

    def __init__(self, ua: UserAgent, dialog: Dialog, direction: Literal["in", "out"]) -> None:
        self.ua = ua
        self.dialog = dialog
        self.direction = direction  # "out": we called; "in": we were called
        self.invite: Request | None = None  # the INVITE we received (incoming calls)
        self.invite_flow: Flow | None = None
        self.invite_tx: ClientTransaction | None = None
        self.statuses: list[int] = []  # every response to our INVITE(s), in order
        self.responses: list[Response] = []  # every response to a request of this call (INVITE, BYE, INFO)
        self.final: Response | None = None
        self.local_sdp = b""
        self.remote_sdp = b""
        self.rtp_port = 0
        self.end_reason = ""
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.infos: list[Request] = []  # INFO requests received (DTMF)
        self.task: asyncio.Task[None] | None = None
        self.failure: CallFailed | None = None
        self.challenged = False  # our INVITE got a 401/407: send credentials from now on

    def __repr__(self) -> str:
        return f"<Call {self.direction} {self.call_id} {self.state}>"

    @property
    def call_id(self) -> str:
        return self.dialog.call_id

    @property
    def remote_uri(self) -> NameAddr:
        """The other party (their From on a call we received, the To we called), without tag."""
        return self.dialog.remote_uri

    @property
    def state(self) -> CallState:
        d = self.dialog.state
        if self.ended.is_set() or d is DialogState.TERMINATED:
            return CallState.ENDED
        if d is DialogState.INITIAL:
            return CallState.CALLING
        if d is DialogState.EARLY:
            return CallState.EARLY
        return CallState.CONFIRMED if self.answered.is_set() else CallState.ANSWERING

    def answers_to(self, method: str, nth: int = -1) -> list[Response]:
        """The responses to our ``nth`` ``method`` request in this call that got any (INVITE: 0 the
        first, challenged one; -1 the last, the one with credentials), in order; [] when none."""
        numbers = sorted({r.cseq.number for r in self.responses if r.cseq.method == method})
        if not -len(numbers) <= nth < len(numbers):
            return []
        return [r for r in self.responses if r.cseq == (numbers[nth], method)]

    # --- waiting ----------------------------------------------------------------------------------

    async def wait_answered(self, timeout: float = 30.0) -> None:
        waiter = asyncio.ensure_future(self.answered.wait())
        ender = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait({waiter, ender}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            ender.cancel()
        if self.answered.is_set():
            return
        if self.failure is not None:
            raise self.failure
        if self.ended.is_set():
            raise CallFailed(0, f"call ended: {self.end_reason}")
        raise SipTimeout(f"call {self.call_id} not answered within {timeout} s (statuses {self.statuses})")

    async def wait_ended(self, timeout: float = 30.0) -> None:
        try:
            await asyncio.wait_for(self.ended.wait(), timeout)
        except TimeoutError:
            raise SipTimeout(f"call {self.call_id} still up after {timeout} s") from None

    def _end(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.dialog = self.dialog.terminate()
        self.end_reason = reason
        self.ended_at = time.time()
        self.ended.set()

    # --- UAC: our INVITE --------------------------------------------------------------------------

    def _invite_request(self, extra: list[tuple[str, str]]) -> Request:
        ua = self.ua
        headers = [*ua._common_headers(), ("Supported", "replaces"), *extra]
        if self.challenged:
            # like the document's device: the first INVITE goes without credentials, the 401 is
            # ACKed, and the INVITE is sent again answering that challenge
            headers += ua._credentials("INVITE", self.dialog.remote_target)
        # the dialog-creating INVITE and each retry of it: same Call-ID and From tag, the next CSeq
        self.dialog, req = self.dialog.make_request_in_dialog(
            "INVITE",
            via=ua.via(),
            headers=headers,
            body=self.local_sdp,
            content_type="application/sdp" if self.local_sdp else None,
        )
        return req

    def _on_provisional(self, resp: Response) -> None:
        self.statuses.append(resp.status)
        self.responses.append(resp)
        self.dialog = self.dialog.on_response(resp)  # a 1xx with a To tag: early
        if resp.body and resp.content_type == "application/sdp":
            self.remote_sdp = resp.body

    async def _run_uac(self, extra: list[tuple[str, str]], ring_timeout: float) -> None:
        ua = self.ua
        challenges = 0
        try:
            while True:
                req = self._invite_request(extra)
                self.invite_tx = ua.endpoint.request(req, ua.flow, on_provisional=self._on_provisional)
                resp = await self.invite_tx.wait(ring_timeout)
                self.statuses.append(resp.status)
                self.responses.append(resp)
                if resp.status in (401, 407) and challenges < 2 and ua._remember_challenge(resp):
                    challenges += 1  # the endpoint already ACKed the challenge (same transaction)
                    self.challenged = True  # the retry is the dialog's next INVITE (next CSeq)
                    continue
                break
        except SipTimeout:
            if self.invite_tx is not None:
                await self._cancel_pending()
            self.failure = CallFailed(408, "no answer in time")
            self._end("timeout")
            return
        except asyncio.CancelledError:
            self._end("cancelled")
            raise
        self.final = resp
        self.dialog = self.dialog.on_response(resp)  # 2xx: confirmed (tag, target, route set); else over
        if resp.status >= 300:
            self.failure = CallFailed(resp.status, resp.reason, resp)
            self._end(f"{resp.status} {resp.reason}")
            return
        if resp.body and resp.content_type == "application/sdp":
            self.remote_sdp = resp.body
        ack = self._in_dialog("ACK")  # the INVITE's CSeq number (the dialog keeps it)
        ua.endpoint.send_ack(ack, ua.flow)
        self.answered_at = time.time()
        self.answered.set()

    async def _cancel_pending(self) -> None:
        tx = self.invite_tx
        if tx is None or self.state == "ended":
            return
        cancel = make_cancel(tx.request)
        try:
            await self.ua.endpoint.request(cancel, self.ua.flow).wait(2.0)
        except SipTimeout:
            pass
        self.ua.endpoint.forget(tx)

    # --- in-dialog requests -----------------------------------------------------------------------

    def _in_dialog(
        self,
        method: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """The dialog's next request (RFC 3261 §12.2.1.1: route set, remote target, CSeq; ACK reuses
        the INVITE's number)."""
        ua = self.ua
        self.dialog, req = self.dialog.make_request_in_dialog(
            method,
            via=ua.via(),
            headers=[("User-Agent", ua.config.user_agent), *headers],
            body=body,
            content_type=content_type,
        )
        return req

    async def hangup(self, timeout: float | None = None) -> int:
        """BYE (or CANCEL while ringing); the status of the answer."""
        if self.state == "ended":
            return 0
        if self.direction == "out" and self.state is not CallState.CONFIRMED:
            await self._cancel_pending()
            self._end("cancelled by us")
            return 487
        if self.direction == "in" and self.state is not CallState.CONFIRMED:
            await self.reject(603)
            return 603
        bye = self._in_dialog("BYE")
        try:
            resp = await self.ua.endpoint.request(bye, self.ua.flow).wait(timeout or self.ua.config.timeout)
            self.responses.append(resp)
        finally:
            self._end("local BYE")
        return resp.status

    async def info(
        self, body: bytes = b"", content_type: str | None = None, headers: Iterable[tuple[str, str]] = ()
    ) -> int:
        req = self._in_dialog("INFO", headers=headers, body=body, content_type=content_type)
        resp = await self.ua.endpoint.request(req, self.ua.flow).wait(self.ua.config.timeout)
        self.responses.append(resp)
        return resp.status

    async def send_dtmf(self, digits: str, duration_ms: int = 160) -> list[int]:
        """One SIP INFO per digit (application/dtmf-relay, the common phone behaviour)."""
        out = []
        for d in digits:
            body = f"Signal={d}\r\nDuration={duration_ms}\r\n".encode()
            out.append(await self.info(body, "application/dtmf-relay"))
        return out

    # --- UAS: an INVITE we received -----------------------------------------------------------------

    def _response(self, status: int, *, body: bytes = b"", reason: str | None = None) -> Response:
        assert self.invite is not None
        # RFC 3261 §12.1.1: a UAS copies Record-Route into every response that creates the dialog, so
        # the proxy (Kamailio with record_route()) stays on the path of the ACK and the BYE
        headers = [("Record-Route", rr) for rr in self.invite.headers.get_raw("Record-Route")] if status > 100 else []
        headers += [("Contact", str(self.ua.contact())), ("User-Agent", self.ua.config.user_agent), ("Allow", ALLOW)]
        return make_response(
            self.invite,
            status,
            reason,
            to_tag=self.dialog.local_tag,
            headers=headers,
            body=body,
            content_type="application/sdp" if body else None,
        )

    def _auto_answer(self) -> None:
        if self.state is CallState.EARLY:
            self.answer()

    def answer(self) -> None:
        """200 OK with the SDP answer; retransmitted on UDP until the ACK."""
        if self.invite is None or self.invite_flow is None or self.state is not CallState.EARLY:
            return
        self.local_sdp = self.local_sdp or self.ua._answer_sdp(self)
        self.ua.endpoint.respond(self.invite, self.invite_flow, self._response(200, body=self.local_sdp))
        self.dialog = self.dialog.confirm()  # answering until the ACK

    async def reject(self, status: int = 486) -> None:
        if self.invite is None or self.invite_flow is None or self.state not in (CallState.EARLY, CallState.ANSWERING):
            return
        self.ua.endpoint.respond(self.invite, self.invite_flow, self._response(status))
        self._end(f"rejected {status}")

    def _on_request(self, req: Request, flow: Flow) -> None:
        ep = self.ua.endpoint
        m = req.method
        if m == "ACK":
            if self.state in (CallState.ANSWERING, CallState.EARLY) and self.direction == "in":
                self.dialog = self.dialog.confirm()
                self.answered_at = time.time()
                self.answered.set()
            return
        try:
            self.dialog = self.dialog.on_request(req)  # §12.2.2: CSeq order, target refresh
        except TransactionError:
            ep.respond(req, flow, make_response(req, 500, "CSeq Out of Order"))
            return
        if m == "BYE":
            ep.respond(req, flow, make_response(req, 200))
            self._end("remote BYE")
            return
        if m == "CANCEL":
            ep.respond(req, flow, make_response(req, 200))
            if self.invite is not None and self.invite_flow is not None and self.state is CallState.EARLY:
                ep.respond(self.invite, self.invite_flow, self._response(487))
                self._end("remote CANCEL")
            return
        if m == "INFO":
            self.infos.append(req)
            ep.respond(req, flow, make_response(req, 200))
            return
        if m == "INVITE":  # a re-INVITE (session refresh): same session, same SDP
            ep.respond(
                req,
                flow,
                make_response(
                    req,
                    200,
                    headers=[("Contact", str(self.ua.contact()))],
                    body=self.local_sdp,
                    content_type="application/sdp" if self.local_sdp else None,
                ),
            )
            return
        ep.respond(req, flow, make_response(req, 200 if m in ("OPTIONS", "NOTIFY", "UPDATE") else 405))
