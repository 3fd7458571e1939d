"""Seed data for a fresh database, from ``fixtures/seed/*.json``.

What a check can rely on (timestamps are relative to the moment of seeding):

* campaign **583** ``EP_TRAD_30.12`` (the document's): contacts in every status, among them the
  document's 1435743 (Descartado, tentativas 2) and 1435749 (CONCLUIDO, with the statusdetalhado
  record of the document's example: DANIELE, 335 s); every CONCLUIDO contact has an answered call
  record and a recording; EXCEDIDO ones have tentativas 5. Seeded contacts are a snapshot: the
  dialer moves only contacts inserted through the API.
* campaign **900** ``DESCARTAVEL``: the disposable campaign destructive checks may delete.
* extensions 2001, 2002, 5545, 6961 (the main central's), 7777 (ramal-web enabled), and the classe5
  client **teste** (the disposable one) with its own extensions 3001, 3002, so that blocking it never
  disturbs calls between 2001 and 2002; client ``acme`` with 4001 stays unblocked; 8101-8120, the
  phones of `pbxcheck load click-to-call` (no call history). Passwords random.
* call history: ``calls_today`` records spread from today 00:00:00 to now (more than 500, so the
  statusreport cap shows) and ``calls_per_previous_day`` on each of the previous days; operator
  login/pause/logout events on the same days (statusoperacoes).
"""

from __future__ import annotations

import json
import random
import secrets
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..contract import CONTACT_COLUMNS, DATE_FORMAT, SideHangup, StatusChamada, TipoChamada
from . import records
from .handlers import build_contact
from .store import Campaign, Store, datahora


def fixtures_dir() -> Path:
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "fixtures" / "seed", here.parents[1] / "_bundled" / "fixtures" / "seed"):
        if (candidate / "central.json").is_file():
            return candidate
    raise FileNotFoundError("fixtures/seed/central.json not found (neither in the source tree nor bundled)")


def load_config(directory: Path | None = None) -> dict[str, Any]:
    d = directory or fixtures_dir()
    return dict(json.loads((d / "central.json").read_text(encoding="utf-8")))


def load_phone_numbers(directory: Path | None = None) -> frozenset[str]:
    """The extensions seeded for `pbxcheck load click-to-call`'s phones (``load_extensions``)."""
    load = load_config(directory).get("load_extensions") or {"first": 0, "count": 0}
    return frozenset(str(load["first"] + i) for i in range(load["count"]))


def seed(store: Store, *, now: float | None = None, directory: Path | None = None) -> bool:
    """Fill a fresh database; False when it was seeded before (a restart keeps its data)."""
    if store.meta("seeded"):
        return False
    d = directory or fixtures_dir()
    cfg = load_config(d)
    now = time.time() if now is None else now
    with store.tx():
        store.ensure_credentials()
        for client in cfg["classe5_clients"]:
            store.add_classe5(client)
        for e in cfg["extensions"]:
            store.add_extension(
                e["number"], secrets.token_urlsafe(9), ramal_web=e["ramal_web"], classe5=e["classe5"], nome=e["nome"]
            )
        for i, number in enumerate(sorted(load_phone_numbers(d), key=int)):
            store.add_extension(number, secrets.token_urlsafe(9), nome=f"CARGA {i + 1:02d}")
        for c in cfg["campaigns"]:
            store.add_campaign(c["id"], c["nome"], disposable=c["disposable"])
            camp = store.campaign(c["id"])
            assert camp is not None
            rows = json.loads((d / c["contacts"]).read_text(encoding="utf-8"))
            for row in rows:
                _seed_contact(store, camp, row, now)
        _seed_history(store, cfg, now)
        store.set_meta("seeded", datahora(now))
        store.set_meta("disposable_campaign", next(c["id"] for c in cfg["campaigns"] if c["disposable"]))
        store.set_meta("disposable_classe5", cfg["disposable_classe5"])
    return True


def _seed_contact(store: Store, camp: Campaign, row: dict[str, Any], now: float) -> None:
    inserted = now + float(row.get("insert_offset_s", -7200))
    inicialing = row.get("inicialing", "")
    if inicialing == "now":
        inicialing = time.strftime("%H:%M:%S", time.localtime(now - 300))
    state = {"status": row["status"], "tentativas": str(row["tentativas"]), "inicialing": inicialing}
    values = {
        k: str(v)
        for k, v in row.items()
        if k not in ("id", "status", "tentativas", "call", "inicialing", "insert_offset_s")
    }
    cols, extra = build_contact(camp.nome, values, inserted, state)
    if row["status"] in ("Descartado", "EXCEDIDO"):
        cols["status_ligacao"] = StatusChamada.NOANSWER.value
    call = row.get("call")
    if call:
        ts = now + float(call["offset_s"])
        cols["status_ligacao"] = StatusChamada.ANSWER.value
        cols["datendimento"] = datahora(ts)
    assert set(cols) >= set(CONTACT_COLUMNS) - {"id", "id_registro"}
    cid = store.insert_contact(camp, cols, extra, None, contact_id=int(row["id"]))
    if call:
        rec = records.call_record(
            store,
            ts=ts,
            numero=call["numero"],
            ramal=call["ramal"],
            duracao=int(call["duracao"]),
            tipo=TipoChamada.DISCADOR,
            nomeoperador=call["nomeoperador"],
            campanha=camp.id,
            id_mailing=str(cid),
            cliente=cols["cliente"],
            dialed_time=str(row["tentativas"]),
        )
        store.add_call(rec, ts)


def _seed_history(store: Store, cfg: dict[str, Any], now: float) -> None:
    h = cfg["history"]
    rnd = random.Random(h["random_seed"])
    today = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    exts = [e["number"] for e in cfg["extensions"]]
    ops = cfg["operators"]
    days: list[tuple[float, float, int]] = [(today.timestamp(), now, h["calls_today"])]
    for back in range(1, h["previous_days"] + 1):
        start = (today - timedelta(days=back)).timestamp()
        days.append((start, start + 86399, h["calls_per_previous_day"]))
    for start, end, count in days:
        for i in range(count):
            ts = start + (end - start) * (i + 0.5) / count
            answered = rnd.random() < 0.8
            entrada = rnd.random() < 0.5
            numero = f"{rnd.choice(['11', '21', '41', '47'])}{rnd.randrange(30000000, 99999999)}"
            op = rnd.choice(ops)
            rec = records.call_record(
                store,
                ts=ts,
                numero=numero,
                ramal=rnd.choice(exts),
                duracao=rnd.randrange(11, 600) if answered else 0,
                tipo=TipoChamada.ENTRADA if entrada else TipoChamada.SAIDA,
                direction="E" if entrada else "S",
                statuschamada=StatusChamada.ANSWER
                if answered
                else rnd.choice([StatusChamada.NOANSWER, StatusChamada.BUSY]),
                nomeoperador=op["nome"] if answered else "",
                sidehangup=rnd.choice([SideHangup.CLIENTE, SideHangup.OPERADOR]),
            )
            store.add_call(rec, ts)
        _seed_operator_day(store, ops, h["pauses"], start, end, rnd)


def _seed_operator_day(
    store: Store, ops: list[dict[str, str]], pauses: list[str], start: float, end: float, rnd: random.Random
) -> None:
    """Per operator: LOGIN, a PAUSA of a few minutes, LOGOUT, spread over [start, end]."""
    span = end - start
    for n, op in enumerate(ops):
        login = start + span * (0.05 + 0.05 * n)
        pause = login + span * 0.2
        logout = start + span * (0.8 + 0.04 * n)
        pause_len = rnd.randrange(120, 1800)
        for ts, evento, pausa, dur in (
            (login, "LOGIN", "", "0"),
            (pause, "PAUSA", rnd.choice(pauses), str(pause_len)),
            (logout, "LOGOUT", "", str(int(logout - login))),
        ):
            store.add_event(
                {
                    "datahora": time.strftime(DATE_FORMAT, time.localtime(ts)),
                    "operador": op["nome"],
                    "ramal": op["ramal"],
                    "evento": evento,
                    "pausa": pausa,
                    "duracao": dur,
                },
                ts,
            )
