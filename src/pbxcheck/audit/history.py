"""Enough history for CL-REP-1 on both report acoes.

The seed gives statusreport more than 500 records today (620 calls), but statusoperacoes only a few
dozen events: the audit central adds operator events today so that reading either from today
00:00 (or an empty datainicial) answers exactly 500 records, the cap a client must page past.
"""

from __future__ import annotations

import time
from datetime import datetime

from .. import contract as C
from ..central.store import Store

EXTRA_EVENTS = 600


def add_operator_events(store: Store, now: float | None = None) -> None:
    """EXTRA_EVENTS pauses spread from today 00:00:00 to ``now`` (call on the central's loop thread)."""
    now = time.time() if now is None else now
    start = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    with store.tx():
        for i in range(EXTRA_EVENTS):
            ts = start + (now - start) * (i + 0.5) / EXTRA_EVENTS
            store.add_event(
                {
                    "datahora": time.strftime(C.DATE_FORMAT, time.localtime(ts)),
                    "operador": "AUDITORIA",
                    "ramal": "2001",
                    "evento": "PAUSA",
                    "pausa": "TREINAMENTO",
                    "duracao": "60",
                },
                ts,
            )
