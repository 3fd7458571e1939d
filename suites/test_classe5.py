"""Bloqueio/Desbloqueio Cliente Classe5 (C5-1), as far as HTTP can see it.

Only the target's disposable client is ever blocked, and it is unblocked in a finalizer whatever
happens. The answer strings are [unspecified]: observed, and pinned if the target file says so. The
effect HTTP can see: while blocked, a click-to-call from one of the client's extensions must not
connect. (Registration refused while blocked is the SIP probes' half of C5-1.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pbxcheck.checks import Checker, target_is_local
from pbxcheck.checks.support import find_call, is_status_pair, now_text, since_id
from pbxcheck.client import ApiClient, Exchange
from pbxcheck.contract import (
    CHAMADA_OK,
    CLASSE5_BLOQUEAR,
    CLASSE5_DESBLOQUEAR,
    ERRO_PROTOCOLO,
    LOGIN_INVALIDO,
    Acao,
    ClauseId,
)
from pbxcheck.target import Target

BLOCKED_CALL_WAIT_S = 8.0


def _blocking(api: ApiClient, check: Checker, target: Target, acao: str) -> Exchange:
    ex = api.call(Acao.BLOQUEIOCLASSE5, logincliente=target.disposable_classe5, classe5acao=acao)
    value = check.value(ex, ClauseId.C5_1)
    check(is_status_pair(value), ClauseId.C5_1, f'{acao}: expected a ["Status", …] answer, got {value!r}', ex)
    check(
        value[1] not in (LOGIN_INVALIDO, ERRO_PROTOCOLO),
        ClauseId.C5_1,
        f"{acao} with valid credentials was denied: {value!r}",
        ex,
    )
    return ex


@pytest.fixture
def blocked(api: ApiClient, check: Checker, target: Target) -> Iterator[Exchange]:
    try:
        yield _blocking(api, check, target, CLASSE5_BLOQUEAR)
    finally:
        with ApiClient(target) as c:
            c.call(Acao.BLOQUEIOCLASSE5, logincliente=target.disposable_classe5, classe5acao=CLASSE5_DESBLOQUEAR)


@pytest.mark.clause(ClauseId.C5_1)
def test_bloquear_then_desbloquear(
    api: ApiClient, check: Checker, target: Target, observe: Any, blocked: Exchange
) -> None:
    observe(ClauseId.C5_1, "bloquear", blocked.answer.value if blocked.answer else None)
    ex = _blocking(api, check, target, CLASSE5_DESBLOQUEAR)
    observe(ClauseId.C5_1, "desbloquear", ex.answer.value if ex.answer else None)


@pytest.mark.clause(ClauseId.C5_1)
def test_blocked_client_cannot_click_to_call(
    api: ApiClient, check: Checker, target: Target, observe: Any, blocked: Exchange
) -> None:
    own = [e.number for e in target.extensions if e.classe5_client == target.disposable_classe5]
    if not own:
        pytest.skip("no extension of the disposable classe5 client in the target file")
    destino = own[1] if len(own) > 1 else own[0]
    ex = api.call(Acao.CLICKTOCALL, origem=own[0], destino=destino)
    value = check.value(ex, ClauseId.C5_1)
    observe(ClauseId.C5_1, "clicktocall_while_blocked", value)
    if not (isinstance(value, list) and value[1:2] == [CHAMADA_OK] and len(value) == 4):
        return  # refused: the block shows
    # Accepted: acceptable only if the call then never connects.
    try:
        since = since_id(value[3])
    except ValueError:
        since = now_text(-60)  # an ID without the document's time part: our clock, with a margin
    row, _ = find_call(api, check, value[3], since, ClauseId.C5_1, wait_s=BLOCKED_CALL_WAIT_S)
    check(
        row is None or row.get("statuschamada") not in ("ANSWER",),
        ClauseId.C5_1,
        f"while {target.disposable_classe5} is blocked, a click-to-call from its extension {own[0]} "
        f"was placed and answered: {str(row)[:200]}",
        ex,
        api.exchanges[-1],
    )


@pytest.mark.clause(ClauseId.C5_1)
def test_unknown_client_and_unknown_classe5acao(api: ApiClient, check: Checker, target: Target, observe: Any) -> None:
    bad = api.call(Acao.BLOQUEIOCLASSE5, logincliente=target.disposable_classe5, classe5acao="SUSPENDER")
    check.value(bad, ClauseId.C5_1)
    observe(ClauseId.C5_1, "unknown_classe5acao", bad.answer.value if bad.answer else None)
    if not target_is_local(target):
        return  # against a real central, never name a client the target file did not give us
    unknown = api.call(Acao.BLOQUEIOCLASSE5, logincliente="pbxcheck-no-such-client", classe5acao=CLASSE5_DESBLOQUEAR)
    check.value(unknown, ClauseId.C5_1)
    observe(ClauseId.C5_1, "unknown_client", unknown.answer.value if unknown.answer else None)
