"""Every acao's payloads by property: any datainicial filters, and hostile field values never get a
server error or data that was not asked for.

Safety against a real central: hostile values go only into fields that name nothing real. deletediscador
gets non-string idcampanha values only (never text that a careless central could read as SQL),
clicktocall a hostile origem (so no call is placed), bloqueioclasse5 a hostile classe5acao on the
disposable client (unblocked afterwards whatever happens).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbxcheck.checks import Checker, RunTag
from pbxcheck.checks.strategies import NON_STRINGS, datetimes_text, hostile_values, malformed_dates
from pbxcheck.checks.support import report, timestamp_of, today_midnight, valid_body
from pbxcheck.client import ApiClient
from pbxcheck.contract import CLASSE5_DESBLOQUEAR, REPORT_MAX_ROWS, Acao, ClauseId
from pbxcheck.target import Target


def _rows_since(check: Checker, rows: list[dict[str, Any]], since: str, clause: ClauseId, ex: Any) -> None:
    early = [ts for ts in (timestamp_of(r) for r in rows) if ts is None or ts < since]
    check(not early, clause, f"{len(early)} of {len(rows)} records are before datainicial {since}", ex)
    check(len(rows) <= REPORT_MAX_ROWS, ClauseId.REP_1, f"{len(rows)} records, more than {REPORT_MAX_ROWS}", ex)


@pytest.mark.clause(ClauseId.REP_1)
@given(since=datetimes_text)
def test_report_never_before_any_datainicial(api: ApiClient, check: Checker, since: str) -> None:
    ex, rows = report(api, check, ClauseId.REP_1, datainicial=since)
    _rows_since(check, rows, since, ClauseId.REP_1, ex)


@pytest.mark.clause(ClauseId.OPS_1)
@given(since=datetimes_text)
def test_operations_never_before_any_datainicial(api: ApiClient, check: Checker, since: str) -> None:
    ex, rows = report(api, check, ClauseId.OPS_1, Acao.STATUSOPERACOES, datainicial=since)
    _rows_since(check, rows, since, ClauseId.OPS_1, ex)


@pytest.mark.clause(ClauseId.REP_2)
@given(bad=malformed_dates, acao=st.sampled_from([Acao.STATUSREPORT, Acao.STATUSOPERACOES]))
def test_malformed_datainicial_never_a_server_error_or_a_dump(
    api: ApiClient, check: Checker, bad: Any, acao: Acao
) -> None:
    ex = api.call(acao, datainicial=bad)
    value = check.value(ex, ClauseId.REP_2)
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        early = [r for r in value if (timestamp_of(r) or "") < today_midnight()]
        check(
            not early,
            ClauseId.REP_2,
            f"datainicial {bad!r} got {len(early)} records from before today: "
            "a malformed date must not dump the history",
            ex,
        )


# Which clause a server error on each acao breaks, and which field the hostile value goes into.
HOSTILE_TARGETS: dict[Acao, tuple[ClauseId, str]] = {
    Acao.STATUSDISCADOR: (ClauseId.DIAL_ST_1, "idcampanha"),
    Acao.STATUSDETALHADO: (ClauseId.DIAL_DET_1, "idmailing"),
    Acao.DELETEDISCADOR: (ClauseId.DIAL_DEL_1, "idcampanha"),
    Acao.CLICKTOCALL: (ClauseId.C2C_1, "origem"),
    Acao.BLOQUEIOCLASSE5: (ClauseId.C5_1, "classe5acao"),
}


assert sorted(c for c, _ in HOSTILE_TARGETS.values()) == sorted(
    [ClauseId.DIAL_ST_1, ClauseId.DIAL_DET_1, ClauseId.DIAL_DEL_1, ClauseId.C2C_1, ClauseId.C5_1]
)


@pytest.fixture
def unblock(target: Target) -> Iterator[None]:
    yield
    with ApiClient(target) as c:
        c.call(Acao.BLOQUEIOCLASSE5, logincliente=target.disposable_classe5, classe5acao=CLASSE5_DESBLOQUEAR)


@pytest.mark.clause(
    ClauseId.DIAL_ST_1, ClauseId.DIAL_DET_1, ClauseId.DIAL_DEL_1, ClauseId.C2C_1, ClauseId.C5_1
)  # HOSTILE_TARGETS' clauses
@pytest.mark.parametrize("acao", list(HOSTILE_TARGETS), ids=[a.value for a in HOSTILE_TARGETS])
@given(data=st.data())
def test_hostile_field_never_a_server_error(
    api: ApiClient, check: Checker, target: Target, run_tag: RunTag, unblock: None, acao: Acao, data: st.DataObject
) -> None:
    clause, name = HOSTILE_TARGETS[acao]
    value = data.draw(NON_STRINGS if acao is Acao.DELETEDISCADOR else hostile_values, label=name)
    if acao is Acao.BLOQUEIOCLASSE5 and isinstance(value, str) and value.strip().upper() in ("BLOQUEAR", "DESBLOQUEAR"):
        return
    fields = {**valid_body(acao, target, tag=run_tag), name: value}
    body = {"acao": acao.value, **api.credentials(), **{k: v for k, v in fields.items() if v is not None}}
    ex = api.post(body)
    got = check.value(ex, clause)
    if acao is Acao.STATUSDISCADOR:
        records = isinstance(got, list) and bool(got) and all(isinstance(r, dict) for r in got)
        check(not records, clause, f"idcampanha {value!r} names no campaign, yet {len(got)} records came back", ex)
    if acao is Acao.STATUSDETALHADO and isinstance(got, dict):
        check(
            str(got.get("id_mailing")) == str(value),
            clause,
            f"idmailing {value!r} got the detail of {got.get('id_mailing')!r}",
            ex,
        )
    if acao is Acao.CLICKTOCALL:
        check(
            not (isinstance(got, list) and got[1:2] == ["CHAMADA OK"]),
            clause,
            f"origem {value!r} is no extension, yet a call was placed",
            ex,
        )
