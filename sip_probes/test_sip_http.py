"""HTTP and SIP together: the clauses that need a phone on the line.

* C2C-2 / C2C-3: ``clicktocall`` from our registered extension A to our extension B: A's phone rings
  (the central INVITEs A's binding), A answers, the destination leg happens (B rings and answers),
  and after hang-up the returned ID is found with the call's details.
* RAM-2 / RAM-3 / REC-1: A calls B over SIP; ``statusramais`` read twice mid-call; after hang-up the
  call's GRAVACAO (+ ``.gsm``) downloads as GSM 06.10 of the announced size.
* C5-1: BLOQUEAR the target's disposable classe5 client: its extension's REGISTER (and INVITE) is
  refused; DESBLOQUEAR: accepted again. Always undone in a finalizer, only on that client.

Every call stays inside the PBX (extension to extension): nothing is ever dialled outside.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import pytest

from pbxcheck.checks import Checker, sipkit
from pbxcheck.checks.sipsession import SipSession
from pbxcheck.checks.support import click_to_call, find_call, now_text
from pbxcheck.client import ApiClient
from pbxcheck.contract import (
    CANAL_UP,
    CLASSE5_BLOQUEAR,
    CLASSE5_DESBLOQUEAR,
    DIRECAO_ENTRADA,
    DIRECAO_SAIDA,
    GSM_FRAME_BYTES,
    RAMAL_FIELDS,
    RAMAL_IN_USE,
    Acao,
    ClauseId,
)
from pbxcheck.errors import SipError
from pbxcheck.redact import Redactor
from pbxcheck.sip.ua import UserAgent
from pbxcheck.target import Target

RING_WAIT_S = 6.0  # bounded wait for the central to ring a phone
DTMF_DIGITS = "123"
TALK_S = 0.3  # how long a call stays up before statusramais is read (twice, to see Duracao grow)


def _ramais(api: ApiClient, check: Checker, clause: ClauseId) -> dict[str, dict[str, Any]]:
    ex = api.call(Acao.STATUSRAMAIS)
    rows = check.records(ex, clause)
    return {str(r.get("Ramal")): r for r in rows if isinstance(r, dict)}


async def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` (a phone's state) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _answered(phone: UserAgent) -> bool:
    """A call to the phone was answered (200 sent, ACKed)."""
    return any(c.answered.is_set() for c in phone.calls_in())


def _got_bye(phone: UserAgent) -> bool:
    return any(c.end_reason == "remote BYE" for c in phone.calls_in())


async def _hang_up(phone: UserAgent) -> str:
    """BYE for the newest call the phone answered: the answer's status line, or silence."""
    calls = phone.calls_in()
    if calls:
        with suppress(SipError):
            await calls[-1].hangup(timeout=2.0)
    bye = sipkit.final(calls[-1].answers_to("BYE")) if calls else None
    return bye.start_line if bye else "silence"


async def _in_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    """A blocking API call off the event loop, so the phones keep answering meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))


# --- C2C-2 / C2C-3 -------------------------------------------------------------------------------------


@pytest.mark.clause(ClauseId.C2C_2, ClauseId.C2C_3)
def test_clicktocall_rings_origin_then_destination(
    sip: SipSession, api: ApiClient, check: Checker, observe: Any
) -> None:
    """The origin's phone rings and answers; then some evidence that the leg to destino happened: destino's
    own phone rings (destino is our second extension), or statusramais shows the origin Up with destino,
    or the call record says the call was answered. No evidence at all fails C2C-2."""
    a, b = sip.extensions(2)
    since = now_text(-2)
    evidence: list[str] = []

    async def scenario() -> str:
        pa = await sip.phone(a, "UDP", answer_delay=0.05)
        pb = await sip.phone(b, "UDP", answer_delay=0.05)
        for p in (pa, pb):
            r = await sipkit.register(p, 90)
            sip.check(
                r and r.status == 200,
                ClauseId.C2C_2,
                f"extension {p.config.user} could not register ({r and r.status})",
            )
        call_id: str
        _, call_id = await _in_thread(click_to_call, api, check, a.number, b.number)
        rang = await _wait(lambda: _answered(pa), RING_WAIT_S)
        sip.check(
            pa.calls_in(),
            ClauseId.C2C_2,
            f"clicktocall {a.number} → {b.number} answered CHAMADA OK (ID {call_id}) but the origin "
            f"{a.number}'s registered phone received no INVITE within {RING_WAIT_S:.0f} s",
        )
        sip.check(rang, ClauseId.C2C_2, f"our phone {a.number} answered the click-to-call but the call did not proceed")
        observe(ClauseId.C2C_2, "origin-invite-from", str(pa.calls_in()[0].remote_uri))
        deadline = time.monotonic() + 4.0
        while not evidence and time.monotonic() < deadline:
            if _answered(pb):
                evidence.append(f"destino {b.number}'s phone rang and answered")
                break
            ex = await _in_thread(api.call, Acao.STATUSRAMAIS)
            rows = ex.answer.value if ex.answer is not None and isinstance(ex.answer.value, list) else []
            mine = [r for r in rows if isinstance(r, dict) and str(r.get("Ramal")) == a.number]
            if any(
                r.get("StatusCanal") == CANAL_UP and b.number in f"{r.get('Callerid')} {r.get('Extension')}"
                for r in mine
            ):
                evidence.append(f"statusramais showed {a.number} Up with {b.number}")
                break
            await _wait(lambda: _answered(pb), 0.3)
        if not _got_bye(pa):
            observe(ClauseId.C2C_2, "origin-hangup", await _hang_up(pa))
        await _wait(lambda: _got_bye(pb), 1.0 if pb.calls_in() else 0.01)
        if not _got_bye(pb) and pb.calls_in():
            await _hang_up(pb)
        for p in (pa, pb):
            await sipkit.register(p, 0)
        return call_id

    call_id = sip.run(scenario(), timeout=30)
    row, key = find_call(api, check, call_id, since, ClauseId.C2C_3, wait_s=8.0)
    if row is not None and str(row.get("statuschamada", "")).upper() == "ANSWER":
        evidence.append(f"the call record {call_id} says statuschamada ANSWER")
    observe(ClauseId.C2C_2, "destination-leg-evidence", evidence)
    sip.check(
        evidence,
        ClauseId.C2C_2,
        f"the origin {a.number} answered, but nothing shows the leg to destino {b.number} happened: its "
        f"phone never rang, statusramais never showed {a.number} Up with {b.number}, and no answered call "
        f"record carries ID {call_id}",
    )
    sip.check(
        row is not None,
        ClauseId.C2C_3,
        f"no statusreport record since {since} carries the click-to-call ID {call_id!r}",
    )
    assert row is not None
    observe(ClauseId.C2C_3, "sip.found_by", f"statusreport, field {key}")
    values = {str(v) for v in row.values()}
    sip.check(
        a.number in values and b.number in values,
        ClauseId.C2C_3,
        f"the record with ID {call_id} does not name origem {a.number} and destino {b.number}: {str(row)[:300]}",
    )
    details = {k: row.get(k) for k in ("gravacao", "duracao", "statuschamada", "ramal", "numero") if k in row}
    observe(ClauseId.C2C_3, "sip.details", details)
    sip.check(
        all(k in row for k in ("duracao", "statuschamada", "gravacao")),
        ClauseId.C2C_3,
        f"the record with ID {call_id} lacks the call's details (gravacao, duracao, statuschamada): {sorted(row)[:40]}",
    )


# --- RAM-2 / RAM-3 / REC-1 -------------------------------------------------------------------------------


@dataclass
class LiveCall:
    session: SipSession
    caller: str
    callee: str
    ok: bool = False
    problem: str = ""
    snapshots: list[tuple[float, dict[str, dict[str, Any]]]] = field(default_factory=list)
    gravacao: str | None = None
    gravacao_from: str = ""
    record: dict[str, Any] | None = None
    info_answers: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def live_call(target: Target, redactor: Redactor) -> Iterator[LiveCall]:
    """One SIP call A → B with statusramais read twice while it is up, then hung up (shared by RAM-2/3, REC-1)."""
    session = SipSession(target, redactor, "live call for RAM-2/RAM-3/REC-1")
    a, b = session.extensions(2)
    live = LiveCall(session, a.number, b.number)
    api = ApiClient(target, source_ip=target.source_ip)
    since = now_text(-2)

    async def scenario() -> None:
        pa = await session.phone(a, "UDP")
        pb = await session.phone(b, "UDP", answer_delay=0.1)
        for p in (pa, pb):
            if (r := await sipkit.register(p, 90)) is None or r.status != 200:
                live.problem = f"{p.config.user} could not register"
                return
        call = await sipkit.call(pa, b.number, hangup=False)
        if not call.answered.is_set():
            live.problem = f"the call {a.number} → {b.number} failed: {call.failure or 'no final answer'}"
            return
        live.ok = True
        # "digits typed in the IVR": DTMF as SIP INFO (application/dtmf-relay), the usual out-of-band form
        try:
            live.info_answers = [str(s) for s in await call.send_dtmf(DTMF_DIGITS)]
        except SipError:
            live.info_answers.append("silence")
        for i in range(2):
            await asyncio.sleep(TALK_S if i == 0 else 1.1)
            ex = await _in_thread(api.call, Acao.STATUSRAMAIS)
            rows = ex.answer.value if ex.answer is not None and isinstance(ex.answer.value, list) else []
            live.snapshots.append((time.time(), {str(r.get("Ramal")): r for r in rows if isinstance(r, dict)}))
        with suppress(SipError):
            await call.hangup(timeout=2.0)
        for p in (pa, pb):
            await sipkit.register(p, 0)

    try:
        session.run(scenario(), timeout=25)
    except AssertionError as exc:
        live.problem = str(exc)
    for _, rows in live.snapshots:
        for r in (rows.get(a.number), rows.get(b.number)):
            if r and r.get("GRAVACAO"):
                live.gravacao, live.gravacao_from = str(r["GRAVACAO"]), "statusramais"
                break
        if live.gravacao:
            break
    # the call record: its gravacao when statusramais gave none, and its size (REC-1)
    deadline = time.monotonic() + 6.0
    while live.ok and time.monotonic() < deadline:
        ex = api.call(Acao.STATUSREPORT, datainicial=since)
        records = ex.answer.value if ex.answer is not None and isinstance(ex.answer.value, list) else []
        for rec in records:
            vals = {str(v) for v in rec.values()} if isinstance(rec, dict) else set()
            if (
                a.number in vals
                and b.number in vals
                and (not live.gravacao or live.gravacao in vals or live.gravacao in str(rec.get("gravacao", "")))
            ):
                live.record = rec
        if live.record is not None:
            break
        time.sleep(0.4)
    if live.gravacao is None and live.record is not None and live.record.get("gravacao"):
        live.gravacao, live.gravacao_from = str(live.record["gravacao"]), "statusreport"
    api.close()
    yield live


@pytest.mark.clause(ClauseId.RAM_2)
def test_statusramais_mid_call(live_call: LiveCall, observe: Any) -> None:
    s = live_call.session
    try:
        s.check(live_call.ok, ClauseId.RAM_2, f"no call to observe: {live_call.problem}")
        s.check(len(live_call.snapshots) == 2, ClauseId.RAM_2, "statusramais could not be read twice mid-call")
        a, b = live_call.caller, live_call.callee
        durations: list[tuple[int, int]] = []
        for _, rows in live_call.snapshots:
            ra, rb = rows.get(a), rows.get(b)
            s.check(
                ra and rb,
                ClauseId.RAM_2,
                f"statusramais mid-call lists no object for {a if not ra else b}: {sorted(rows)}",
            )
            assert ra is not None and rb is not None
            for r, other, direcao in ((ra, b, DIRECAO_SAIDA), (rb, a, DIRECAO_ENTRADA)):
                who = r.get("Ramal")
                s.check(
                    r.get("Status") == RAMAL_IN_USE,
                    ClauseId.RAM_2,
                    f"{who} is talking but statusramais says Status {r.get('Status')!r}, not {RAMAL_IN_USE!r}",
                )
                s.check(
                    r.get("StatusCanal") == CANAL_UP,
                    ClauseId.RAM_2,
                    f"{who}: StatusCanal {r.get('StatusCanal')!r}, not {CANAL_UP!r}",
                )
                s.check(
                    r.get("Direcao") == direcao,
                    ClauseId.RAM_2,
                    f"{who} {'placed' if direcao == DIRECAO_SAIDA else 'received'} the call: Direcao "
                    f"{r.get('Direcao')!r}, expected {direcao!r}",
                )
                s.check(
                    other in str(r.get("Callerid", "")),
                    ClauseId.RAM_2,
                    f"{who}: Callerid {r.get('Callerid')!r} does not name the other party {other}",
                )
            for name in ("IDCHAMADA", "GRAVACAO"):
                s.check(
                    ra.get(name) and ra.get(name) == rb.get(name),
                    ClauseId.RAM_2,
                    f"both legs must carry the same non-empty {name}: {ra.get(name)!r} vs {rb.get(name)!r}",
                )
            try:
                durations.append((int(ra.get("Duracao", "")), int(rb.get("Duracao", ""))))
            except (TypeError, ValueError):
                s.fail(ClauseId.RAM_2, f"Duracao is not a whole number of seconds: {ra.get('Duracao')!r}")
        observe(ClauseId.RAM_2, "duracao", durations)
        s.check(
            durations[1][0] > durations[0][0] and durations[1][1] > durations[0][1],
            ClauseId.RAM_2,
            f"Duracao does not grow between two reads 1.1 s apart: {durations}",
        )
    finally:
        s.attach(failed=False)


@pytest.mark.clause(ClauseId.RAM_3, ClauseId.REC_1)
def test_json_fields_and_gravacao_after_hangup(live_call: LiveCall, api: ApiClient, observe: Any) -> None:
    s = live_call.session
    try:
        s.check(live_call.ok, ClauseId.RAM_3, f"no call to observe: {live_call.problem}")
        for _, rows in live_call.snapshots:
            for who in (live_call.caller, live_call.callee):
                r = rows.get(who) or {}
                missing = [f for f in RAMAL_FIELDS if f.startswith("JSON") and f not in r]  # the rest is RAM-1's
                s.check(not missing or not r, ClauseId.RAM_3, f"{who}: statusramais object lacks {missing}")
        if live_call.snapshots:
            last = live_call.snapshots[-1][1]
            json_now = {
                w: [last.get(w, {}).get(f"JSON{i}") for i in (1, 2, 3)] for w in (live_call.caller, live_call.callee)
            }
            observe(ClauseId.RAM_3, "json-during-call", json_now)
            # which JSON variable a central fills, and from what, is its dialplan's business (the document's
            # example is an IVR): the DTMF sent as INFO is recorded, not required
            reflected = any(DTMF_DIGITS in str(v[0] or "") for v in json_now.values())
            observe(ClauseId.RAM_3, "dtmf-info", {"sent": DTMF_DIGITS, "info-answers": live_call.info_answers})
            observe(
                ClauseId.RAM_3, "json1-set-by-dtmf", reflected
            )  # pinnable: [pins] "RAM-3.json1-set-by-dtmf" = "true"
        s.check(
            live_call.gravacao,
            ClauseId.RAM_3,
            "neither statusramais during the call nor the call record after it names a GRAVACAO",
        )
        assert live_call.gravacao is not None
        observe(ClauseId.RAM_3, "gravacao-from", live_call.gravacao_from)
        resp = api.recording(live_call.gravacao.replace("\\", "/"))
        if resp.status_code in (401, 403):
            resp = api.get(f"/gravador28/{live_call.gravacao}.gsm", auth=True)
        s.check(
            resp.status_code == 200,
            ClauseId.RAM_3,
            f"GRAVACAO {live_call.gravacao!r} + .gsm does not download after hang-up: HTTP {resp.status_code}",
        )
        problem = gsm_problem(resp.content, (live_call.record or {}).get("tamanho_gravacao"))
        s.check(problem is None, ClauseId.REC_1, f"recording {live_call.gravacao!r}.gsm: {problem}")
    finally:
        s.attach(failed=False)


def gsm_problem(data: bytes, size: Any) -> str | None:
    """Why ``data`` is not GSM 06.10 of ``size`` bytes, or None."""
    if not data or len(data) % GSM_FRAME_BYTES:
        return f"{len(data)} bytes is not a whole number of {GSM_FRAME_BYTES}-byte GSM 06.10 frames"
    if any(data[i] >> 4 != 0xD for i in range(0, len(data), GSM_FRAME_BYTES)):
        return "frames lack the GSM 06.10 signature nibble 0xD"
    if size not in (None, "") and str(size) != str(len(data)):
        return f"the record says tamanho_gravacao {size}, the file has {len(data)} bytes"
    return None


# --- C5-1 --------------------------------------------------------------------------------------------------


@pytest.mark.clause(ClauseId.C5_1)
def test_classe5_block_refuses_register(
    sip: SipSession, api: ApiClient, check: Checker, observe: Any, request: pytest.FixtureRequest
) -> None:
    t = sip.target
    own = [e for e in t.extensions if e.classe5_client == t.disposable_classe5]
    if not own:
        pytest.skip(f"no extension of the disposable classe5 client {t.disposable_classe5!r} in the target file")
    ext = own[0]
    others = [e for e in t.extensions if e.classe5_client != t.disposable_classe5]

    def undo() -> None:
        with ApiClient(t, source_ip=t.source_ip) as c:
            c.call(Acao.BLOQUEIOCLASSE5, logincliente=t.disposable_classe5, classe5acao=CLASSE5_DESBLOQUEAR)

    async def register(label: str) -> int | None:
        phone = await sip.phone(ext, "UDP")
        r = await sipkit.register(phone, 60)
        status = r.status if r else None
        observe(ClauseId.C5_1, f"sip.register-{label}", status)
        if status == 200:
            await sipkit.register(phone, 0)
        return status

    async def invite(label: str) -> int | None:
        if not others:
            return None
        phone = await sip.phone(ext, "UDP")
        call = await sipkit.call(phone, others[0].number, hold=0.05, ring_timeout=2.0)
        f = sipkit.final(call.answers_to("INVITE"))
        observe(ClauseId.C5_1, f"sip.invite-{label}", f.start_line if f else "silence")
        return f.status if f else None

    before = sip.run(register("before"))
    sip.check(
        before == 200,
        ClauseId.C5_1,
        f"{ext.number} (client {t.disposable_classe5}) does not register even before any block: {before}",
    )
    request.addfinalizer(undo)
    ex = api.call(Acao.BLOQUEIOCLASSE5, logincliente=t.disposable_classe5, classe5acao=CLASSE5_BLOQUEAR)
    observe(
        ClauseId.C5_1, "sip.bloquear-answer", ex.answer.value if ex.answer else ex.raw[:100].decode("utf-8", "replace")
    )
    blocked = sip.run(register("blocked"))
    sip.check(
        blocked != 200,
        ClauseId.C5_1,
        f"client {t.disposable_classe5} is BLOQUEADO but its extension {ext.number} still registers (200 OK)",
    )
    blocked_call = sip.run(invite("blocked"))
    sip.check(
        blocked_call != 200,
        ClauseId.C5_1,
        f"client {t.disposable_classe5} is BLOQUEADO but its extension {ext.number} still places a call",
    )
    ex = api.call(Acao.BLOQUEIOCLASSE5, logincliente=t.disposable_classe5, classe5acao=CLASSE5_DESBLOQUEAR)
    observe(ClauseId.C5_1, "sip.desbloquear-answer", ex.answer.value if ex.answer else None)
    after = sip.run(register("after"))
    sip.check(after == 200, ClauseId.C5_1, f"after DESBLOQUEAR, {ext.number} still cannot register: {after}")
