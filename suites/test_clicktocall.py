"""Click to Call: the answer and ID format (C2C-1), and finding the call by its ID later (C2C-3).

The call goes from the target's first extension to its second, so even against a real central it
stays inside the PBX. The SIP side of it (the origin rings, C2C-2) is the SIP probes' business.
"""

from __future__ import annotations

from typing import Any

import pytest

from pbxcheck.checks import Checker
from pbxcheck.checks.support import CALL_END_WAIT_S, click_to_call, find_call, since_id
from pbxcheck.client import ApiClient
from pbxcheck.contract import ClauseId
from pbxcheck.target import Target


def endpoints(target: Target) -> tuple[str, str]:
    numbers = [
        e.number for e in target.extensions if not e.classe5_client or e.classe5_client != target.disposable_classe5
    ]
    if len(numbers) < 2:
        numbers = [e.number for e in target.extensions]
    if len(numbers) < 2:
        pytest.skip("the target file lists fewer than two extensions")
    return numbers[0], numbers[1]


@pytest.mark.clause(ClauseId.C2C_1)
def test_clicktocall_answer_and_id(api: ApiClient, check: Checker, target: Target) -> None:
    origem, destino = endpoints(target)
    click_to_call(api, check, origem, destino)


@pytest.mark.clause(ClauseId.C2C_3)
def test_clicktocall_id_found_with_call_details(api: ApiClient, check: Checker, target: Target, observe: Any) -> None:
    origem, destino = endpoints(target)
    ex, call_id = click_to_call(api, check, origem, destino)
    since = since_id(call_id)
    row, key = find_call(api, check, call_id, since, ClauseId.C2C_3)
    check(
        row is not None,
        ClauseId.C2C_3,
        f"no statusreport record since {since} carries the click-to-call ID {call_id!r} within {CALL_END_WAIT_S:.0f} s",
        ex,
        api.exchanges[-1],
    )
    assert row is not None
    observe(ClauseId.C2C_3, "found_by", f"statusreport, field {key}")
    values = {str(v) for v in row.values()}
    check(
        origem in values and destino in values,
        ClauseId.C2C_3,
        f"the record with ID {call_id} names neither origem {origem} nor destino {destino} as a whole field: "
        f"{str(row)[:300]}",
        api.exchanges[-1],
    )
