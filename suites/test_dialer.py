"""Discador: insert, statusdiscador, statusdetalhado, deletediscador (DIAL-*).

Writes go to the target's disposable campaign only. Status values, answer strings and column names
come from pbxcheck.contract, never retyped.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from pbxcheck.answers import record_pairs_agree
from pbxcheck.checks import Checker, RunTag
from pbxcheck.checks.support import (
    contact_body,
    field_differences,
    ids_of,
    insert,
    insert_and_find,
    known_campaigns,
    listing,
)
from pbxcheck.client import ApiClient
from pbxcheck.contract import (
    CAMPANHA_NAO_CADASTRADA,
    CONCLUIDO_MIN_TALK_S,
    CONTACT_COLUMNS,
    DETAIL_FIELDS,
    DETAIL_REQUIRED,
    LOGIN_INVALIDO,
    MAX_TEXT,
    MAX_TRIES,
    OK,
    OPEN_TEXT_FIELDS,
    TOTAL_DELETADOS,
    Acao,
    ClauseId,
    ContactStatus,
)
from pbxcheck.target import Target
from pbxcheck.wrong import wrong_like

STATUSES = {s.value for s in ContactStatus}
CONCLUIDO_WAIT_S = 12.0  # bounded wait for a fresh contact to be answered when the data has none
UNIQUEID = re.compile(r"^\d{9,11}\.\d+$")


# --- insert -------------------------------------------------------------------------------------------


@pytest.mark.clause(ClauseId.DIAL_INS_1)
def test_insert_answers_ok(api: ApiClient, check: Checker, target: Target, run_tag: RunTag) -> None:
    insert(api, check, target.disposable_campaign, contact_body(run_tag.next()))


# The document's own Python example, with our run's tag as idcrm.
DOC_EXAMPLE = {
    "cliente": "Leandro",
    "cpf": "346150521852",
    "ddd1": "11",
    "tel1": "41187777",
    "ddd2": "21",
    "tel2": "12345678",
    "gen15": "gen15",
}


@pytest.mark.clause(ClauseId.DIAL_ST_2)
def test_fresh_contact_listed_as_inserted(api: ApiClient, check: Checker, target: Target, run_tag: RunTag) -> None:
    contact = {"idcrm": run_tag.next(), **DOC_EXAMPLE}
    record, _ = insert_and_find(api, check, target.disposable_campaign, contact)
    listed = api.exchanges[-1]
    diffs = field_differences(record, contact)
    check(
        not diffs,
        ClauseId.DIAL_ST_2,
        "the fresh contact is not listed with what was inserted: " + "; ".join(diffs),
        listed,
    )
    status = record.get("status")
    # The case rule belongs to DIAL-ST-3; here only "not AGUARDANDO at all" fails.
    check(
        isinstance(status, str) and status.upper() == ContactStatus.AGUARDANDO.value,
        ClauseId.DIAL_ST_2,
        f"a fresh contact must be listed with status {ContactStatus.AGUARDANDO.value}, got {status!r}",
        listed,
    )
    check(
        status == ContactStatus.AGUARDANDO.value,
        ClauseId.DIAL_ST_3,
        f"status {status!r}: the case is the document's ({ContactStatus.AGUARDANDO.value})",
        listed,
    )


@pytest.mark.clause(ClauseId.DIAL_INS_2)
def test_unknown_campaign_inserts_nothing(api: ApiClient, check: Checker, target: Target, run_tag: RunTag) -> None:
    unknown = "9" + str(int(time.time() * 1000))[-8:]
    before = listing(api, check, target.disposable_campaign)
    probe = api.call(Acao.STATUSDISCADOR, idcampanha=unknown)
    tag = run_tag.next()
    ex = api.call(Acao.INSERT, idcampanha=unknown, **contact_body(tag))
    check.status(ex, ClauseId.DIAL_INS_2, CAMPANHA_NAO_CADASTRADA)
    after_unknown = api.call(Acao.STATUSDISCADOR, idcampanha=unknown)
    got = after_unknown.answer.value if after_unknown.answer else None
    leaked = isinstance(got, list) and any(isinstance(r, dict) and tag in str(r.values()) for r in got)
    check(
        not leaked,
        ClauseId.DIAL_INS_2,
        f"campaign {unknown} was refused, yet it now lists the contact",
        probe,
        ex,
        after_unknown,
    )
    after = listing(api, check, target.disposable_campaign)
    check(ids_of(after) == ids_of(before), ClauseId.DIAL_INS_2, "a refused insert changed the disposable campaign", ex)


@pytest.mark.clause(ClauseId.DIAL_INS_3)
@pytest.mark.parametrize("factor", ["login", "senha"])
def test_bad_credentials_insert_nothing(
    api: ApiClient, check: Checker, target: Target, run_tag: RunTag, factor: str
) -> None:
    before = ids_of(listing(api, check, target.disposable_campaign))
    body = {
        "acao": Acao.INSERT.value,
        **api.credentials(),
        "idcampanha": target.disposable_campaign,
        **contact_body(run_tag.next()),
    }
    body[factor] = wrong_like(body[factor])  # random, same shape: nothing of the secret in the report
    ex = api.post(body)
    value = check.value(ex, ClauseId.DIAL_INS_3)
    # Accepting a wrong factor is AUTH-2's failure; a denial in other words is this clause's.
    check(value != ["Status", OK], ClauseId.AUTH_2, f"a wrong {factor} was accepted", ex)
    check.status(ex, ClauseId.DIAL_INS_3, LOGIN_INVALIDO)
    after = ids_of(listing(api, check, target.disposable_campaign))
    check(after == before, ClauseId.DIAL_INS_3, f"the denied insert added {len(after - before)} record(s)", ex)


def _long_value(tag: str, length: int) -> str:
    return (tag + " RESPONSÁVEL ação ÇÃO " * 30)[:length]


@pytest.mark.clause(ClauseId.DIAL_INS_4)
def test_254_characters_with_accents_come_back_intact(
    api: ApiClient, check: Checker, target: Target, run_tag: RunTag
) -> None:
    tag = run_tag.next()
    contact = contact_body(tag, cliente=_long_value("NOME DO RESPONSÁVEL " + tag, MAX_TEXT))
    for name in OPEN_TEXT_FIELDS:
        contact[name] = _long_value(f"{name} {tag} ", MAX_TEXT)
    assert all(len(v) <= MAX_TEXT for v in contact.values())
    record, _ = insert_and_find(api, check, target.disposable_campaign, contact)
    diffs = field_differences(record, contact)
    check(
        not diffs,
        ClauseId.DIAL_INS_4,
        f"{len(diffs)} field(s) of up to {MAX_TEXT} characters did not come back intact: " + "; ".join(diffs[:3]),
        api.exchanges[-1],
    )


@pytest.mark.clause(ClauseId.DIAL_INS_4)
def test_255_characters_do_not_corrupt(
    api: ApiClient, check: Checker, target: Target, run_tag: RunTag, observe: Any
) -> None:
    tag = run_tag.next()
    contact = contact_body(tag, endereco=_long_value(tag, MAX_TEXT + 1), bairro="Centro")
    before = ids_of(listing(api, check, target.disposable_campaign))
    ex = api.call(Acao.INSERT, idcampanha=target.disposable_campaign, **contact)
    value = check.value(ex, ClauseId.DIAL_INS_4)
    after = listing(api, check, target.disposable_campaign)
    new = [r for r in after if str(r.get("id")) not in before]
    if value != ["Status", OK]:
        check(not new, ClauseId.DIAL_INS_4, f"answered {value!r}, yet {len(new)} record(s) were inserted", ex)
        observe(ClauseId.DIAL_INS_4, "over_254", f"rejected: {value!r}")
        return
    check(len(new) == 1, ClauseId.DIAL_INS_4, f"answered OK but {len(new)} new records are listed", ex)
    got = new[0].get("endereco")
    if got == contact["endereco"]:
        reading = "stored whole"
    elif got == contact["endereco"][:MAX_TEXT]:
        reading = f"truncated to {MAX_TEXT}"
    else:
        check.fail(ClauseId.DIAL_INS_4, f"the 255-character endereco came back corrupted: {got!r}", ex)
    others = {k: v for k, v in contact.items() if k != "endereco"}
    diffs = field_differences(new[0], others)
    check(not diffs, ClauseId.DIAL_INS_4, "a 255-character value corrupted other fields: " + "; ".join(diffs), ex)
    observe(ClauseId.DIAL_INS_4, "over_254", f"answered OK, {reading}")


# --- statusdiscador -----------------------------------------------------------------------------------


def _listings(api: ApiClient, check: Checker, target: Target, run_tag: RunTag) -> dict[str, list[dict[str, Any]]]:
    # At least one record to look at: a fresh contact in the disposable campaign.
    insert(api, check, target.disposable_campaign, contact_body(run_tag.next()))
    return {camp: listing(api, check, camp) for camp in known_campaigns(api, check, target)}


@pytest.mark.clause(ClauseId.DIAL_ST_1)
def test_records_carry_every_column_under_position_and_name(
    api: ApiClient, check: Checker, target: Target, run_tag: RunTag
) -> None:
    for camp, records in _listings(api, check, target, run_tag).items():
        check(
            records or camp != target.disposable_campaign,
            ClauseId.DIAL_ST_1,
            f"campaign {camp} lists nothing right after an insert",
            api.exchanges[-1],
        )
        for r in records:
            problems = record_pairs_agree(r, CONTACT_COLUMNS)
            check(
                not problems,
                ClauseId.DIAL_ST_1,
                f"campaign {camp}, record id {r.get('id')!r}: " + "; ".join(problems[:4]),
                *[e for e in api.exchanges if e.body.get("idcampanha") == camp][-1:],
            )


@pytest.mark.clause(ClauseId.DIAL_ST_3)
def test_status_domain_and_tentativas(
    api: ApiClient, check: Checker, target: Target, run_tag: RunTag, observe: Any
) -> None:
    seen: dict[str, int] = {}
    for camp, records in _listings(api, check, target, run_tag).items():
        ex = [e for e in api.exchanges if isinstance(e.body, dict) and e.body.get("idcampanha") == camp][-1]
        for r in records:
            status, tries = r.get("status"), r.get("tentativas")
            seen[str(status)] = seen.get(str(status), 0) + 1
            check(
                status in STATUSES,
                ClauseId.DIAL_ST_3,
                f"record {r.get('id')!r} has status {status!r}, not one of {sorted(STATUSES)} (case counts)",
                ex,
            )
            try:
                n = int(str(tries))
            except ValueError:
                check.fail(ClauseId.DIAL_ST_3, f"record {r.get('id')!r}: tentativas {tries!r} is not a number", ex)
            check(
                0 <= n <= MAX_TRIES,
                ClauseId.DIAL_ST_3,
                f"record {r.get('id')!r}: tentativas {n} exceeds {MAX_TRIES}",
                ex,
            )
            if status == ContactStatus.EXCEDIDO.value:
                check(
                    n == MAX_TRIES,
                    ClauseId.DIAL_ST_3,
                    f"record {r.get('id')!r} is EXCEDIDO with tentativas {n}, not {MAX_TRIES}",
                    ex,
                )
    # Which statuses the data let us see: a clause is only as checked as the data it met.
    observe(ClauseId.DIAL_ST_3, "statuses_seen", dict(sorted(seen.items())))


# --- statusdetalhado ----------------------------------------------------------------------------------


def _concluido(api: ApiClient, check: Checker, target: Target, run_tag: RunTag) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for camp in known_campaigns(api, check, target):
        for r in listing(api, check, camp):
            if r.get("status") == ContactStatus.CONCLUIDO.value:
                found.append((camp, str(r.get("id"))))
                if len(found) >= 3:
                    return found
    if found:
        return found
    # No answered contact in the data: make one in the disposable campaign and wait, bounded.
    record, _ = insert_and_find(api, check, target.disposable_campaign, contact_body(run_tag.next(), tel1="20000011"))
    deadline = time.monotonic() + CONCLUIDO_WAIT_S
    while time.monotonic() < deadline:
        for r in listing(api, check, target.disposable_campaign):
            if str(r.get("id")) == str(record.get("id")) and r.get("status") == ContactStatus.CONCLUIDO.value:
                return [(target.disposable_campaign, str(r.get("id")))]
        time.sleep(0.5)
    return []


@pytest.mark.clause(ClauseId.DIAL_DET_1)
def test_concluido_contact_has_call_detail(api: ApiClient, check: Checker, target: Target, run_tag: RunTag) -> None:
    contacts = _concluido(api, check, target, run_tag)
    if not contacts:
        pytest.skip("no CONCLUIDO contact in the data, and none appeared in the disposable campaign in time")
    for camp, idmailing in contacts:
        ex = api.call(Acao.STATUSDETALHADO, idcampanha=camp, idmailing=idmailing)
        got = check.value(ex, ClauseId.DIAL_DET_1)
        check(isinstance(got, dict), ClauseId.DIAL_DET_1, f"expected one JSON object, got {type(got).__name__}", ex)
        missing = [f for f in DETAIL_REQUIRED if f not in got]
        check(not missing, ClauseId.DIAL_DET_1, f"the call detail lacks {missing}", ex)
        rest = [f for f in DETAIL_FIELDS if f not in got]
        check(not rest, ClauseId.DIAL_DET_1, f"the call detail lacks {rest}, part of the document's example", ex)
        check(
            got["statuschamada"] == "ANSWER",
            ClauseId.DIAL_DET_1,
            f"statuschamada {got['statuschamada']!r}, not ANSWER",
            ex,
        )
        try:
            duracao = int(str(got["duracao"]))
        except ValueError:
            duracao = -1
        check(
            duracao > CONCLUIDO_MIN_TALK_S,
            ClauseId.DIAL_DET_1,
            f"duracao {got['duracao']!r}: a CONCLUIDO call talked more than {CONCLUIDO_MIN_TALK_S} s",
            ex,
        )
        check(
            str(got["campanha"]) == camp,
            ClauseId.DIAL_DET_1,
            f"campanha {got['campanha']!r} does not echo {camp!r}",
            ex,
        )
        check(
            str(got["id_mailing"]) == idmailing,
            ClauseId.DIAL_DET_1,
            f"id_mailing {got['id_mailing']!r} does not echo idmailing {idmailing!r}",
            ex,
        )
        check(
            UNIQUEID.match(str(got["uniqueid"])),
            ClauseId.DIAL_DET_1,
            f"uniqueid {got['uniqueid']!r} is not <epoch>.<seq>",
            ex,
        )


# --- deletediscador -----------------------------------------------------------------------------------


@pytest.mark.clause(ClauseId.DIAL_DEL_1)
def test_delete_counts_exactly_then_empty_then_zero(
    api: ApiClient, check: Checker, target: Target, run_tag: RunTag
) -> None:
    camp = target.disposable_campaign
    for _ in range(3):
        insert(api, check, camp, contact_body(run_tag.next()))
    held = len(listing(api, check, camp))
    ex = api.call(Acao.DELETEDISCADOR, idcampanha=camp)
    got = check.value(ex, ClauseId.DIAL_DEL_1)
    check(
        got == [TOTAL_DELETADOS, str(held)],
        ClauseId.DIAL_DEL_1,
        f"the campaign held {held} records: expected {[TOTAL_DELETADOS, str(held)]}, got {got!r}",
        ex,
    )
    left = listing(api, check, camp, clause=ClauseId.DIAL_DEL_1)
    check(
        not left,
        ClauseId.DIAL_DEL_1,
        f"after the delete the campaign still lists {len(left)} records",
        api.exchanges[-1],
    )
    again = api.call(Acao.DELETEDISCADOR, idcampanha=camp)
    check(
        check.value(again, ClauseId.DIAL_DEL_1) == [TOTAL_DELETADOS, "0"],
        ClauseId.DIAL_DEL_1,
        f"a second delete must answer {[TOTAL_DELETADOS, '0']}",
        again,
    )
