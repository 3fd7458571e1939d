"""Calls through the reference central (SIP-INV-1/2, RAM-2/3): the B2BUA, its legs, in-dialog
requests, hang-up and the call record.

An INVITE from a device: admission (401 first); the authenticated INVITE gets ``100 Trying``,
``183 Session Progress`` with SDP, then ``200 OK`` with SDP; ACK; BYE gets 200. To another extension
the central is a B2BUA: it INVITEs the callee's binding (401-free, from the central), relays ringing
as 183 and the callee's answer as 200, ACKs it, and ties the two dialogs (a BYE on either side is
answered and sent on to the other). Unregistered extension: 480. Any other number: a simulated far
end answers after ``far_end_answer_delay`` clock seconds.

statusramais: each live call gives one channel per extension involved: caller ``SAIDA``, callee
``ENTRADA``; ``Callerid`` the other party; ``Extension`` the dialled number; the same ``IDCHAMADA``
(``<epoch>.<seq>``) and ``GRAVACAO`` on both; ``Up`` once answered. JSON1..3 are call variables
(``media.py``: DTMF INFO appends to JSON1, ``X-JSON<n>`` headers set them). Every call writes a call
record and its recording at hang-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pbxcheck.contract import DIRECAO_ENTRADA, DIRECAO_SAIDA, SideHangup, StatusChamada, TipoChamada
from pbxcheck.sip.dialog import Dialog, DialogState, new_tag
from pbxcheck.sip.drivers.base import Flow
from pbxcheck.sip.errors import SipParseError, TransactionError
from pbxcheck.sip.headers import NameAddr, SipUri
from pbxcheck.sip.message import Request
from pbxcheck.sip.transaction import make_cancel

from .. import records
from ..calls import Channel
from ..store import Store
from .admission import Admission
from .base import ALLOW, SERVER, Dialogs, SipSettings
from .media import Media, dtmf_digit, json_headers
from .registration import Registrar
from .transactions import ClientTransaction, SipTimeout, new_call_id

CallKind = Literal["ext", "external", "c2c"]  # extension to extension, to the far end, click-to-call
_TIPO: dict[CallKind, TipoChamada] = {
    "c2c": TipoChamada.CLICKTOCALL,
    "ext": TipoChamada.RAMAL,
    "external": TipoChamada.SAIDA,
}


@dataclass(eq=False)
class Leg:
    """One call leg between the central and a device: its dialog (``sip.dialog.Dialog``: Call-ID,
    tags, CSeq, remote target, route set, state) and the call's bookkeeping on that side."""

    ext: str  # the extension on that side
    dialog: Dialog
    flow: Flow | None
    uas: bool  # True: the device sent the INVITE; False: we did
    invite: Request | None = None  # their INVITE (uas) or ours (uac)
    tx: ClientTransaction | None = None
    sdp: bytes = b""  # what we sent on this leg

    @property
    def call_id(self) -> str:
        return self.dialog.call_id

    @property
    def answered(self) -> bool:
        """A 2xx exchanged (and the dialog not over since)."""
        return self.dialog.state is DialogState.CONFIRMED

    def request(
        self,
        via: str,
        method: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """The dialog's next request (ACK: the one for our INVITE's 2xx), its CSeq counted."""
        self.dialog, req = self.dialog.make_request_in_dialog(
            method, via=via, headers=headers or (), body=body, content_type=content_type
        )
        return req


@dataclass(eq=False)
class LiveCall:
    idchamada: str
    gravacao: str
    caller: str  # extension (or destino for click-to-call ringing its origin)
    callee: str  # dialled number
    kind: CallKind
    started: float
    a: Leg | None = None  # the device that started it (c2c: the origin extension, called by us)
    b: Leg | None = None  # the callee device (kind "ext")
    c2c_id: str | None = None
    channels: list[Channel] = field(default_factory=list)
    json: list[str] = field(default_factory=lambda: ["", "", ""])
    answered_at: float | None = None
    ended: bool = False
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    hangup_side: SideHangup = SideHangup.ORIGEM

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


class B2bua:
    """Live calls, keyed by the Call-ID of each of their legs."""

    def __init__(
        self,
        store: Store,
        registrar: Registrar,
        admission: Admission,
        media: Media,
        dialogs: Dialogs,
        settings: SipSettings,
        *,
        host: str = "127.0.0.1",
        faults: frozenset[str] = frozenset(),
        clock_speed: float = 1.0,
    ) -> None:
        self.store = store
        self.registrar = registrar
        self.admission = admission
        self.media = media
        self.dialogs = dialogs
        self.settings = settings
        self.host = host
        self.faults = faults
        self.speed = clock_speed
        self.calls: dict[str, tuple[LiveCall, Leg]] = {}  # Call-ID of a leg -> (call, leg)
        self.live: list[LiveCall] = []
        self._seq = 0  # last call sequence number handed out (IDCHAMADA)

    # --- bookkeeping --------------------------------------------------------------------------------

    def timer(self, call: LiveCall, delay: float, fn: Callable[..., object], *args: Any) -> None:
        """A timer that dies with ``call``."""
        call.timers.append(self.dialogs.later(delay, fn, *args))

    def new_call(self, caller: str, callee: str, kind: CallKind, *, c2c_id: str | None = None) -> LiveCall:
        now = time.time()
        # <epoch>.<seq> like Asterisk's uniqueid; the store's next sequence number, but never one a call
        # still in progress holds (its record is written only at hang-up)
        self._seq = max(self.store.next_call_seq(), self._seq + 1)
        uniqueid = f"{int(now)}.{self._seq}"
        ramal = caller if kind != "c2c" else callee
        gravacao = records.gravacao_name(now, ramal, "S", callee if kind != "c2c" else caller, uniqueid)
        call = LiveCall(uniqueid, gravacao, caller, callee, kind, now, c2c_id=c2c_id)
        self.live.append(call)
        self.timer(call, self.settings.max_call, self.hangup_both, call, "max call duration")
        return call

    def add_leg(self, call: LiveCall, leg: Leg, *, a: bool) -> None:
        if a:
            call.a = leg
        else:
            call.b = leg
        self.calls[leg.call_id] = (call, leg)

    def uac_leg(self, ext: str, from_user: str, target_contact: str, flow: Flow) -> Leg:
        """A leg the central places: to ``ext``'s device, From ``from_user`` (its INVITE has CSeq 1)."""
        dialog = Dialog.outgoing(
            call_id=new_call_id(),
            local_tag=new_tag(),
            local_uri=NameAddr(from_user, SipUri("sip", from_user, None, self.host)),
            remote_uri=NameAddr(None, SipUri("sip", ext, None, self.host)),
            remote_target=target_contact,
            local_contact=self.dialogs.contact(flow, from_user),
        )
        return Leg(ext, dialog, flow, False)

    def channel(self, call: LiveCall, ramal: str, direcao: str, callerid: str) -> Channel:
        ch = Channel(
            ramal=ramal,
            direcao=direcao,
            callerid=callerid,
            extension=call.callee,
            started=time.time(),
            gravacao=call.gravacao,
            idchamada=call.idchamada,
        )
        call.channels.append(ch)
        return ch

    def live_channels(self) -> list[Channel]:
        if "ramais-no-sip" in self.faults:
            return []
        return [ch for call in self.live for ch in call.channels]

    def finish(self, call: LiveCall, *, record: bool = True) -> None:
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
                leg.dialog = leg.dialog.terminate()
                self.calls.pop(leg.call_id, None)
        if not record or (call.c2c_id and "c2c-no-record" in self.faults):
            return
        now = time.time()
        answered = call.answered_at is not None
        talk = max(1, round(now - call.answered_at)) if call.answered_at else 0
        ramal = call.callee if call.kind == "c2c" else call.caller
        numero = call.caller if call.kind == "c2c" else call.callee
        with self.store.tx():
            rec = records.call_record(
                self.store,
                ts=now,
                numero=numero,
                ramal=ramal,
                duracao=talk,
                tipo=_TIPO[call.kind],
                statuschamada=StatusChamada.ANSWER if answered else StatusChamada.NOANSWER,
                grupo=ramal,
                sidehangup=call.hangup_side,
                clicktocall_id=call.c2c_id,
                uniqueid=call.idchamada,
                gravacao=call.gravacao if answered else "",
            )
            self.store.add_call(rec, now)

    def stop(self) -> None:
        for call in list(self.live):
            self.finish(call, record=False)

    # --- INVITE from a device -------------------------------------------------------------------------

    def on_invite(self, req: Request, flow: Flow) -> None:
        if req.to.tag is not None:
            self.in_dialog(req, flow)  # a re-INVITE
            return
        from_uri = req.from_.uri
        caller = self.admission.admit(req, flow, from_uri.user if isinstance(from_uri, SipUri) else None)
        if caller is None:
            return
        respond = self.dialogs.respond
        try:
            number = req.sip_uri.user
        except SipParseError:
            number = None
        if not number:
            respond(req, flow, 404)
            return
        offer = req.body if req.content_type == "application/sdp" and req.body else b""
        answer = self.media.answer(offer, flow.local[0]) if offer else self.media.offer(flow.local[0])
        if answer is None:
            respond(req, flow, 488)
            return
        callee_row = self.store.extension(number)
        if callee_row is not None and self.registrar.route(number) is None:
            respond(req, flow, 480, "Temporarily Unavailable (not registered)")
            return
        kind: CallKind = "ext" if callee_row is not None else "external"
        call = self.new_call(caller, number, kind)
        dialog = Dialog.incoming(req, new_tag(), local_contact=self.dialogs.contact(flow, number))
        leg = Leg(caller, dialog, flow, True, invite=req, sdp=answer)
        self.add_leg(call, leg, a=True)
        self._read_json_headers(call, req)
        self.channel(call, caller, DIRECAO_SAIDA, number)
        respond(req, flow, 100, to_tag=None)
        if kind == "external":
            if "invite-no-183" not in self.faults:
                self.timer(call, self.settings.far_end_progress_delay * self.speed, self._progress, call)
            self.timer(call, self.settings.far_end_answer_delay, self._answer_a, call)
        else:
            self.channel(call, number, DIRECAO_ENTRADA, caller)
            if "invite-no-183" not in self.faults:
                self._progress(call)
            self.dialogs.spawn(self._bridge_to_callee(call, number))

    def _uas_response(self, leg: Leg, status: int, body: bytes = b"", reason: str | None = None) -> None:
        assert leg.invite is not None and leg.flow is not None
        d = leg.dialog
        self.dialogs.respond(
            leg.invite,
            leg.flow,
            status,
            reason,
            to_tag=d.local_tag,
            headers=[("Contact", d.local_contact or self.dialogs.contact(leg.flow)), ("Allow", ALLOW)],
            body=body,
        )
        if 200 <= status < 300:
            leg.dialog = d.confirm()
        elif status >= 300:
            leg.dialog = d.terminate()

    def _progress(self, call: LiveCall) -> None:
        leg = call.a
        if call.ended or leg is None or not leg.uas or leg.answered:
            return
        self._uas_response(leg, 183, leg.sdp)

    def _answer_a(self, call: LiveCall) -> None:
        leg = call.a
        if call.ended or leg is None or leg.answered:
            return
        self._uas_response(leg, 200, leg.sdp)
        call.mark_up()

    def _fail_a(self, call: LiveCall, status: int, reason: str | None = None) -> None:
        leg = call.a
        if leg is not None and leg.uas and not leg.answered and not call.ended:
            self._uas_response(leg, status, reason=reason)
        call.hangup_side = SideHangup.DESTINO
        self.finish(call)

    async def _bridge_to_callee(self, call: LiveCall, number: str) -> None:
        """B2BUA: INVITE the callee's device, relay its answer to the caller."""
        target = self.registrar.route(number)
        if target is None:
            self._fail_a(call, 480)
            return
        leg = self.uac_leg(number, call.caller, target.contact, target.flow)
        self.add_leg(call, leg, a=False)
        ok = await self.place(call, leg, self.media.offer(target.flow.local[0]), [("X-Call-Id", call.idchamada)])
        if call.ended:
            return
        if not ok:
            status = (
                leg.tx.final.result().status
                if leg.tx and leg.tx.final.done() and not leg.tx.final.cancelled() and leg.tx.final.exception() is None
                else 480
            )
            self._fail_a(call, status if 400 <= status < 700 else 480)
            return
        self._answer_a(call)

    async def place(self, call: LiveCall, leg: Leg, offer: bytes, headers: list[tuple[str, str]]) -> bool:
        """Send our INVITE on ``leg`` and wait for the answer (ring timeout); ACK a 2xx. True: answered."""
        assert leg.flow is not None
        d = self.dialogs
        inv = leg.request(
            d.via(leg.flow),
            "INVITE",
            headers=[("Allow", ALLOW), ("User-Agent", SERVER), *headers],
            body=offer,
            content_type="application/sdp",
        )
        leg.invite = inv
        leg.sdp = offer
        leg.tx = d.request(inv, leg.flow)
        try:
            resp = await leg.tx.wait(self.settings.ring_timeout / self.speed)
        except SipTimeout:
            await self._cancel_leg(leg)
            return False
        except asyncio.CancelledError:
            return False
        leg.dialog = leg.dialog.on_response(resp)  # 2xx: confirmed (tag, target, route set); else terminated
        if resp.status >= 300 or call.ended:
            if call.ended and resp.status < 300:
                self._ack_and_bye(leg)
            return False
        d.send_ack(leg.request(d.via(leg.flow), "ACK"), leg.flow)
        return True

    def _ack_and_bye(self, leg: Leg) -> None:
        assert leg.flow is not None
        self.dialogs.send_ack(leg.request(self.dialogs.via(leg.flow), "ACK"), leg.flow)
        self._bye(leg)

    async def _cancel_leg(self, leg: Leg) -> None:
        tx = leg.tx
        if tx is None or leg.flow is None or tx.final.done():
            return
        try:
            await self.dialogs.request(make_cancel(tx.request), leg.flow).wait(2.0)
        except (SipTimeout, asyncio.CancelledError):
            pass

    def _bye(self, leg: Leg) -> None:
        if leg.flow is None or leg.flow.closed:
            return
        tx = self.dialogs.request(leg.request(self.dialogs.via(leg.flow), "BYE"), leg.flow)
        leg.dialog = leg.dialog.terminate()
        tx.final.add_done_callback(lambda f: f.cancelled() or f.exception())  # outcome not needed

    def _end_leg(self, leg: Leg, uas_status: int) -> None:
        """Hang up one leg whatever its state: BYE, a final answer to its INVITE, or CANCEL."""
        if leg.answered:
            self._bye(leg)
        elif leg.uas:
            self._uas_response(leg, uas_status)
        else:
            self.dialogs.spawn(self._cancel_leg(leg))

    def hangup_both(self, call: LiveCall, why: str = "") -> None:
        for leg in (call.a, call.b):
            if leg is not None and leg.flow is not None:
                self._end_leg(leg, 487 if why == "cancel" else 480)
        self.finish(call)

    # --- in-dialog requests ---------------------------------------------------------------------------

    def in_dialog(self, req: Request, flow: Flow) -> None:
        found = self.calls.get(req.call_id)
        m = req.method
        respond = self.dialogs.respond
        if found is None:
            if m != "ACK":
                respond(req, flow, 481)
            return
        call, leg = found
        if m == "ACK":
            return  # the 2xx retransmissions stop in the endpoint
        try:
            leg.dialog = leg.dialog.on_request(req)  # 12.2.2: CSeq order, target refresh
        except TransactionError:
            respond(req, flow, 500, "CSeq Out of Order", to_tag=None)
            return
        if m == "CANCEL":
            respond(req, flow, 200)
            if leg.uas and not leg.answered and leg.invite is not None and req.branch == leg.invite.branch:
                call.hangup_side = SideHangup.ORIGEM
                self.hangup_both(call, "cancel")
            return
        if m == "BYE":
            if "bye-not-answered" not in self.faults:  # the fault loses the 200; the call still ends
                respond(req, flow, 200)
            call.hangup_side = SideHangup.ORIGEM if leg is call.a else SideHangup.DESTINO
            other = call.b if leg is call.a else call.a
            if other is not None and other.flow is not None:
                self._end_leg(other, 480)
            self.finish(call)
            return
        if m == "INFO":
            self._read_json_headers(call, req)
            digit = dtmf_digit(req)
            if digit is not None:
                call.set_json(0, call.json[0] + digit)
            respond(req, flow, 200)
            return
        if m == "INVITE":  # re-INVITE: keep the session as it is
            respond(
                req,
                flow,
                200,
                to_tag=leg.dialog.local_tag,
                body=leg.sdp,
                headers=[("Contact", self.dialogs.contact(flow))],
            )

    @staticmethod
    def _read_json_headers(call: LiveCall, req: Request) -> None:
        for i, v in json_headers(req):
            call.set_json(i, v)
