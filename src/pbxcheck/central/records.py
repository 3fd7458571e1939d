"""Call records (the statusdetalhado / statusreport shape), built the same way by the dialer, the
click-to-call simulation and the seed, so every record in the database has every DETAIL_FIELD."""

from __future__ import annotations

import time
from typing import Any

from ..contract import DETAIL_FIELDS, ID_CLICKTOCALL, SideHangup, StatusChamada, TipoChamada
from . import gsm
from .store import Store, datahora

NULL_FIELDS = frozenset({"tempofila", "abandonoramal", "abandonofila"})  # null in the document's example (AMB-8)


def next_uniqueid(store: Store, ts: float) -> str:
    """``<epoch>.<seq>`` like Asterisk's; seq from the call table so it is unique across restarts."""
    return f"{int(ts)}.{store.next_call_seq()}"


def gravacao_name(ts: float, grupo: str, direction: str, number: str, uniqueid: str) -> str:
    """``2021/01/10/972064460-S-2001-1610289043.371``: the shape statusramais shows."""
    day = time.strftime("%Y/%m/%d", time.localtime(ts))
    return f"{day}/{grupo}-{direction}-{number}-{uniqueid}"


def call_record(
    store: Store,
    *,
    ts: float,
    numero: str,
    ramal: str,
    duracao: int,
    tipo: TipoChamada,
    statuschamada: StatusChamada = StatusChamada.ANSWER,
    nomeoperador: str = "",
    campanha: str = "",
    id_mailing: str = "",
    cliente: str = "",
    grupo: str = "9991",
    conta: str = "0191",
    sidehangup: SideHangup = SideHangup.CLIENTE,
    direction: str = "S",
    clicktocall_id: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A full record (id assigned by Store.add_call). A recording exists only for answered calls."""
    uniqueid = next_uniqueid(store, ts)
    answered = statuschamada is StatusChamada.ANSWER
    rec: dict[str, Any] = {k: "" for k in DETAIL_FIELDS}
    rec.update(
        {
            "conta": conta,
            "nomeoperador": nomeoperador,
            "ramal": ramal,
            "tipo": tipo.value,
            "chamada": direction,
            "datahora": datahora(ts),
            "duracao": str(duracao),
            "numero": numero,
            "naoatendidas": "0" if answered else "1",
            "statuschamada": statuschamada.value,
            "grupo": grupo,
            "aguardouatendimento": "1",
            "uniqueid": uniqueid,
            "gravacao": gravacao_name(ts, grupo, direction, numero or ramal, uniqueid) if answered else "",
            "dialed_time": "1",
            "tempo_pausa": "0",
            "tempo_logado": "0",
            "sidehangup": sidehangup.value,
            "cliente": cliente,
            "campanha": campanha,
            "id_mailing": id_mailing,
            "tronco": conta,
            "codigo_conta": "--SEM CONTA",
            "tipo_chamada": "LOCAL",
            "log": "1",
            "tamanho_gravacao": str(gsm.size_for_seconds(duracao)) if answered else "0",
            "v5": "1",
            "enlace": "EXTERNA",
        }
    )
    for k in NULL_FIELDS:
        rec[k] = None
    if clicktocall_id:
        rec[ID_CLICKTOCALL] = clicktocall_id
    rec.update(overrides)
    return rec
