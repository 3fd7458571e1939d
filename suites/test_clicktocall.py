"""Click to Call: the answer and ID format (C2C-1), and finding the call by its ID later (C2C-3).

The call goes from the target's first extension to its second, so even against a real central it
stays inside the PBX. The SIP side of it (the origin rings, C2C-2) is the SIP probes' business.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from pbxcheck.checks import Checker
from pbxcheck.client import ApiClient, Exchange
from pbxcheck.contract import CHAMADA_OK, DATE_FORMAT, ID, STATUS, Acao
from pbxcheck.target import Target

CALL_END_WAIT_S = 20.0  # bounded wait for the click-to-call's record to appear
POLL_S = 0.5


def endpoints(target: Target) -> tuple[str, str]:
    numbers = [e.number for e in target.extensions if not e.classe5_client or
               e.classe5_client != target.disposable_classe5]
    if len(numbers) < 2:
        numbers = [e.number for e in target.extensions]
    if len(numbers) < 2:
        pytest.skip("the target file lists fewer than two extensions")
    return numbers[0], numbers[1]


def id_pattern(origem: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(origem)}_(\d{{14}})_(\d+)$")


def click_to_call(api: ApiClient, check: Checker, origem: str, destino: str) -> tuple[Exchange, str]:
    """C2C-1's checks on one click-to-call; returns the exchange and the call ID."""
    ex = api.call(Acao.CLICKTOCALL, origem=origem, destino=destino)
    value = check.value(ex, "C2C-1")
    check(isinstance(value, list) and len(value) == 4 and all(isinstance(v, str) for v in value), "C2C-1",
          f'expected ["{STATUS}","{CHAMADA_OK}","{ID}","<origem>_<YYYYmmddHHMMSS>_<digits>"], got {value!r}', ex)
    check(value[:3] == [STATUS, CHAMADA_OK, ID], "C2C-1",
          f'expected ["{STATUS}","{CHAMADA_OK}","{ID}", …], got {value[:3]!r}', ex)
    m = id_pattern(origem).match(value[3])
    check(m, "C2C-1", f"ID {value[3]!r} is not <origem>_<YYYYmmddHHMMSS>_<digits> for origem {origem}", ex)
    assert m is not None
    try:
        stamp = datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    except ValueError:
        check.fail("C2C-1", f"ID {value[3]!r}: {m.group(1)} is not a date and time", ex)
    check(abs(stamp - datetime.now()) < timedelta(days=1), "C2C-1",
          f"ID {value[3]!r}: its time {stamp} is not today's call", ex)
    return ex, value[3]


def since_id(call_id: str) -> str:
    """A datainicial just before the call, by the central's own clock (the ID's time is its local
    time, which need not be ours)."""
    stamp = datetime.strptime(call_id.split("_")[-2], "%Y%m%d%H%M%S")
    return (stamp - timedelta(seconds=5)).strftime(DATE_FORMAT)


@pytest.mark.clause("C2C-1")
def test_clicktocall_answer_and_id(api: ApiClient, check: Checker, target: Target) -> None:
    origem, destino = endpoints(target)
    click_to_call(api, check, origem, destino)


def find_call(api: ApiClient, check: Checker, call_id: str, since: str, clause: str,
              wait_s: float = CALL_END_WAIT_S) -> tuple[dict[str, Any] | None, str | None]:
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


@pytest.mark.clause("C2C-3")
def test_clicktocall_id_found_with_call_details(api: ApiClient, check: Checker, target: Target,
                                                observe: Any) -> None:
    origem, destino = endpoints(target)
    ex, call_id = click_to_call(api, check, origem, destino)
    since = since_id(call_id)
    row, key = find_call(api, check, call_id, since, "C2C-3")
    check(row is not None, "C2C-3", f"no statusreport record since {since} carries the click-to-call ID "
                                    f"{call_id!r} within {CALL_END_WAIT_S:.0f} s", ex, api.exchanges[-1])
    assert row is not None
    observe("C2C-3", "found_by", f"statusreport, field {key}")
    values = {str(v) for v in row.values()}
    check(origem in values and destino in values, "C2C-3",
          f"the record with ID {call_id} names neither origem {origem} nor destino {destino} as a whole field: "
          f"{str(row)[:300]}", api.exchanges[-1])
