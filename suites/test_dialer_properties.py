"""Discador, by property: any valid insert round-trips; no hostile body gets a 500 or a silent success;
a state machine over insert, statusdiscador, statusdetalhado and deletediscador.

Everything here writes only to the target's disposable campaign. Example counts come from the
Hypothesis profile (``ci``: few, derandomised; ``thorough``: many).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from pbxcheck.answers import record_pairs_agree
from pbxcheck.checks import Checker, RunTag
from pbxcheck.checks.strategies import Hostile, cpf_is_valid, hostile_inserts, typographic, valid_contacts
from pbxcheck.checks.support import field_differences, ids_of, insert_and_find, listing
from pbxcheck.client import ApiClient
from pbxcheck.contract import CONTACT_COLUMNS, OK, STATUS, TOTAL_DELETADOS, Acao, ClauseId, ContactStatus
from pbxcheck.target import Target

STATUSES = {s.value for s in ContactStatus}


@pytest.mark.clause(ClauseId.DIAL_INS_1, ClauseId.DIAL_ST_2, ClauseId.DIAL_INS_4)
@given(contact=valid_contacts())
def test_any_valid_insert_round_trips(
    api: ApiClient, check: Checker, target: Target, run_tag: RunTag, contact: dict[str, str]
) -> None:
    assert cpf_is_valid(contact["cpf"])  # the strategy's own promise
    contact = {**contact, "idcrm": run_tag.next("hyp")}
    record, _ = insert_and_find(api, check, target.disposable_campaign, contact)
    diffs = field_differences(record, contact)
    check(
        not diffs,
        ClauseId.DIAL_INS_4,
        "a valid contact did not round-trip through statusdiscador: " + "; ".join(diffs[:4]),
        api.exchanges[-1],
    )


@pytest.mark.clause(ClauseId.AUTH_1, ClauseId.DIAL_INS_4)
@given(hostile=hostile_inserts)
@example(hostile=Hostile("typographic-quotes", "“ ” for every quote", typographic))
@example(hostile=Hostile("not-json", "truncated JSON", lambda b: json.dumps(b)[:-1]))
@example(hostile=Hostile("wrong-type", 'cliente = {"x": "1"}', lambda b: {**b, "cliente": {"x": "1"}}))
@example(hostile=Hostile("missing-field", "no idcampanha", lambda b: {k: v for k, v in b.items() if k != "idcampanha"}))
@example(hostile=Hostile("too-long", "gen1 of 300 characters", lambda b: {**b, "gen1": "Á" * 300}))
@example(hostile=Hostile("huge", "gen1 of 2 MiB", lambda b: {**b, "gen1": "x" * (2 << 20)}))
def test_hostile_insert_no_server_error_no_silent_success(
    api: ApiClient, check: Checker, target: Target, run_tag: RunTag, observe: Any, hostile: Hostile
) -> None:
    tag = run_tag.next("hos")
    valid = {
        "acao": Acao.INSERT.value,
        **api.credentials(),
        "idcampanha": target.disposable_campaign,
        "idcrm": tag,
        "cliente": f"HOSTIL {tag}",
        "ddd1": "11",
        "tel1": "20000002",
    }
    before = ids_of(listing(api, check, target.disposable_campaign))
    ex = api.post(hostile.build(valid))
    clause = hostile.clause
    check(
        ex.status_code is not None and ex.status_code < 500,
        clause,
        f"{hostile.kind} ({hostile.detail}): server error HTTP {ex.status_code}",
        ex,
    )
    value = ex.answer.value if ex.answer else None
    after = listing(api, check, target.disposable_campaign)
    new = [r for r in after if str(r.get("id")) not in before]
    succeeded = value == [STATUS, OK] and bool(new)
    if not hostile.success_plausible:
        check(
            not succeeded,
            clause,
            f"{hostile.kind} ({hostile.detail}) was silently accepted: answered OK and inserted {len(new)} record(s)",
            ex,
        )
    check(
        value == [STATUS, OK] or not new,
        clause,
        f"{hostile.kind} ({hostile.detail}): answered {str(value)[:120]}, yet {len(new)} record(s) appeared",
        ex,
    )
    if succeeded:
        # Accepted (a plausible reading of an [unspecified] case): nothing else may be corrupted.
        check(
            len(new) == 1 and new[0].get("cliente") == valid["cliente"],
            ClauseId.DIAL_INS_4,
            f"{hostile.kind} ({hostile.detail}) was accepted but corrupted the record: {str(new[0])[:200]}",
            ex,
        )
    if hostile.success_plausible:
        observe(
            ClauseId.DIAL_INS_4,
            hostile.kind,
            "accepted"
            if succeeded
            else (value if isinstance(value, list) and len(str(value)) < 200 else f"HTTP {ex.status_code}"),
        )


# --- the state machine ---------------------------------------------------------------------------------


class DialerMachine(RuleBasedStateMachine):
    """A model of the disposable campaign: which ids it holds and what each inserted contact carries."""

    def __init__(self, api: ApiClient, check: Checker, target: Target, run_tag: RunTag) -> None:
        super().__init__()
        self.api, self.check, self.camp, self.tag = api, check, target.disposable_campaign, run_tag
        self.ids: set[str] = set()
        self.model: dict[str, dict[str, str]] = {}

    @initialize()
    def look(self) -> None:
        self.ids = ids_of(listing(self.api, self.check, self.camp))

    @rule(contact=valid_contacts())
    def insert(self, contact: dict[str, str]) -> None:
        contact = {**contact, "idcrm": self.tag.next("sm")}
        record, after = insert_and_find(self.api, self.check, self.camp, contact, before=self.ids)
        rid = str(record.get("id"))
        self.ids = ids_of(after)
        self.model[rid] = contact

    @rule()
    def statusdiscador(self) -> None:
        records = listing(self.api, self.check, self.camp)
        ex = self.api.exchanges[-1]
        got = ids_of(records)
        self.check(
            got == self.ids,
            ClauseId.DIAL_ST_1,
            f"the listing holds ids {sorted(got - self.ids)[:5]} nobody "
            f"inserted, or lacks {sorted(self.ids - got)[:5]}",
            ex,
        )
        for r in records:
            problems = record_pairs_agree(r, CONTACT_COLUMNS)
            self.check(not problems, ClauseId.DIAL_ST_1, f"record {r.get('id')!r}: " + "; ".join(problems[:3]), ex)
            self.check(
                r.get("status") in STATUSES,
                ClauseId.DIAL_ST_3,
                f"record {r.get('id')!r}: status {r.get('status')!r}",
                ex,
            )
            contact = self.model.get(str(r.get("id")))
            if contact is not None:
                diffs = field_differences(r, contact)
                self.check(not diffs, ClauseId.DIAL_INS_4, "; ".join(diffs[:3]), ex)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def statusdetalhado(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model)), label="idmailing")
        ex = self.api.call(Acao.STATUSDETALHADO, idcampanha=self.camp, idmailing=rid)
        value = self.check.value(ex, ClauseId.DIAL_DET_1)
        if isinstance(value, dict):  # the contact was answered by now: the detail must be its own
            self.check(
                str(value.get("id_mailing")) == rid,
                ClauseId.DIAL_DET_1,
                f"asked for idmailing {rid}, got the detail of {value.get('id_mailing')!r}",
                ex,
            )
        else:
            self.check(
                value == [] or (isinstance(value, list) and len(value) == 2),
                ClauseId.DIAL_DET_1,
                f"no call yet for {rid}: expected [] or a Status answer, got {str(value)[:200]}",
                ex,
            )

    @rule()
    def deletediscador(self) -> None:
        ex = self.api.call(Acao.DELETEDISCADOR, idcampanha=self.camp)
        got = self.check.value(ex, ClauseId.DIAL_DEL_1)
        expected = [TOTAL_DELETADOS, str(len(self.ids))]
        self.check(
            got == expected,
            ClauseId.DIAL_DEL_1,
            f"the model holds {len(self.ids)} records: expected {expected}, got {got!r}",
            ex,
        )
        self.ids.clear()
        self.model.clear()


@pytest.mark.clause(ClauseId.DIAL_INS_1, ClauseId.DIAL_ST_1, ClauseId.DIAL_DET_1, ClauseId.DIAL_DEL_1)
def test_dialer_state_machine(api: ApiClient, check: Checker, target: Target, run_tag: RunTag) -> None:
    # hypothesis types the argument as the class; a factory (our machine takes fixtures) works alike
    run_state_machine_as_test(lambda: DialerMachine(api, check, target, run_tag))  # type: ignore[arg-type]
