"""Chamadas, Callcenter, Gravações: statusreport, statusoperacoes, recordings (REP-*, OPS-1, REC-*)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from pbxcheck.checks import Checker
from pbxcheck.checks.support import EPOCH, is_status_pair, report, timestamp_of, today_midnight
from pbxcheck.client import ApiClient, Exchange
from pbxcheck.contract import GSM_FRAME_BYTES, RECORDINGS_PATH, REPORT_MAX_ROWS, Acao, ClauseId
from pbxcheck.redact import Redactor
from pbxcheck.target import Target

EVENT_KINDS = re.compile(r"LOGIN|LOGOUT|PAUSA|PAUSE", re.IGNORECASE)
MAX_RECORDINGS = 3


def _stamps(check: Checker, rows: list[dict[str, Any]], ex: Exchange, clause: ClauseId) -> list[str]:
    stamps = []
    for i, row in enumerate(rows):
        ts = timestamp_of(row)
        check(ts is not None, clause, f"record #{i} carries no YYYY-MM-DD HH:ii:ss instant: {str(row)[:200]}", ex)
        stamps.append(str(ts))
    return stamps


def _since_check(check: Checker, rows: list[dict[str, Any]], ex: Exchange, since: str, clause: ClauseId) -> None:
    stamps = _stamps(check, rows, ex, clause)
    early = [s for s in stamps if s < since]
    check(
        not early,
        clause,
        f"{len(early)} of {len(rows)} records are before datainicial {since} (earliest {min(early) if early else ''})",
        ex,
    )


@pytest.mark.clause(ClauseId.REP_1)
def test_report_rows_at_or_after_datainicial_at_most_500(api: ApiClient, check: Checker, observe: Any) -> None:
    ex, rows = report(api, check, ClauseId.REP_1, datainicial=EPOCH)
    check(len(rows) <= REPORT_MAX_ROWS, ClauseId.REP_1, f"{len(rows)} records, more than {REPORT_MAX_ROWS}", ex)
    _since_check(check, rows, ex, EPOCH, ClauseId.REP_1)
    check(rows, ClauseId.REP_1, "no call record at all since 2000: nothing to check the filter on", ex)
    # A datainicial inside the data: everything before it must go.
    stamps = sorted(_stamps(check, rows, ex, ClauseId.REP_1))
    middle = stamps[len(stamps) // 2]
    ex2, rows2 = report(api, check, ClauseId.REP_1, datainicial=middle)
    check(len(rows2) <= REPORT_MAX_ROWS, ClauseId.REP_1, f"{len(rows2)} records, more than {REPORT_MAX_ROWS}", ex2)
    _since_check(check, rows2, ex2, middle, ClauseId.REP_1)
    observe(ClauseId.REP_1, "rows_since_2000", len(rows))


@pytest.mark.clause(ClauseId.REP_2)
def test_empty_datainicial_means_today(api: ApiClient, check: Checker) -> None:
    midnight = today_midnight()
    ex, rows = report(api, check, ClauseId.REP_2, datainicial="")
    check(len(rows) <= REPORT_MAX_ROWS, ClauseId.REP_1, f"{len(rows)} records, more than {REPORT_MAX_ROWS}", ex)
    # Records before today in the explicit query are the filter's fault (REP-1); only records before
    # today that the explicit query does not give are the empty date read as something else (REP-2).
    ex_today, explicit = report(api, check, ClauseId.REP_1, datainicial=midnight)
    _since_check(check, explicit, ex_today, midnight, ClauseId.REP_1)
    stamps = _stamps(check, rows, ex, ClauseId.REP_2)
    if all(s >= midnight for s in stamps):
        return
    # The central's "today" may be another date than ours (another time zone): one single date,
    # next to ours, is still "today"; several dates, or one far off, are not.
    days = sorted({s[:10] for s in stamps})
    ours = date.fromisoformat(midnight[:10])
    check(
        len(days) == 1 and abs(date.fromisoformat(days[0]) - ours) <= timedelta(days=1),
        ClauseId.REP_2,
        f"an empty datainicial gave records of {len(days)} day(s) ({', '.join(days[:5])}), not today's ({ours})",
        ex,
    )


@pytest.mark.clause(ClauseId.REP_2)
@pytest.mark.parametrize("bad", ["2020-13-45 99:99:99", "ontem", "01/02/2020 00:00:00", "2020-01-02T00:00:00Z"])
def test_malformed_datainicial_no_error_no_dump(api: ApiClient, check: Checker, observe: Any, bad: str) -> None:
    ex = api.call(Acao.STATUSREPORT, datainicial=bad)
    value = check.value(ex, ClauseId.REP_2)
    if isinstance(value, list) and all(isinstance(r, dict) for r in value):
        # Read as "no usable date": acceptable only as today's records, never the whole history.
        _since_check(check, value, ex, today_midnight(), ClauseId.REP_2)
        observe(ClauseId.REP_2, "malformed_date", "today's records")
    else:
        check(
            is_status_pair(value) or ex.status_code in (400, 422),
            ClauseId.REP_2,
            f"a malformed datainicial got neither records nor a Status answer: {str(value)[:200]}",
            ex,
        )
        observe(ClauseId.REP_2, "malformed_date", value)


@pytest.mark.clause(ClauseId.REP_1)
def test_inicio_alias(api: ApiClient, check: Checker, observe: Any) -> None:
    """AMB-3: the Python example sends ``inicio``; record whether the target honours it."""
    ex, rows = report(api, check, ClauseId.REP_1, datainicial=EPOCH)
    stamps = sorted(str(timestamp_of(r)) for r in rows if timestamp_of(r))
    if not stamps:
        pytest.skip("no call records to tell a filter from none")
    middle = stamps[len(stamps) // 2]
    alias = api.call(Acao.STATUSREPORT, inicio=middle)
    value = check.value(alias, ClauseId.REP_1)
    if isinstance(value, list) and all(isinstance(r, dict) for r in value):
        honoured = all(str(timestamp_of(r)) >= middle for r in value)
        observe(ClauseId.REP_1, "inicio_alias", "honoured as datainicial" if honoured else "ignored")
    else:
        observe(ClauseId.REP_1, "inicio_alias", value)


@pytest.mark.clause(ClauseId.OPS_1)
def test_operator_events_since_datainicial(api: ApiClient, check: Checker, observe: Any) -> None:
    ex, events = report(api, check, ClauseId.OPS_1, Acao.STATUSOPERACOES, datainicial=EPOCH)
    check(events, ClauseId.OPS_1, "no login, logout or pause event at all since 2000", ex)
    _since_check(check, events, ex, EPOCH, ClauseId.OPS_1)
    kinds: set[str] = set()
    for i, ev in enumerate(events):
        found = [m.group(0).upper() for v in ev.values() if isinstance(v, str) for m in [EVENT_KINDS.search(v)] if m]
        check(found, ClauseId.OPS_1, f"event #{i} names no login, logout or pause: {str(ev)[:200]}", ex)
        kinds.update(found)
    stamps = sorted(_stamps(check, events, ex, ClauseId.OPS_1))
    middle = stamps[len(stamps) // 2]
    ex2, later = report(api, check, ClauseId.OPS_1, Acao.STATUSOPERACOES, datainicial=middle)
    _since_check(check, later, ex2, middle, ClauseId.OPS_1)
    observe(ClauseId.OPS_1, "event_kinds", sorted(kinds))


# --- recordings ---------------------------------------------------------------------------------------------


def _recordings(api: ApiClient, check: Checker) -> list[tuple[str, str | None]]:
    _, rows = report(api, check, ClauseId.REC_1, datainicial=EPOCH)
    found: list[tuple[str, str | None]] = []
    for row in rows:
        name = row.get("gravacao") or row.get("GRAVACAO")
        if isinstance(name, str) and name:
            size = row.get("tamanho_gravacao")
            found.append((name, str(size) if size not in (None, "") else None))
        if len(found) >= MAX_RECORDINGS:
            break
    return found


def _describe_get(url: str, resp: httpx.Response | None, redactor: Redactor, target: Target, note: str = "") -> str:
    got = (
        "no answer"
        if resp is None
        else (f"HTTP {resp.status_code}, {len(resp.content)} bytes, first bytes {resp.content[:8].hex(' ')}")
    )
    flags = "-k " if target.insecure else (f"--cacert {target.ca_file} " if target.ca_file else "")
    return redactor.text(f"sent:    GET {url}\ngot:     {got}{note}\nrepro:   curl -sS {flags}-o rec.gsm '{url}'")


@pytest.mark.clause(ClauseId.REC_1)
def test_recording_is_gsm_of_the_announced_size(
    api: ApiClient, check: Checker, target: Target, redactor: Redactor, observe: Any
) -> None:
    recs = _recordings(api, check)
    check(recs, ClauseId.REC_1, "no call record since 2000 names a recording (gravacao)", api.exchanges[-1])
    for name, size in recs:
        path = name.replace("\\", "/") if "\\" in name else name  # AMB-6 style names
        resp = api.recording(path)
        if resp.status_code in (401, 403):
            resp = api.get(RECORDINGS_PATH + path + ".gsm", auth=True)
        url = str(resp.request.url).split("?")[0]
        data = resp.content
        where = _describe_get(url, resp, redactor, target)
        check(resp.status_code == 200, ClauseId.REC_1, f"recording {name!r} does not download\n\n{where}")
        check(
            data and len(data) % GSM_FRAME_BYTES == 0,
            ClauseId.REC_1,
            f"{len(data)} bytes is not a whole number of {GSM_FRAME_BYTES}-byte GSM 06.10 frames\n\n{where}",
        )
        bad = [i for i in range(0, len(data), GSM_FRAME_BYTES) if data[i] >> 4 != 0xD]
        check(
            not bad,
            ClauseId.REC_1,
            f"{len(bad)} of {len(data) // GSM_FRAME_BYTES} frames lack the GSM signature "
            f"nibble 0xD (first at byte {bad[0] if bad else 0})\n\n{where}",
        )
        if size is not None:
            check(
                str(len(data)) == size,
                ClauseId.REC_1,
                f"the record says tamanho_gravacao {size}, the file has {len(data)} bytes\n\n{where}",
            )


@pytest.mark.clause(ClauseId.REC_2)
def test_recording_without_credentials(api: ApiClient, check: Checker, target: Target, finding: Any) -> None:
    recs = _recordings(api, check)
    if not recs:
        pytest.skip("no recording named in the call history")
    name = recs[0][0]
    resp = api.recording(name)  # GET with no credential at all
    check(resp.status_code < 500, ClauseId.REC_2, f"GET of a recording without credentials: HTTP {resp.status_code}")
    if resp.status_code == 200 and resp.content:
        finding(
            ClauseId.REC_2,
            "medium",
            f"a call recording downloads with no credential at all ({len(resp.content)} "
            f"bytes from {RECORDINGS_PATH}<gravacao>.gsm); recording names follow a "
            "guessable date/extension/uniqueid pattern",
        )
