"""CL-REP-1 (500 records: ask again from the last one's instant) and CL-ERR-1 (a refused call is a
failure to the client: no silent loss, no tight retry loop), read off the calls and the exit codes."""

from __future__ import annotations

import json
from typing import Any

from .. import contract as C
from ..contract import ClauseId
from .recorder import Exchange
from .verdicts import CHAOS_PREFIX, NORMAL, ClauseVerdict, Evidence

REPORT_ACOES = (C.Acao.STATUSREPORT.value, C.Acao.STATUSOPERACOES.value)
TIGHT_WINDOW_S = 2.0
TIGHT_MAX = 5  # more sends than this of one refused call within the window is a tight loop


def records(ex: Exchange) -> list[dict[str, Any]]:
    try:
        data = json.loads(ex.answer.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []


def asked_from(ex: Exchange) -> str | None:
    """The instant a report call asks from (datainicial, or the examples' inicio)."""
    data = ex.json()
    if not isinstance(data, dict):
        return None
    value = data.get("datainicial", data.get(C.DATAINICIAL_ALIAS))
    return value if isinstance(value, str) else None


def judge_rep_1(ev: Evidence) -> ClauseVerdict:
    v = ClauseVerdict(ClauseId.CL_REP_1)
    calls = sorted((e for e in ev.of(NORMAL) if e.acao in REPORT_ACOES and not e.chaos), key=lambda e: e.at)
    most: dict[str, int] = {}
    for i, ex in enumerate(calls):
        got = records(ex)
        acao = ex.acao or ""
        most[acao] = max(most.get(acao, 0), len(got))
        if len(got) != C.REPORT_MAX_ROWS:
            continue
        check = f"{NORMAL}/{acao}"
        v.checked.append(check)
        last = str(got[-1].get("datahora", ""))
        later = [asked_from(e) for e in calls[i + 1 :] if e.acao == acao]
        v.observations.append((f"{acao}/500 records, the last at", last))
        if last and last in later:
            continue
        if not later:
            v.fail(check, f"{acao} answered {C.REPORT_MAX_ROWS} records; the client never asked again", ex)
        else:
            v.fail(
                check,
                f"{acao} answered {C.REPORT_MAX_ROWS} records; the client asked again from {later[0]!r},"
                " not from the last record's instant",
                ex,
            )
    v.checked = list(dict.fromkeys(v.checked))
    if not v.checked:
        v.not_applicable = (
            "the client never got 500 records (" + ", ".join(f"{a}: at most {n}" for a, n in most.items()) + ")"
            if most
            else "the client never read statusreport or statusoperacoes"
        )
    return v


def _tightest(calls: list[Exchange]) -> int:
    """The most sends of one identical refused call within TIGHT_WINDOW_S."""
    by_body: dict[bytes, list[float]] = {}
    for e in calls:
        by_body.setdefault(e.body, []).append(e.at)
    worst = 0
    for times in by_body.values():
        times.sort()
        start = 0
        for end, t in enumerate(times):
            while t - times[start] > TIGHT_WINDOW_S:
                start += 1
            worst = max(worst, end - start + 1)
    return worst


def judge_err_1(ev: Evidence) -> ClauseVerdict:
    v = ClauseVerdict(ClauseId.CL_ERR_1)
    for phase in ev.chaos_phases():
        kind = phase.removeprefix(CHAOS_PREFIX)
        run = ev.runs[phase]
        refused = [e for e in ev.of(phase) if e.chaos]
        if not refused:
            continue
        v.checked.append(phase)
        acoes = ", ".join(dict.fromkeys(e.acao or e.line() for e in refused))
        ended = "did not end in time (stopped)" if run.timed_out else f"exited {run.exit_code}"
        v.observations.append((phase, f"{len(refused)} call(s) refused ({acoes}); the command {ended}"))
        inserts = [e for e in refused if e.acao == C.Acao.INSERT.value]
        if inserts and run.exit_code == 0:
            v.fail(
                phase, f"{kind}: {len(inserts)} insert(s) refused, yet the command exited 0 (silent loss)", *inserts[:3]
            )
        tight = _tightest(refused)
        if tight > TIGHT_MAX:
            v.fail(
                phase,
                f"{kind}: one refused call sent {tight} times within {TIGHT_WINDOW_S:g} s (tight retry loop)",
                *refused[:3],
            )
    if not v.checked:
        v.not_applicable = "the command made no call in the chaos phases"
    return v
