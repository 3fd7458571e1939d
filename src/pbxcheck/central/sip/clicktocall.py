"""Click-to-call with a phone on the line (C2C-2) and the HTTP side's call engine that uses it.

The central INVITEs the origin's binding (From: the destino number); once the phone answers, it ACKs
and completes the call to destino (the simulated far end, after ``far_end_answer_delay``). When the
phone hangs up, the call record (``id_clicktocall``) and its recording are written. An origin with
no registered device falls back to the HTTP side's simulation (``CallEngine``), so HTTP-only checks
still get their record.
"""

from __future__ import annotations

from pbxcheck.contract import DIRECAO_SAIDA, SideHangup

from ..calls import CallEngine, Channel
from ..store import Store
from .b2bua import B2bua, Leg, LiveCall
from .base import SipSettings
from .registration import Registrar


class ClickToCall:
    def __init__(self, b2bua: B2bua, registrar: Registrar, settings: SipSettings) -> None:
        self.b2bua = b2bua
        self.registrar = registrar
        self.settings = settings

    def can_ring(self, ext: str) -> bool:
        return self.registrar.route(ext) is not None

    def originate(self, origem: str, destino: str, c2c_id: str) -> None:
        """C2C-2: ring ``origem``'s device; once answered, connect it to ``destino`` (far end)."""
        target = self.registrar.route(origem)
        if target is None:
            return
        b = self.b2bua
        call = b.new_call(destino, origem, "c2c", c2c_id=c2c_id)
        leg = b.uac_leg(origem, destino, target.contact, target.flow)
        b.add_leg(call, leg, a=True)
        b.channel(call, origem, DIRECAO_SAIDA, destino).extension = destino
        b.dialogs.spawn(self._run(call, leg))

    async def _run(self, call: LiveCall, leg: Leg) -> None:
        assert leg.flow is not None
        b = self.b2bua
        ok = await b.place(call, leg, b.media.offer(leg.flow.local[0]), [("X-Clicktocall-Id", call.c2c_id or "")])
        if call.ended:
            return
        if not ok:
            call.hangup_side = SideHangup.ORIGEM
            b.finish(call)
            return
        # the origin picked up: complete the call to destino (the far end answers after a delay)
        b.timer(call, self.settings.far_end_answer_delay, call.mark_up)


class SipCallEngine(CallEngine):
    """The HTTP side's CallEngine with a phone on the line: click-to-call rings the registered device,
    statusramais shows live SIP calls, ``is_registered`` asks the registrar."""

    def __init__(
        self, store: Store, c2c: ClickToCall, *, clock_speed: float = 1.0, faults: frozenset[str] = frozenset()
    ) -> None:
        super().__init__(store, clock_speed=clock_speed, faults=faults)
        self.c2c = c2c

    def _simulate(self, origem: str, destino: str, call_id: str, now: float) -> None:
        if "c2c-no-ring" in self.faults or not self.c2c.can_ring(origem):
            super()._simulate(origem, destino, call_id, now)  # no device to ring: the HTTP-only model
            return
        self.c2c.originate(origem, destino, call_id)

    def live_channels(self) -> list[Channel]:
        return super().live_channels() + self.c2c.b2bua.live_channels()

    def is_registered(self, number: str) -> bool:
        return self.c2c.registrar.lookup(number) is not None
