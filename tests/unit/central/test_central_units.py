"""The central's parts without a network: GSM frames, record fragments, the store's transactions,
the dialer's state machine on an explicit clock, the seed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcheck import contract as C
from pbxcheck.answers import record_pairs_agree
from pbxcheck.central import fragments, gsm
from pbxcheck.central.dialer import FRESH_WAIT, RETRY, RING, Dialer, answered_on_try, talk_seconds
from pbxcheck.central.faults import FAULTS, HTTP_FAULTS, validate
from pbxcheck.central.handlers import build_contact
from pbxcheck.central.seed import seed
from pbxcheck.central.store import Store, empty_contact_columns


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(str(tmp_path / "c.sqlite3"))
    seed(s)
    return s


# --- GSM ----------------------------------------------------------------------------------------


def test_gsm_frames() -> None:
    assert all(len(f) == C.GSM_FRAME_BYTES and f[0] >> 4 == 0xD for f in gsm.TONE_FRAMES)
    assert gsm.size_for_seconds(335) == 335 * 50 * 33
    for size in (33, 66, 99, 553278):
        data = gsm.audio(size)
        assert len(data) == size and gsm.is_gsm(data)
    with pytest.raises(ValueError):
        gsm.audio(34)
    assert not gsm.is_gsm(gsm.not_gsm(330))
    assert not gsm.is_gsm(b"")


def test_gsm_pack_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        gsm.pack_frame((64, 0, 0, 0, 0, 0, 0, 0), ((0,) * 17,) * 4)


# --- fragments ----------------------------------------------------------------------------------


def _columns() -> dict[str, str]:
    cols = {name: f"v{i}" for i, name in enumerate(C.CONTACT_COLUMNS)}
    cols.update(status="EXCEDIDO", tentativas="5", data_insert="2020-12-30 08:12:43", cliente='Á "quoted" \\ \n')
    return cols


def test_fragment_has_every_column_twice() -> None:
    rec = json.loads(fragments.render(_columns()))
    assert record_pairs_agree(rec, C.CONTACT_COLUMNS) == []
    assert rec["cliente"] == 'Á "quoted" \\ \n'


@pytest.mark.parametrize(
    "fault, problem",
    [
        ("keys-disagree", lambda r: r["52"] == "30/12/2020 08:12:43" and r["data_insert"] == "2020-12-30 08:12:43"),
        ("missing-column", lambda r: "cuje" not in r and "21" not in r),
        ("status-lowercase", lambda r: r["status"] == r["10"] == "excedido"),
        ("tentativas-over-5", lambda r: r["tentativas"] == "6"),
    ],
)
def test_render_faults(fault: str, problem) -> None:  # type: ignore[no-untyped-def]
    assert problem(json.loads(fragments.render(_columns(), frozenset({fault}))))


def test_reopening_under_other_render_faults_rerenders(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite3")
    s = Store(path)
    seed(s)
    s.close()
    s = Store(path, faults=frozenset({"status-lowercase"}))
    assert b'"status":"excedido"' in s.listing_bytes("583")
    s.close()
    s = Store(path)
    assert b'"status":"EXCEDIDO"' in s.listing_bytes("583")


# --- store --------------------------------------------------------------------------------------


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    camp = store.campaign("900")
    assert camp is not None
    n = store.count_contacts()
    cols, extra = build_contact(
        camp.nome, {"cliente": "HALF"}, time.time(), {"status": "AGUARDANDO", "tentativas": "0"}
    )
    with pytest.raises(RuntimeError):
        with store.tx():
            store.insert_contact(camp, cols, extra, None)
            raise RuntimeError("crash between two writes")
    assert store.count_contacts() == n


def test_credentials_are_random_and_bound(store: Store, tmp_path: Path) -> None:
    main, foreign = store.instance("main"), store.instance("foreign")
    assert (main.source_ip, foreign.source_ip) == ("127.0.0.1", "127.0.0.2")
    assert len(main.token) == 32 and main.token != foreign.token
    other = Store(str(tmp_path / "other.sqlite3"))
    seed(other)
    assert other.instance("main").senha != main.senha


def test_seed(store: Store) -> None:
    assert {e.number for e in store.extensions()} >= {"2001", "2002", "5545", "6961", "7777"}
    assert next(e for e in store.extensions() if e.number == "7777").ramal_web
    assert store.classe5_blocked("teste") is False
    assert not store.is_extension_blocked("3001")
    store.set_classe5_blocked("teste", True)
    assert store.is_extension_blocked("3001") and not store.is_extension_blocked("2001")
    rows = json.loads(store.listing_bytes("583"))
    assert {r["status"] for r in rows} == {s.value for s in C.ContactStatus}
    for r in rows:
        if r["status"] == "CONCLUIDO":
            assert store.call_detail("583", r["id"]) is not None
    today = time.mktime(time.localtime()[:3] + (0, 0, 0, 0, 0, -1))
    assert len(store.calls_since(today, 10_000)) > C.REPORT_MAX_ROWS
    assert len(store.calls_since(0, 10_000)) > len(store.calls_since(today, 10_000))
    assert store.events_since(today, 1000)
    assert seed(store) is False  # a seeded database is left alone


# --- dialer -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "numero, try_, talk",
    [
        ("41180000", 1, 11),
        ("41180003", 1, 14),
        ("41180004", 2, 15),
        ("41180007", 5, 18),
        ("41180008", None, 19),
        ("41180099", None, 60),
        ("", None, 11),
        ("123456789", None, 50),
    ],
)
def test_outcome_is_a_function_of_the_number(numero: str, try_: int | None, talk: int) -> None:
    assert answered_on_try(numero) == try_
    assert talk_seconds(numero) == talk


def _walk(store: Store, dialer: Dialer, tel: str, t0: float) -> list[tuple[str, str]]:
    camp = store.campaign("900")
    assert camp is not None
    state, next_at = dialer.fresh(t0)
    cols, extra = build_contact(camp.nome, {"tel1": tel, "cliente": tel}, t0, state)
    with store.tx():
        cid = store.insert_contact(camp, cols, extra, next_at)
    seen = []
    now = t0
    for _ in range(200):
        c = store.contact(cid)
        assert c is not None
        if not seen or seen[-1] != (c["status"], c["tentativas"]):
            seen.append((c["status"], c["tentativas"]))
        if c["status"] in ("CONCLUIDO", "EXCEDIDO"):
            break
        now += 0.05
        dialer.tick(now)
    return seen


def test_dialer_walk_concluido_on_third_try(store: Store) -> None:
    seen = _walk(store, Dialer(store), "41180005", 1_000_000.0)
    assert seen == [
        ("AGUARDANDO", "0"),
        ("Dialing", "1"),
        ("Descartado", "1"),
        ("Dialing", "2"),
        ("Descartado", "2"),
        ("Dialing", "3"),
        ("CONCLUIDO", "3"),
    ]


def test_dialer_walk_excedido(store: Store) -> None:
    seen = _walk(store, Dialer(store, clock_speed=2), "41180009", 1_000_000.0)
    assert seen[-1] == ("EXCEDIDO", "5") and ("Dialing", "5") in seen
    assert all(int(n) <= C.MAX_TRIES for _, n in seen)


def test_dialer_timing_budget() -> None:
    # a fresh contact is visible as AGUARDANDO for FRESH_WAIT, and settles within a few seconds
    assert FRESH_WAIT >= 2 and FRESH_WAIT + 5 * RING + 4 * RETRY <= 7


def test_dialer_channels_bound_the_pace(store: Store) -> None:
    from pbxcheck.central.dialer import CHANNELS

    camp = store.campaign("900")
    assert camp is not None
    dialer = Dialer(store)
    with store.tx():
        for i in range(CHANNELS * 3):
            cols, extra = build_contact(
                camp.nome, {"tel1": f"4118{i:04d}9"}, 0.0, {"status": "AGUARDANDO", "tentativas": "0"}
            )
            store.insert_contact(camp, cols, extra, 1.0)
    dialer.tick(10.0)
    assert store.dialing_counts()["900"] == CHANNELS


# --- faults -------------------------------------------------------------------------------------


def test_faults_registry() -> None:
    assert set(HTTP_FAULTS) <= set(FAULTS)
    for f in HTTP_FAULTS.values():
        assert f.clauses and all(c in C.CLAUSES for c in f.clauses), f.name
    assert validate(["ignore-token"]) == frozenset({"ignore-token"})
    with pytest.raises(ValueError, match="unknown fault"):
        validate(["nope"])


def test_empty_columns_cover_the_contract() -> None:
    assert list(empty_contact_columns()) == list(C.CONTACT_COLUMNS)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.text(max_size=20), min_size=len(C.CONTACT_COLUMNS), max_size=len(C.CONTACT_COLUMNS)))
def test_generated_render_equals_the_generic_one(values: list[str]) -> None:
    cols = dict(zip(C.CONTACT_COLUMNS, values, strict=True))
    plain = fragments.render_plain(cols)
    assert plain == fragments.render_generic(cols)
    assert json.loads(plain)["cliente"] == cols["cliente"]


def test_wait_queue_survives_reopen_and_forgets_deleted(tmp_path: Path) -> None:
    path = str(tmp_path / "q.sqlite3")
    s = Store(path)
    seed(s)
    camp = s.campaign("900")
    assert camp is not None
    dialer = Dialer(s)
    with s.tx():
        ids = [
            s.insert_contact(
                camp,
                *build_contact(camp.nome, {"tel1": f"4118000{i}"}, 0.0, {"status": "AGUARDANDO", "tentativas": "0"}),
                5.0,
            )
            for i in range(3)
        ]
    dialer.tick(1.0)
    assert all(s.contact(i)["status"] == "AGUARDANDO" for i in ids)  # type: ignore[index]
    with s.tx():
        s.db.execute("DELETE FROM contacts WHERE id=?", (ids[0],))
    s.close()
    s = Store(path)  # the queue is rebuilt from the rows' next_at
    dialer = Dialer(s)
    assert dialer.tick(6.0) == 2
    assert [s.contact(i)["status"] for i in ids[1:]] == ["Dialing", "Dialing"]  # type: ignore[index]


def test_call_records_speak_the_contract_vocabulary(store: Store) -> None:
    """statuschamada, tipo and sidehangup of every seeded record are contract values (the SIP side
    writes the same enums), and the unanswered spelling is NOANSWER, never "NO ANSWER"."""
    recs = [json.loads(r) for r in store.calls_since(0, 100_000)]
    assert recs
    seen = {r["statuschamada"] for r in recs}
    assert seen <= set(C.StatusChamada) and C.StatusChamada.NOANSWER in seen
    assert {r["tipo"] for r in recs} <= set(C.TipoChamada)
    assert {r["sidehangup"] for r in recs} <= set(C.SideHangup)
