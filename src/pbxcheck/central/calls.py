"""The seam between the HTTP API and whatever places calls.

Without SIP, :class:`CallEngine` simulates a click-to-call: the origin "rings" for RING seconds,
then talks to ``destino`` for TALK seconds (clock seconds), during which statusramais shows the
channel; at hang-up a call record carrying the click-to-call ID (``id_clicktocall``) and a
recording is written. The SIP side replaces or extends this class (subclass it, or hand the server
a factory) to ring the registered device for real and report live channels and registrations.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from ..contract import DIRECAO_SAIDA, SideHangup, TipoChamada
from . import records
from .store import Store

RING = 1.0
TALK = 3.0


class CallRefused(Exception):
    """The call cannot be placed; the message is the Status string to answer."""


@dataclass
class Channel:
    """One leg as statusramais shows it (RAM-1/RAM-2)."""

    ramal: str
    direcao: str
    callerid: str
    extension: str
    started: float
    gravacao: str = ""
    idchamada: str = ""
    up: bool = False
    json: tuple[str, str, str] = field(default=("", "", ""))


class CallEngine:
    def __init__(self, store: Store, *, clock_speed: float = 1.0, faults: frozenset[str] = frozenset()) -> None:
        self.store = store
        self.speed = clock_speed
        self.faults = faults
        self._channels: dict[str, Channel] = {}
        self._timers: set[asyncio.TimerHandle] = set()

    # --- the interface the API uses -----------------------------------------------------------

    def click_to_call(self, origem: str, destino: str) -> str:
        """Start a call from extension ``origem`` to ``destino``; the ID to answer (C2C-1)."""
        now = time.time()
        stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(now))
        digits = f"{random.randrange(10**6):06d}"
        call_id = f"{origem}_{digits}" if "c2c-bad-id" in self.faults else f"{origem}_{stamp}_{digits}"
        self._simulate(origem, destino, call_id, now)
        return call_id

    def live_channels(self) -> list[Channel]:
        return list(self._channels.values())

    def is_registered(self, number: str) -> bool:
        """Whether a SIP device is registered for ``number``; none can be without the SIP side."""
        return False

    def close(self) -> None:
        for t in self._timers:
            t.cancel()
        self._timers.clear()

    # --- the simulation -----------------------------------------------------------------------

    def _later(self, delay: float, fn: object, *args: object) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            fn(*args)  # type: ignore[operator]

        handle = loop.call_later(delay / self.speed, fire)
        self._timers.add(handle)

    def _simulate(self, origem: str, destino: str, call_id: str, now: float) -> None:
        uniqueid = records.next_uniqueid(self.store, now)
        chan = Channel(
            ramal=origem,
            direcao=DIRECAO_SAIDA,
            callerid=destino,
            extension=destino,
            started=now,
            idchamada=uniqueid,
            gravacao=records.gravacao_name(now, origem, "S", destino, uniqueid),
        )
        self._channels[origem] = chan
        self._later(RING, self._answer, chan)
        self._later(RING + TALK, self._hangup, chan, call_id)

    def _answer(self, chan: Channel) -> None:
        chan.up = True
        chan.started = time.time()

    def _hangup(self, chan: Channel, call_id: str) -> None:
        if self._channels.get(chan.ramal) is chan:
            del self._channels[chan.ramal]
        if "c2c-no-record" in self.faults:
            return
        now = time.time()
        with self.store.tx():
            rec = records.call_record(
                self.store,
                ts=now,
                numero=chan.callerid,
                ramal=chan.ramal,
                duracao=round(TALK),
                tipo=TipoChamada.CLICKTOCALL,
                grupo=chan.ramal,
                sidehangup=SideHangup.ORIGEM,
                clicktocall_id=call_id,
                uniqueid=chan.idchamada,
                gravacao=chan.gravacao,
            )
            self.store.add_call(rec, now)


def refuse_reason(store: Store, origem: str) -> str | None:
    """The Status string for an origin that cannot call, or None."""
    from ..contract import RAMAL_BLOQUEADO, RAMAL_INVALIDO

    if store.extension(origem) is None:
        return RAMAL_INVALIDO
    if store.is_extension_blocked(origem):
        return RAMAL_BLOQUEADO
    return None
