"""Utilizando API / Acessando API - https: the four factors, plain http, no side effect (AUTH-*).

For every acao, each factor is made wrong alone (login, senha, token, source IP), and the same call
goes over plain http; after every denial a second look proves nothing changed. Only the disposable
campaign and classe5 client are ever named, and a BLOQUEAR that slips through is undone at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pbxcheck.client import ApiClient, Exchange
from pbxcheck.contract import (
    CHAMADA_OK,
    CLASSE5_DESBLOQUEAR,
    ERRO_PROTOCOLO,
    LOGIN_INVALIDO,
    OK,
    STATUS,
    Acao,
)
from pbxcheck.pytest_plugin import Checker, ForeignProbe, RunTag
from pbxcheck.target import Target

from .support import contact_body, ids_of, insert, is_status_pair, listing, now_text, valid_body

ACOES = list(Acao)
THROTTLE_PROBES = 12  # wrong-senha calls in a row for AUTH-6 (bounded: a real central may lock us out)


@pytest.fixture
def undo_block(target: Target, request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a bloqueioclasse5 probe did, the disposable classe5 client ends unblocked."""
    yield
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("acao") is Acao.BLOQUEIOCLASSE5:
        with ApiClient(target) as c:
            c.call(Acao.BLOQUEIOCLASSE5, logincliente=target.disposable_classe5, classe5acao=CLASSE5_DESBLOQUEAR)


@pytest.fixture
def seeded(api: ApiClient, check: Checker, target: Target, run_tag: RunTag) -> str:
    """The disposable campaign holds at least one contact (so a delete or a detail has something to hit);
    returns its id."""
    records = listing(api, check, target.disposable_campaign)
    if not records:
        insert(api, check, target.disposable_campaign, contact_body(run_tag.next()))
        records = listing(api, check, target.disposable_campaign)
    return str(records[0].get("id"))


class Snapshot:
    """What a denied call could have changed, looked at before and after (AUTH-5)."""

    def __init__(self, api: ApiClient, check: Checker, target: Target, acao: Acao) -> None:
        self.api, self.check, self.target, self.acao = api, check, target, acao

    def take(self) -> dict[str, Any]:
        snap: dict[str, Any] = {"contacts": sorted(ids_of(listing(self.api, self.check,
                                                                     self.target.disposable_campaign)))}
        if self.acao in (Acao.CLICKTOCALL, Acao.BLOQUEIOCLASSE5):
            ex = self.api.call(Acao.STATUSRAMAIS)
            ramais = self.check.records(ex, "RAM-1")
            snap["ramais"] = sorted((str(r.get("Ramal")), str(r.get("Status"))) for r in ramais)
        return snap


def _success_looks(acao: Acao, value: Any) -> bool:
    """Whether an answer looks like the acao was carried out (a denial must not)."""
    if isinstance(value, dict):
        return True
    if isinstance(value, list):
        if not value or all(isinstance(v, dict) for v in value):
            return True  # records, or an empty listing: not a denial
        if value[:2] in ([STATUS, OK], [STATUS, CHAMADA_OK]) or (value and value[0] == "Total Deletados"):
            return True
    return False


def _expect_denied(check: Checker, ex: Exchange, acao: Acao, clause: str, factor: str) -> Any:
    """Denied: HTTP 401/403, or a ["Status", text] pair that is not the acao's success. Returns the answer."""
    check.no_server_error(ex, clause)
    if ex.status_code in (401, 403):
        return {"http": ex.status_code}
    value = check.value(ex, clause)
    check(not _success_looks(acao, value), clause, f"{acao.value} with a wrong {factor} was carried out", ex)
    check(is_status_pair(value), clause,
          f"{acao.value} with a wrong {factor}: expected a denial [\"Status\", …], got {json.dumps(value)[:200]}", ex)
    return value


def _denied_call(client: ApiClient, acao: Acao, fields: dict[str, Any], **override: str) -> Exchange:
    body = {"acao": acao.value, **client.credentials(), **fields, **override}
    return client.post(body)


def _assert_unchanged(check: Checker, before: dict[str, Any], snap: Snapshot, ex: Exchange, factor: str) -> None:
    after = snap.take()
    for key in before:
        check(before[key] == after[key], "AUTH-5",
              f"{snap.acao.value} denied for a wrong {factor}, yet {key} changed: "
              f"before {before[key]!r}, after {after[key]!r}", ex)


@pytest.mark.clause("AUTH-2", "AUTH-5")
@pytest.mark.parametrize("factor", ["login", "senha"])
@pytest.mark.parametrize("acao", ACOES, ids=[a.value for a in ACOES])
def test_wrong_login_or_senha_denied(api: ApiClient, check: Checker, target: Target, run_tag: RunTag,
                                     seeded: str, undo_block: None, acao: Acao, factor: str) -> None:
    snap = Snapshot(api, check, target, acao)
    before = snap.take()
    fields = valid_body(acao, target, tag=run_tag, idmailing=seeded)
    ex = _denied_call(api, acao, fields, **{factor: getattr(target, factor) + "x"})
    _expect_denied(check, ex, acao, "AUTH-2", factor)
    check.status(ex, "AUTH-2", LOGIN_INVALIDO)
    _assert_unchanged(check, before, snap, ex, factor)


@pytest.mark.clause("AUTH-2", "AUTH-5")
@pytest.mark.parametrize("acao", ACOES, ids=[a.value for a in ACOES])
def test_wrong_token_denied(api: ApiClient, check: Checker, target: Target, run_tag: RunTag, seeded: str,
                            undo_block: None, observe: Any, acao: Acao) -> None:
    snap = Snapshot(api, check, target, acao)
    before = snap.take()
    fields = valid_body(acao, target, tag=run_tag, idmailing=seeded)
    wrong = ("0" if target.token[:1] != "0" else "1") + target.token[1:]
    ex = _denied_call(api, acao, fields, token=wrong)
    answer = _expect_denied(check, ex, acao, "AUTH-2", "token")
    observe("AUTH-2", "token", answer)
    _assert_unchanged(check, before, snap, ex, "token")


@pytest.mark.clause("AUTH-3", "AUTH-5")
@pytest.mark.parametrize("acao", ACOES, ids=[a.value for a in ACOES])
def test_valid_credentials_from_foreign_ip_denied(api: ApiClient, check: Checker, target: Target, run_tag: RunTag,
                                                  seeded: str, undo_block: None, foreign_ip_api: ForeignProbe,
                                                  observe: Any, acao: Acao) -> None:
    snap = Snapshot(api, check, target, acao)
    before = snap.take()
    fields = valid_body(acao, target, tag=run_tag, idmailing=seeded)
    ex = _denied_call(foreign_ip_api.client, acao, fields)
    answer = _expect_denied(check, ex, acao, "AUTH-3", f"source IP ({foreign_ip_api.how})")
    observe("AUTH-2", "source_ip", answer)
    _assert_unchanged(check, before, snap, ex, "source IP")


@pytest.mark.clause("AUTH-3")
def test_foreign_token_works_from_its_own_ip(check: Checker, foreign_ip_api: ForeignProbe) -> None:
    """The control that gives the foreign-IP denials meaning: a token does work from the IP it is bound to."""
    if foreign_ip_api.control is None:
        pytest.skip("cannot bind to the foreign token's IP here: no positive control")
    ex = foreign_ip_api.control.call(Acao.STATUSRAMAIS)
    value = check.value(ex, "AUTH-3")
    check(isinstance(value, list) and all(isinstance(r, dict) for r in value), "AUTH-3",
          "the foreign token is refused from the very IP it is bound to", ex)


@pytest.mark.clause("AUTH-4", "AUTH-5")
@pytest.mark.parametrize("acao", ACOES, ids=[a.value for a in ACOES])
def test_plain_http_answers_erro_de_protocolo(api: ApiClient, plain_api: ApiClient, check: Checker,
                                              target: Target, run_tag: RunTag, seeded: str, undo_block: None,
                                              acao: Acao) -> None:
    snap = Snapshot(api, check, target, acao)
    before = snap.take()
    ex = plain_api.call(acao, **valid_body(acao, target, tag=run_tag, idmailing=seeded))
    check.status(ex, "AUTH-4", ERRO_PROTOCOLO)
    _assert_unchanged(check, before, snap, ex, "scheme (plain http)")


@pytest.mark.clause("AUTH-4")
def test_plain_http_any_path_and_body(plain_api: ApiClient, check: Checker) -> None:
    for body, path in (("not json", "/api.php"), ({"acao": "statusramais"}, "/"), ({}, "/discador.php")):
        ex = plain_api.post(body, path=path)
        check.status(ex, "AUTH-4", ERRO_PROTOCOLO)


@pytest.mark.clause("AUTH-1")
def test_https_post_json_object_is_served(api: ApiClient, check: Checker) -> None:
    ex = api.call(Acao.STATUSRAMAIS)
    check.records(ex, "AUTH-1")


MALFORMED: list[tuple[str, Any]] = [
    ("not JSON", "acao=statusramais"),
    ("truncated JSON", '{"acao":"statusramais"'),
    ("a JSON array", "[]"),
    ("a JSON string", '"statusramais"'),
    ("bad UTF-8", b'{"acao":"statusramais","x":"\xff\xfe"}'),
]


@pytest.mark.clause("AUTH-1")
@pytest.mark.parametrize("what,body", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_body_is_refused_cleanly(api: ApiClient, check: Checker, what: str, body: Any) -> None:
    ex = api.post(body)
    check.no_server_error(ex, "AUTH-1")
    value = check.value(ex, "AUTH-1")
    check(not _success_looks(Acao.STATUSRAMAIS, value), "AUTH-1", f"{what} was served like a valid call", ex)


@pytest.mark.clause("AUTH-1")
def test_credentials_in_body_with_typographic_quotes_are_refused(api: ApiClient, check: Checker,
                                                                 observe: Any) -> None:
    from .strategies import typographic

    ex = api.post(typographic({"acao": "statusramais", **api.credentials()}))
    check.no_server_error(ex, "AUTH-1")
    value = check.value(ex, "AUTH-1")
    check(not _success_looks(Acao.STATUSRAMAIS, value), "AUTH-1",
          "a body with typographic quotes (AMB-5, not JSON) was served like a valid call", ex)


@pytest.mark.clause("AUTH-1")
def test_acao_case_and_discador_php(api: ApiClient, check: Checker, observe: Any) -> None:
    """AMB-2 and AMB-4: how the target takes an upper-case acao and the click-to-call example's path."""
    upper = api.call("STATUSRAMAIS")
    check.no_server_error(upper, "AUTH-1")
    observe("AUTH-1", "acao_upper_case", "served" if _success_looks(Acao.STATUSRAMAIS, upper.answer and
                                                                    upper.answer.value) else
            (upper.answer.value if upper.answer else f"HTTP {upper.status_code}"))
    alt = api.post({"acao": "statusramais", **api.credentials()}, path="/discador.php")
    check.no_server_error(alt, "AUTH-1")
    observe("AUTH-1", "discador_php", "served" if alt.answer and _success_looks(Acao.STATUSRAMAIS, alt.answer.value)
            else (alt.answer.value if alt.answer else f"HTTP {alt.status_code}"))


# --- AUTH-6: hardening, reported as findings ---------------------------------------------------------------


@pytest.mark.clause("AUTH-6")
def test_denials_do_not_enumerate_and_are_throttled(api: ApiClient, check: Checker, target: Target,
                                                    finding: Any, request: pytest.FixtureRequest) -> None:
    from pbxcheck.pytest_plugin import foreign_probe

    answers: dict[str, str] = {}
    for factor in ("login", "senha", "token"):
        wrong = getattr(target, factor)[:-1] + ("0" if getattr(target, factor)[-1:] != "0" else "1")
        ex = api.post({"acao": "statusramais", **api.credentials(**{factor: wrong})})
        check.no_server_error(ex, "AUTH-6")
        answers[factor] = f"HTTP {ex.status_code} {ex.raw[:200].decode('utf-8', 'replace')}"
    probe = foreign_probe(request, target)
    if probe is not None:
        ex = probe.client.call(Acao.STATUSRAMAIS)
        answers["source IP"] = f"HTTP {ex.status_code} {ex.raw[:200].decode('utf-8', 'replace')}"
    if answers["login"] != answers["senha"]:
        finding("AUTH-6", "medium", "a wrong login and a wrong senha get different denials, so logins can be "
                                    f"enumerated: login → {answers['login']!r}, senha → {answers['senha']!r}")
    distinct = {k: v for k, v in answers.items() if v != answers["login"]}
    if distinct:
        finding("AUTH-6", "medium", "the denial tells which factor was wrong (a caller learns that the others "
                                    f"were right): {json.dumps(answers, ensure_ascii=False)}")
    # Throttling: a burst of wrong senhas; a throttling central slows down or changes its answer.
    times, bodies = [], set()
    for _ in range(THROTTLE_PROBES):
        started = time.perf_counter()
        ex = api.post({"acao": "statusramais", **api.credentials(senha=target.senha + "x")})
        times.append(time.perf_counter() - started)
        bodies.add((ex.status_code, ex.raw))
    # Throttled: the answers change (429, "bloqueado", ...) or the last calls are much slower than the
    # first ones (medians, so one slow call on a busy machine does not count).
    first, last = sorted(times[:4])[2], sorted(times[-4:])[2]
    throttled = len(bodies) > 1 or last > 5 * max(first, 0.005)
    if not throttled:
        finding("AUTH-6", "low", f"{THROTTLE_PROBES} wrong senhas in a row, all answered alike in "
                                 f"{max(times) * 1000:.0f} ms or less: no throttling seen (at {now_text()})")
