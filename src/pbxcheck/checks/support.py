"""What several suites need: listings, inserts that find their new row, report rows, snapshots.

Every helper takes the ``check`` fixture's Checker and names the clause a failed expectation belongs
to, so that a precondition failing (an insert not answered OK) is charged to the clause it breaks
(DIAL-INS-1), not to whatever the calling check was about.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

from ..client import ApiClient, Exchange
from ..contract import (
    CHAMADA_OK,
    CONTACT_COLUMNS,
    DATE_FORMAT,
    ID,
    INSERT_TO_COLUMN,
    OK,
    REQUIRED_FIELDS,
    STATUS,
    Acao,
    ClauseId,
)
from ..target import Target
from .checker import Checker
from .fixtures import RunTag, is_datetime_text

EPOCH = "2000-01-01 00:00:00"  # "since forever" for statusreport / statusoperacoes
MAX_CAMPAIGNS = 4  # campaigns found in the report that a check may list (bounded requests)


def listing(
    api: ApiClient, check: Checker, campaign: str, clause: ClauseId = ClauseId.DIAL_ST_1
) -> list[dict[str, Any]]:
    ex = api.call(Acao.STATUSDISCADOR, idcampanha=campaign)
    return check.records(ex, clause)


def ids_of(records: list[dict[str, Any]]) -> set[str]:
    return {str(r.get("id", r.get("0"))) for r in records}


def contact_body(tag: str, **fields: str) -> dict[str, str]:
    """A plain valid contact whose cliente carries the run's tag (never dialled into a real phone:
    the numbers are in the 2000-xxxx landline range, and only the disposable campaign gets them)."""
    base = {"idcrm": tag, "cliente": f"PBXCHECK {tag}", "cpf": "52998224725", "ddd1": "11", "tel1": "20000001"}
    base.update(fields)
    return base


def insert(api: ApiClient, check: Checker, campaign: str, contact: dict[str, Any]) -> Exchange:
    ex = api.call(Acao.INSERT, idcampanha=campaign, **contact)
    check.status(ex, ClauseId.DIAL_INS_1, OK)
    return ex


def insert_and_find(
    api: ApiClient, check: Checker, campaign: str, contact: dict[str, Any], before: set[str] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Insert, then find the one new record by the listing's id difference. Returns (record, listing)."""
    if before is None:
        before = ids_of(listing(api, check, campaign))
    ex = insert(api, check, campaign, contact)
    after = listing(api, check, campaign)
    new = [r for r in after if str(r.get("id", r.get("0"))) not in before]
    check(
        len(new) == 1,
        ClauseId.DIAL_ST_2,
        f"after one insert answered OK the campaign lists {len(new)} new records, not 1",
        ex,
    )
    return new[0], after


def expected_columns(contact: dict[str, Any]) -> dict[str, str]:
    """The statusdiscador columns an inserted contact must show, named as the listing names them."""
    out: dict[str, str] = {}
    for name, value in contact.items():
        column = INSERT_TO_COLUMN.get(name, name)
        if column in CONTACT_COLUMNS and column not in ("id", "status"):
            out[column] = str(value)
    return out


def field_differences(record: dict[str, Any], contact: dict[str, Any]) -> list[str]:
    diffs = []
    for column, value in expected_columns(contact).items():
        got = record.get(column)
        if got != value:
            diffs.append(
                f"{column}: sent {value!r} ({len(value)} chars), listed {got!r}"
                + (f" ({len(got)} chars)" if isinstance(got, str) else "")
            )
    return diffs


def timestamp_of(row: dict[str, Any]) -> str | None:
    """A call record's or event's instant: ``datahora`` when present, else its first date-time value."""
    for key in ("datahora", "data", "datainicial", "inicio"):
        if is_datetime_text(row.get(key)):
            return str(row[key])
    for value in row.values():
        if is_datetime_text(value):
            return str(value)
    return None


def report(
    api: ApiClient, check: Checker, clause: ClauseId, acao: Acao = Acao.STATUSREPORT, **fields: Any
) -> tuple[Exchange, list[dict[str, Any]]]:
    ex = api.call(acao, **fields)
    return ex, check.records(ex, clause)


def now_text(offset_s: float = 0.0) -> str:
    return time.strftime(DATE_FORMAT, time.localtime(time.time() + offset_s))


def today_midnight() -> str:
    return datetime.now().strftime("%Y-%m-%d 00:00:00")


def known_campaigns(api: ApiClient, check: Checker, target: Target) -> list[str]:
    """The disposable campaign, then campaigns the call history names (read only, bounded)."""
    found = [target.disposable_campaign]
    _, rows = report(api, check, ClauseId.REP_1, datainicial=EPOCH)
    for row in rows:
        camp = row.get("campanha")
        if isinstance(camp, str) and camp and camp not in found:
            found.append(camp)
        if len(found) >= MAX_CAMPAIGNS:
            break
    return found


def valid_body(acao: Acao, target: Target, *, tag: RunTag, idmailing: str = "0") -> dict[str, Any]:
    """The fields (beyond credentials) of a harmless valid call of each acao, on disposable things only."""
    ext = [e.number for e in target.extensions]
    fields: dict[str, Any] = {
        Acao.INSERT: {"idcampanha": target.disposable_campaign, **contact_body(tag.next("den"))},
        Acao.STATUSDISCADOR: {"idcampanha": target.disposable_campaign},
        Acao.STATUSDETALHADO: {"idcampanha": target.disposable_campaign, "idmailing": idmailing},
        Acao.STATUSREPORT: {"datainicial": ""},
        Acao.STATUSOPERACOES: {"datainicial": ""},
        Acao.DELETEDISCADOR: {"idcampanha": target.disposable_campaign},
        Acao.CLICKTOCALL: {"origem": ext[0] if ext else "2001", "destino": ext[1] if len(ext) > 1 else "2002"},
        Acao.STATUSRAMAIS: {},
        Acao.BLOQUEIOCLASSE5: {"logincliente": target.disposable_classe5, "classe5acao": "BLOQUEAR"},
    }[acao]
    assert set(REQUIRED_FIELDS[acao]) <= set(fields), acao
    return fields


def is_status_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and value[0] == STATUS and isinstance(value[1], str)


# --- Click to call (C2C-1, C2C-3; the classe5 suite and the SIP probes use it too) ---------------

CALL_END_WAIT_S = 20.0  # bounded wait for the click-to-call's record to appear
POLL_S = 0.5


def id_pattern(origem: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(origem)}_(\d{{14}})_(\d+)$")


def click_to_call(api: ApiClient, check: Checker, origem: str, destino: str) -> tuple[Exchange, str]:
    """C2C-1's checks on one click-to-call; returns the exchange and the call ID."""
    ex = api.call(Acao.CLICKTOCALL, origem=origem, destino=destino)
    value = check.value(ex, ClauseId.C2C_1)
    check(
        isinstance(value, list) and len(value) == 4 and all(isinstance(v, str) for v in value),
        ClauseId.C2C_1,
        f'expected ["{STATUS}","{CHAMADA_OK}","{ID}","<origem>_<YYYYmmddHHMMSS>_<digits>"], got {value!r}',
        ex,
    )
    check(
        value[:3] == [STATUS, CHAMADA_OK, ID],
        ClauseId.C2C_1,
        f'expected ["{STATUS}","{CHAMADA_OK}","{ID}", …], got {value[:3]!r}',
        ex,
    )
    m = id_pattern(origem).match(value[3])
    check(m, ClauseId.C2C_1, f"ID {value[3]!r} is not <origem>_<YYYYmmddHHMMSS>_<digits> for origem {origem}", ex)
    assert m is not None
    try:
        stamp = datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    except ValueError:
        check.fail(ClauseId.C2C_1, f"ID {value[3]!r}: {m.group(1)} is not a date and time", ex)
    check(
        abs(stamp - datetime.now()) < timedelta(days=1),
        ClauseId.C2C_1,
        f"ID {value[3]!r}: its time {stamp} is not today's call",
        ex,
    )
    return ex, value[3]


def since_id(call_id: str) -> str:
    """A datainicial just before the call, by the central's own clock (the ID's time is its local
    time, which need not be ours)."""
    stamp = datetime.strptime(call_id.split("_")[-2], "%Y%m%d%H%M%S")
    return (stamp - timedelta(seconds=5)).strftime(DATE_FORMAT)


def find_call(
    api: ApiClient, check: Checker, call_id: str, since: str, clause: ClauseId, wait_s: float = CALL_END_WAIT_S
) -> tuple[dict[str, Any] | None, str | None]:
    """Poll statusreport (bounded) for a record carrying ``call_id`` in any field; (record, field name)."""
    deadline = time.monotonic() + wait_s
    while True:
        ex = api.call(Acao.STATUSREPORT, datainicial=since)
        for row in check.records(ex, clause):
            for key, value in row.items():
                if value == call_id:
                    return row, key
        if time.monotonic() >= deadline:
            return None, None
        time.sleep(POLL_S)
