"""Sincronismo de Tela: statusramais field set (RAM-1). Live-call values are the SIP probes' (RAM-2/3)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from pbxcheck.checks import Checker
from pbxcheck.client import ApiClient
from pbxcheck.contract import RAMAL_FIELDS, Acao, ClauseId
from pbxcheck.target import Target


@pytest.mark.clause(ClauseId.RAM_1)
def test_statusramais_one_object_per_extension_with_every_field(
    api: ApiClient, check: Checker, target: Target, observe: Any
) -> None:
    ex = api.call(Acao.STATUSRAMAIS)
    rows = check.records(ex, ClauseId.RAM_1)
    check(rows, ClauseId.RAM_1, "statusramais lists no extension at all", ex)
    for row in rows:
        missing = [f for f in RAMAL_FIELDS if f not in row]
        check(not missing, ClauseId.RAM_1, f"extension {row.get('Ramal')!r} lacks {missing}", ex)
    counts = Counter(str(r["Ramal"]) for r in rows)
    dupes = sorted(k for k, n in counts.items() if n > 1)
    check(not dupes, ClauseId.RAM_1, f"extensions listed more than once: {dupes}", ex)
    absent = [e.number for e in target.extensions if e.number not in counts]
    check(not absent, ClauseId.RAM_1, f"extensions of the target file missing from statusramais: {absent}", ex)
    extra = sorted({k for r in rows for k in r} - set(RAMAL_FIELDS))
    if extra:
        observe(ClauseId.RAM_1, "extra_fields", extra)
