"""One method per acao. Each gets the decoded body and the authenticated instance and gives back
what to answer; app.py does the plumbing (body, auth, encoding). Answers follow CLAUSES.md and the
choices of docs/DESIGN.md; every write happens inside one transaction."""

from __future__ import annotations

import json
import operator
import re
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import contract as C
from .calls import CallEngine, refuse_reason
from .dialer import Dialer
from .store import Campaign, Instance, Store, empty_contact_columns

EXTRA_INSERT_FIELDS = ("idcrm", "cpf", *(f for i in range(2, C.MAX_PHONES + 1) for f in (f"ddd{i}", f"tel{i}")))
_SAME_NAME = tuple(f for f in C.INSERT_FIELDS if f in C.CONTACT_COLUMNS)
# C-speed picks for the insert hot path (a dict comprehension per insert showed in profiles).
_same_name_values = operator.itemgetter(*_SAME_NAME)
_extra_values = operator.itemgetter(*EXTRA_INSERT_FIELDS)
_EMPTY_COLUMNS = empty_contact_columns()
_INSERT_SET = frozenset(C.INSERT_FIELDS)
NO_DATE = "0000-00-00 00:00:00"


class FieldError(Exception):
    """A missing or mistyped field: answered ``Campo Invalido: <name>``."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class ServerError(Exception):
    """A fault asks for an HTTP 500, as a crashing PHP script gives."""


@dataclass
class Stream:
    """A body too big to build in memory at once (statusdiscador)."""

    chunks: AsyncGenerator[bytes, None]


def status(text: str) -> list[str]:
    return [C.STATUS, text]


_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_ok(v: str) -> bool:
    """False for a string with a lone surrogate ("\\ud800" in the JSON): no UTF-8 can hold it."""
    return v.isascii() or not _SURROGATE.search(v)


def text_field(data: dict[str, Any], name: str, *, required: bool = True) -> str:
    """A field as PHP would see it: numbers as their decimal string; objects, arrays, booleans and
    text that is not valid Unicode refused."""
    v = data.get(name)
    if v is None:
        if required:
            raise FieldError(name)
        return ""
    if isinstance(v, str):
        if not utf8_ok(v):
            raise FieldError(name)
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise FieldError(name)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)


def _mangle(value: str) -> str:
    """UTF-8 bytes read as Latin-1 and encoded again: what "accents-mangled" stores."""
    return value.encode("utf-8").decode("latin-1")


def build_contact(
    campaign_name: str, values: dict[str, str], now: float, state: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The statusdiscador columns and the extra fields of a contact inserted with ``values``
    (any subset of INSERT_FIELDS). idcrm shows as ``cuje``; ddd1/tel1 as ``ddd``/``numero``."""
    if values.keys() != _INSERT_SET:
        values = {k: values.get(k, "") for k in C.INSERT_FIELDS}
    cols = dict(_EMPTY_COLUMNS)
    cols.update(zip(_SAME_NAME, _same_name_values(values), strict=True))
    for src, dst in C.INSERT_TO_COLUMN.items():
        cols[dst] = values[src]
    numero = values["tel1"]
    cols.update(
        agendamento=NO_DATE,
        datendimento=NO_DATE,
        campanha=campaign_name,
        cuje=values["idcrm"],
        tipo_de_chamada="CELULAR" if len(numero) >= 9 and numero.startswith("9") else "LOCAL",
        data_insert=time.strftime(C.DATE_FORMAT, time.localtime(now)),
        **state,
    )
    return cols, dict(zip(EXTRA_INSERT_FIELDS, _extra_values(values), strict=True))


class Handlers:
    def __init__(self, store: Store, dialer: Dialer, calls: CallEngine, faults: frozenset[str]) -> None:
        self.store = store
        self.dialer = dialer
        self.calls = calls
        self.faults = faults
        self.table = {
            C.Acao.INSERT.value: self.insert,
            C.Acao.STATUSDISCADOR.value: self.statusdiscador,
            C.Acao.STATUSDETALHADO.value: self.statusdetalhado,
            C.Acao.STATUSREPORT.value: self.statusreport,
            C.Acao.STATUSOPERACOES.value: self.statusoperacoes,
            C.Acao.DELETEDISCADOR.value: self.deletediscador,
            C.Acao.CLICKTOCALL.value: self.clicktocall,
            C.Acao.STATUSRAMAIS.value: self.statusramais,
            C.Acao.BLOQUEIOCLASSE5.value: self.bloqueioclasse5,
        }

    # --- dialer -------------------------------------------------------------------------------

    def insert(self, data: dict[str, Any], inst: Instance) -> Any:
        cid = text_field(data, "idcampanha")
        values = dict.fromkeys(C.INSERT_FIELDS, "")
        for name in C.INSERT_FIELDS:  # in this order, so the first bad field named is always the same
            if name not in data:
                continue
            v = data[name]
            if v.__class__ is not str or not utf8_ok(v):  # the common case skips a call: inserts are the hot path
                v = text_field(data, name, required=False)
            if len(v) > C.MAX_TEXT:
                if "long-field-500" in self.faults:
                    raise ServerError(f"Data too long for column '{name}'")
                raise FieldError(name)
            values[name] = v
        camp = self.store.campaign(cid, owner=inst.login)
        if camp is None:
            if "campaign-check-skipped" not in self.faults:
                return status(C.CAMPANHA_NAO_CADASTRADA)
            camp = Campaign(cid, cid, inst.login, False)
        self.insert_contact(camp, values)
        return status("Ok" if "status-string-changed" in self.faults else C.OK)

    def insert_contact(self, camp: Campaign, values: dict[str, str]) -> int:
        if "field-truncated-200" in self.faults:
            values = {k: v[:200] for k, v in values.items()}
        if "accents-mangled" in self.faults:
            values = {k: _mangle(v) for k, v in values.items()}
        now = time.time()
        fresh, next_at = self.dialer.fresh(now)
        cols, extra = build_contact(camp.nome, values, now, fresh)
        # One INSERT statement: outside an explicit transaction SQLite wraps it in its own, which is
        # the same all-or-nothing and spares the BEGIN and COMMIT round trips on the hot path.
        return self.store.insert_contact(camp, cols, extra, next_at)

    def statusdiscador(self, data: dict[str, Any], inst: Instance) -> Any:
        cid = text_field(data, "idcampanha")
        if self.store.campaign(cid, owner=inst.login) is None:
            return status(C.CAMPANHA_NAO_CADASTRADA)
        return Stream(self.store.listing(cid))

    def statusdetalhado(self, data: dict[str, Any], inst: Instance) -> Any:
        cid = text_field(data, "idcampanha")
        idmailing = text_field(data, "idmailing")
        if self.store.campaign(cid, owner=inst.login) is None:
            return status(C.CAMPANHA_NAO_CADASTRADA)
        rec = self.store.call_detail(cid, idmailing)
        if rec is None:
            return []
        detail = {k: rec.get(k, "") for k in C.DETAIL_FIELDS}
        if "detail-short-duration" in self.faults:
            detail["duracao"] = "8"
        if "detail-wrong-uniqueid" in self.faults:
            detail["uniqueid"] = detail["uniqueid"].replace(".", "")
        if "detail-wrong-mailing" in self.faults:
            detail["id_mailing"] = idmailing + "0"
        return detail

    def deletediscador(self, data: dict[str, Any], inst: Instance) -> Any:
        cid = text_field(data, "idcampanha")
        if self.store.campaign(cid, owner=inst.login) is None:
            return status(C.CAMPANHA_NAO_CADASTRADA)
        with self.store.tx():
            before = self.store.count_contacts(cid)
            deleted = self.store.delete_contacts(cid, only_dialled="delete-leaves-rows" in self.faults)
        n = before if "delete-leaves-rows" in self.faults else deleted
        if "delete-count-wrong" in self.faults:
            n += 1
        return [C.TOTAL_DELETADOS, str(n)]

    # --- calls, operators ---------------------------------------------------------------------

    def _since(self, data: dict[str, Any]) -> float | list[str]:
        """The instant datainicial (or its alias inicio) names; a Status answer if malformed."""
        key = "datainicial" if "datainicial" in data else C.DATAINICIAL_ALIAS
        raw = data.get(key)
        if raw is None or raw == "":
            if "report-empty-date-all" in self.faults:
                return 0.0
            today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
            return today.timestamp()
        try:
            if not isinstance(raw, str) or len(raw) != 19:
                raise ValueError(raw)
            return datetime.strptime(raw, C.DATE_FORMAT).timestamp()
        except (ValueError, OverflowError, OSError):
            if "report-bad-date-500" in self.faults:
                raise ServerError("strtotime(): invalid date") from None
            return status(C.DATA_INVALIDA)

    def statusreport(self, data: dict[str, Any], inst: Instance) -> Any:
        since = self._since(data)
        if isinstance(since, list):
            return since
        if "report-before-datainicial" in self.faults:
            since -= 86400
        limit = C.REPORT_MAX_ROWS + (1 if "report-501-rows" in self.faults else 0)
        return _raw_array(self.store.calls_since(since, limit))

    def statusoperacoes(self, data: dict[str, Any], inst: Instance) -> Any:
        since = self._since(data)
        if isinstance(since, list):
            return since
        if "ops-empty" in self.faults:
            return []
        return _raw_array(self.store.events_since(since, C.REPORT_MAX_ROWS))

    def clicktocall(self, data: dict[str, Any], inst: Instance) -> Any:
        origem = text_field(data, "origem")
        destino = text_field(data, "destino")
        if not destino:
            raise FieldError("destino")
        refused = refuse_reason(self.store, origem)
        if refused:
            return status(refused)
        call_id = self.calls.click_to_call(origem, destino)
        ok = "CHAMADA EFETUADA" if "c2c-wrong-status" in self.faults else C.CHAMADA_OK
        return [C.STATUS, ok, C.ID, call_id]

    # --- screen sync, classe5 -----------------------------------------------------------------

    def statusramais(self, data: dict[str, Any], inst: Instance) -> Any:
        live = {ch.ramal: ch for ch in self.calls.live_channels()}
        now = time.time()
        out = []
        for ext in self.store.extensions():
            ch = live.get(ext.number)
            if ch is None:
                registered = self.calls.is_registered(ext.number)
                obj = {k: "" for k in C.RAMAL_FIELDS}
                obj.update(
                    Ramal=ext.number, Status=C.RAMAL_NOT_IN_USE if registered else C.RAMAL_UNAVAILABLE, Duracao="0"
                )
            else:
                obj = {
                    "Ramal": ext.number,
                    "Status": C.RAMAL_IN_USE if ch.up else "Ringing",
                    "Direcao": ch.direcao,
                    "Duracao": str(int(now - ch.started)) if ch.up else "0",
                    "StatusCanal": C.CANAL_UP if ch.up else "Ringing",
                    "Callerid": ch.callerid,
                    "Extension": ch.extension,
                    "JSON1": ch.json[0],
                    "JSON2": ch.json[1],
                    "JSON3": ch.json[2],
                    "GRAVACAO": ch.gravacao,
                    "IDCHAMADA": ch.idchamada,
                }
            if "ramais-missing-field" in self.faults:
                del obj["IDCHAMADA"]
            out.append(obj)
        return out

    def bloqueioclasse5(self, data: dict[str, Any], inst: Instance) -> Any:
        cliente = text_field(data, "logincliente")
        acao = text_field(data, "classe5acao").upper()
        if acao not in (C.CLASSE5_BLOQUEAR, C.CLASSE5_DESBLOQUEAR):
            raise FieldError("classe5acao")
        block = acao == C.CLASSE5_BLOQUEAR
        if self.store.classe5_blocked(cliente) is None:
            return status(C.CLIENTE_NAO_CADASTRADO)
        if "classe5-noop" not in self.faults:
            with self.store.tx():
                self.store.set_classe5_blocked(cliente, block)
        return status(C.CLASSE5_BLOQUEADO if block else C.CLASSE5_DESBLOQUEADO)


class RawJson(bytes):
    """An answer already encoded as JSON."""


def _raw_array(items: list[str]) -> RawJson:
    return RawJson(("[" + ",".join(items) + "]").encode())


def encode(value: Any) -> bytes:
    if isinstance(value, RawJson):
        return bytes(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
