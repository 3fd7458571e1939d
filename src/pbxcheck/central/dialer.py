"""The dialer simulation: contacts inserted through the API progress on their own.

    AGUARDANDO --(FRESH_WAIT)--> Dialing --(RING)--> CONCLUIDO                 (answered on this try)
                                                  \\-> Descartado --(RETRY)--> Dialing ...  (not answered)
                                                  \\-> EXCEDIDO                (5th try not answered)

The outcome is a deterministic function of the contact's number (``numero``, i.e. ``tel1``), so a
check can steer it by the **last digit**:

    0 1 2 3   answered on try 1  -> CONCLUIDO, tentativas 1
    4 5 6 7   answered on try 2, 3, 4, 5 -> CONCLUIDO, tentativas 2..5
    8 9, none never answered    -> EXCEDIDO, tentativas 5

A CONCLUIDO contact gets an answered call record (statusdetalhado) whose talk time is
``11 + (last two digits % 50)`` seconds, with a recording of that length. The talk is recorded,
not waited for, so at clock speed 1 a contact settles 2.6 s to 6.6 s after its insert.

Durations are simulated seconds divided by ``clock_speed``. Each campaign has CHANNELS lines, as a
real dialer has trunks: a campaign of 100,000 fresh contacts is worked through at that pace rather
than all at once. Contacts loaded by the seed carry no schedule and stay as seeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..contract import MAX_TRIES, ContactStatus, StatusChamada, TipoChamada
from . import records
from .store import DueContact, Store, datahora

FRESH_WAIT = 2.0
RING = 0.6
RETRY = 0.4
CHANNELS = 30
TICK = 0.05

log = logging.getLogger("pbxcheck.central.dialer")


def answered_on_try(numero: str) -> int | None:
    """The try (1..5) on which the contact answers, or None: it never does."""
    digits = [c for c in numero if c.isdigit()]
    if not digits:
        return None
    last = int(digits[-1])
    if last <= 3:
        return 1
    if last <= 7:
        return last - 2
    return None


def talk_seconds(numero: str) -> int:
    digits = "".join(c for c in numero if c.isdigit())
    return 11 + (int(digits[-2:]) % 50 if digits else 0)


class Dialer:
    def __init__(self, store: Store, *, clock_speed: float = 1.0, faults: frozenset[str] = frozenset()) -> None:
        self.store = store
        self.speed = clock_speed
        self.faults = faults
        self._wake = asyncio.Event()

    def real(self, simulated: float) -> float:
        return simulated / self.speed

    def fresh(self, now: float) -> tuple[dict[str, str], float]:
        """Columns and schedule of a contact just inserted."""
        if "fresh-not-aguardando" in self.faults:
            return (
                {
                    "status": ContactStatus.DIALING.value,
                    "tentativas": "1",
                    "inicialing": time.strftime("%H:%M:%S", time.localtime(now)),
                },
                now + self.real(RING),
            )
        return {"status": ContactStatus.AGUARDANDO.value, "tentativas": "0"}, now + self.real(FRESH_WAIT)

    def poke(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                self.tick(time.time())
            except Exception:  # a dialer hiccup must not take the API down; the next tick retries
                log.exception("dialer tick failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK)
            self._wake.clear()

    def tick(self, now: float) -> int:
        """Move every contact whose time has come; returns how many moved."""
        moved = 0
        with self.store.tx():
            for c in self.store.due_dialing(now, 1000):
                self._finish(c, now)
                moved += 1
            busy = self.store.dialing_counts()
            for camp in self.store.campaigns():
                free = CHANNELS - busy.get(camp.id, 0)
                if free > 0:
                    for c in self.store.due_waiting(camp.id, now, free):
                        self._start(c, now)
                        moved += 1
        return moved

    def _start(self, c: DueContact, now: float) -> None:
        self.store.update_contact(
            c.id,
            {
                "status": ContactStatus.DIALING.value,
                "tentativas": str(c.tentativas + 1),
                "inicialing": time.strftime("%H:%M:%S", time.localtime(now)),
            },
            now + self.real(RING),
        )

    def _finish(self, c: DueContact, now: float) -> None:
        numero = c.numero or ""
        if answered_on_try(numero) == c.tentativas:
            self._conclude(c, now)
        elif c.tentativas >= MAX_TRIES:
            self.store.update_contact(
                c.id, {"status": ContactStatus.EXCEDIDO.value, "status_ligacao": StatusChamada.NOANSWER.value}, None
            )
        else:
            self.store.update_contact(
                c.id,
                {"status": ContactStatus.DESCARTADO.value, "status_ligacao": StatusChamada.NOANSWER.value},
                now + self.real(RETRY),
            )

    def _conclude(self, c: DueContact, now: float) -> None:
        cols = self.store.contact(c.id) or {}
        talk = talk_seconds(c.numero or "")
        rec = records.call_record(
            self.store,
            ts=now,
            numero=(cols.get("ddd", "") + cols.get("numero", "")),
            ramal="2001",
            duracao=talk,
            tipo=TipoChamada.DISCADOR,
            nomeoperador="DANIELE",
            campanha=c.campanha_id,
            id_mailing=str(c.id),
            cliente=cols.get("cliente", ""),
            dialed_time=str(c.tentativas),
        )
        self.store.add_call(rec, now)
        self.store.update_contact(
            c.id,
            {
                "status": ContactStatus.CONCLUIDO.value,
                "status_ligacao": StatusChamada.ANSWER.value,
                "datendimento": datahora(now),
            },
            None,
        )
