"""Utilizando API / Acessando API - https: the four factors, plain http, no side effect (AUTH-*).

For every acao, each factor is made wrong alone (login, senha, token, source IP), and the same call
goes over plain http. A denial is judged by effect, not by string:

* the answer must not be *success-shaped* for that acao (``_success_shape``: records, ``["Status","OK"]``,
  ``["Total Deletados", n]``, ``CHAMADA OK`` or an ID, ``BLOQUEADO``/``DESBLOQUEADO``): such an answer fails
  AUTH-2 (AUTH-3 for the source IP) naming the acao and the factor, whatever else it says;
* the state the acao changes is looked at before and after the denied call (AUTH-5, ``Snapshot``): the
  disposable campaign's contacts (insert, deletediscador), the classe5 client's block state
  (bloqueioclasse5: the client is blocked first, the denied call asks DESBLOQUEAR, and the block is read
  by a click-to-call from one of its extensions, which a blocked client gets refused, so no call is
  placed unless the denial leaked), and the live calls (clicktocall: no new call after a denial).

Wrong senhas and tokens are fresh random values of the secret's shape (``pbxcheck.wrong.wrong_like``), never
derived from the secret. Only the disposable campaign and classe5 client are ever named, and the
classe5 client ends unblocked whatever happens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pbxcheck.checks import Checker, ForeignProbe, RunTag
from pbxcheck.checks.support import contact_body, ids_of, insert, is_status_pair, listing, now_text, valid_body
from pbxcheck.client import ApiClient, Exchange
from pbxcheck.contract import (
    CHAMADA_OK,
    CLASSE5_BLOQUEADO,
    CLASSE5_BLOQUEAR,
    CLASSE5_DESBLOQUEADO,
    CLASSE5_DESBLOQUEAR,
    ERRO_PROTOCOLO,
    ID,
    LOGIN_INVALIDO,
    OK,
    RAMAL_NOT_IN_USE,
    RAMAL_UNAVAILABLE,
    STATUS,
    TOTAL_DELETADOS,
    Acao,
    ClauseId,
)
from pbxcheck.errors import TransportError
from pbxcheck.target import Target
from pbxcheck.wrong import answers_delayed, wrong_like

ACOES = list(Acao)
THROTTLE_PROBES = 12  # wrong-senha calls in a row for AUTH-6 (bounded: a real central may lock us out)
LOCKOUT_WAIT_S = 20.0  # after a lockout is seen, how long we wait (polling) for it to lift
IDLE_WAIT_S = 10.0  # how long a clicktocall check waits for its origin extension to be idle
IDLE = (RAMAL_NOT_IN_USE, RAMAL_UNAVAILABLE, "")


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


# --- what a carried-out call looks like, per acao ----------------------------------------------------------


def _success_shape(acao: Acao, value: Any) -> str | None:
    """Why ``value`` looks like ``acao`` was carried out (None: it does not). Judged by the shape of each
    acao's success answer, so a central that serves ``["Status","BLOQUEADO"]`` to a denied call is caught
    even though that is a ["Status", text] pair like a denial."""
    if isinstance(value, dict):
        return "a record object"
    if not isinstance(value, list):
        return None
    if not value:
        return "an empty listing"
    if all(isinstance(v, dict) for v in value):
        return f"a list of {len(value)} record(s)"
    head = [v.strip().upper() if isinstance(v, str) else v for v in value]
    if head[0] == TOTAL_DELETADOS.upper():
        return "a deletediscador count"
    if head[0] == STATUS.upper() and len(head) >= 2:
        success = {
            OK.upper(): "the insert's OK",
            CHAMADA_OK.upper(): "clicktocall's CHAMADA OK",
            CLASSE5_BLOQUEADO.upper(): "bloqueioclasse5's BLOQUEADO",
            CLASSE5_DESBLOQUEADO.upper(): "bloqueioclasse5's DESBLOQUEADO",
        }
        if head[1] in success:
            return success[head[1]]
    if acao is Acao.CLICKTOCALL and any(v == ID for v in value):
        return "a clicktocall ID"
    return None


def _expect_denied(check: Checker, ex: Exchange, acao: Acao, clause: ClauseId, factor: str) -> Any:
    """Denied: HTTP 401/403, or a ["Status", text] pair that is not success-shaped. Returns the answer."""
    check.no_server_error(ex, clause)
    if ex.status_code in (401, 403):
        return {"http": ex.status_code}
    value = check.value(ex, clause)
    shape = _success_shape(acao, value)
    check(
        shape is None,
        clause,
        f"{acao.value} with a wrong {factor} got a success-shaped answer ({shape}): "
        f"{json.dumps(value, ensure_ascii=False)[:200]}",
        ex,
    )
    check(
        is_status_pair(value),
        clause,
        f'{acao.value} with a wrong {factor}: expected a denial ["Status", …], got {json.dumps(value)[:200]}',
        ex,
    )
    return value


def _denied_call(client: ApiClient, acao: Acao, fields: dict[str, Any], **override: str) -> Exchange:
    body = {"acao": acao.value, **client.credentials(), **fields, **override}
    return client.post(body)


# --- AUTH-5: the state a denied call could change ------------------------------------------------------------


def _new_calls(before: Any, after: Any) -> str | None:
    started = sorted(set(after["calls"]) - set(before["calls"]))
    busy = sorted(r for r, s in after["busy"].items() if s not in IDLE and before["busy"].get(r) in IDLE)
    if started or busy:
        return f"new live call(s) {started or ''} {('extensions now busy: ' + ', '.join(busy)) if busy else ''}"
    return None


def _block_changed(before: str, after: str) -> str | None:
    if before.startswith("not"):
        return None  # placed even while blocked (before the denied call): HTTP cannot read the block here
    return None if after.split(" (")[0] == before.split(" (")[0] else f"before {before}, after {after}"


class Snapshot:
    """What a denied call of ``acao`` could have changed, looked at before and after (AUTH-5).

    Each view is (name, how to read it, how to tell a change); a view that cannot be read on this target
    (no extension of the classe5 client in the target file) is left out."""

    def __init__(self, api: ApiClient, check: Checker, target: Target, acao: Acao) -> None:
        self.api, self.check, self.target, self.acao = api, check, target, acao
        own = [e.number for e in target.extensions if e.classe5_client == target.disposable_classe5]
        self.classe5_ext = own
        self.views: list[tuple[str, Callable[[], Any], Callable[[Any, Any], str | None]]] = [
            (
                "campaign contacts",
                self._contacts,
                lambda b, a: (
                    None
                    if b == a
                    else f"before {len(b)} ids, after {len(a)} "
                    f"(gone {sorted(set(b) - set(a))[:5]}, new {sorted(set(a) - set(b))[:5]})"
                ),
            ),
        ]
        if acao is Acao.CLICKTOCALL:
            self.views.append(("live calls", self._calls, _new_calls))
        if acao is Acao.BLOQUEIOCLASSE5 and own:
            self.views.append((f"classe5 client {target.disposable_classe5}'s block", self._block, _block_changed))

    def prepare(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The fields of the denied call. For bloqueioclasse5 the client is blocked first (valid call) and the
        denied call asks DESBLOQUEAR: the harmless direction (a leak shows as a refused click-to-call that
        now gets through, between the disposable client's own extensions)."""
        if self.acao is Acao.CLICKTOCALL:
            self._wait_idle(str(fields["origem"]))
        if self.acao is not Acao.BLOQUEIOCLASSE5:
            return fields
        self.api.call(Acao.BLOQUEIOCLASSE5, logincliente=self.target.disposable_classe5, classe5acao=CLASSE5_BLOQUEAR)
        return {**fields, "classe5acao": CLASSE5_DESBLOQUEAR}

    def _wait_idle(self, origem: str) -> None:
        """A call still live on ``origem`` (a leak of an earlier check) would hide a new one: wait for it to
        end, at most IDLE_WAIT_S. On a sound central there is none and this is one statusramais."""
        deadline = time.monotonic() + IDLE_WAIT_S
        while self._calls()["busy"].get(origem, "") not in IDLE and time.monotonic() < deadline:
            time.sleep(0.5)

    def _contacts(self) -> list[str]:
        return sorted(ids_of(listing(self.api, self.check, self.target.disposable_campaign)))

    def _calls(self) -> dict[str, Any]:
        ramais = self.check.records(self.api.call(Acao.STATUSRAMAIS), ClauseId.RAM_1)
        return {
            "calls": sorted(str(r.get("IDCHAMADA")) for r in ramais if r.get("IDCHAMADA")),
            "busy": {str(r.get("Ramal")): str(r.get("Status", "")) for r in ramais},
        }

    def _block(self) -> str:
        """'blocked (<refusal>)' when a click-to-call from the client's extension is refused, 'not blocked
        (...)' when it is placed."""
        own = self.classe5_ext
        ex = self.api.call(Acao.CLICKTOCALL, origem=own[0], destino=own[1] if len(own) > 1 else own[0])
        value = ex.answer.value if ex.answer else None
        if _success_shape(Acao.CLICKTOCALL, value) is not None:
            return "not blocked (click-to-call from its extension placed)"
        return f"blocked ({json.dumps(value, ensure_ascii=False)[:80]})"

    def take(self) -> dict[str, Any]:
        return {name: read() for name, read, _ in self.views}

    def assert_unchanged(self, before: dict[str, Any], ex: Exchange, factor: str) -> None:
        after = self.take()
        for name, _, changed in self.views:
            what = changed(before[name], after[name])
            self.check(
                what is None,
                ClauseId.AUTH_5,
                f"{self.acao.value} denied for a wrong {factor}, yet the {name} changed: {what}",
                ex,
            )


def _observe_denial(observe: Any, factor: str, acao: Acao, answer: Any) -> None:
    """One observation per (factor, acao): the report keeps every acao's denial, not the last one's."""
    observe(ClauseId.AUTH_2, f"{factor}/{acao.value}", answer)


@pytest.mark.clause(ClauseId.AUTH_2, ClauseId.AUTH_5)
@pytest.mark.parametrize("factor", ["login", "senha"])
@pytest.mark.parametrize("acao", ACOES, ids=[a.value for a in ACOES])
def test_wrong_login_or_senha_denied(
    api: ApiClient,
    check: Checker,
    target: Target,
    run_tag: RunTag,
    seeded: str,
    undo_block: None,
    acao: Acao,
    factor: str,
) -> None:
    snap = Snapshot(api, check, target, acao)
    fields = snap.prepare(valid_body(acao, target, tag=run_tag, idmailing=seeded))
    before = snap.take()
    ex = _denied_call(api, acao, fields, **{factor: wrong_like(getattr(target, factor))})
    _expect_denied(check, ex, acao, ClauseId.AUTH_2, factor)
    check.status(ex, ClauseId.AUTH_2, LOGIN_INVALIDO)
    snap.assert_unchanged(before, ex, factor)


@pytest.mark.clause(ClauseId.AUTH_2, ClauseId.AUTH_5)
@pytest.mark.parametrize("acao", ACOES, ids=[a.value for a in ACOES])
def test_wrong_token_denied(
    api: ApiClient,
    check: Checker,
    target: Target,
    run_tag: RunTag,
    seeded: str,
    undo_block: None,
    observe: Any,
    acao: Acao,
) -> None:
    snap = Snapshot(api, check, target, acao)
    fields = snap.prepare(valid_body(acao, target, tag=run_tag, idmailing=seeded))
    before = snap.take()
    ex = _denied_call(api, acao, fields, token=wrong_like(target.token))
    answer = _expect_denied(check, ex, acao, ClauseId.AUTH_2, "token")
    _observe_denial(observe, "token", acao, answer)
    snap.assert_unchanged(before, ex, "token")


@pytest.mark.clause(ClauseId.AUTH_3, ClauseId.AUTH_5)
@pytest.mark.parametrize("acao", ACOES, ids=[a.value for a in ACOES])
def test_valid_credentials_from_foreign_ip_denied(
    api: ApiClient,
    check: Checker,
    target: Target,
    run_tag: RunTag,
    seeded: str,
    undo_block: None,
    foreign_ip_api: ForeignProbe,
    observe: Any,
    acao: Acao,
) -> None:
    snap = Snapshot(api, check, target, acao)
    fields = snap.prepare(valid_body(acao, target, tag=run_tag, idmailing=seeded))
    before = snap.take()
    ex = _denied_call(foreign_ip_api.client, acao, fields)
    answer = _expect_denied(check, ex, acao, ClauseId.AUTH_3, f"source IP ({foreign_ip_api.how})")
    _observe_denial(observe, "source_ip", acao, answer)
    snap.assert_unchanged(before, ex, "source IP")


@pytest.mark.clause(ClauseId.AUTH_3)
def test_foreign_token_works_from_its_own_ip(check: Checker, foreign_ip_api: ForeignProbe) -> None:
    """The control that gives the foreign-IP denials meaning: a token does work from the IP it is bound to."""
    if foreign_ip_api.control is None:
        pytest.skip("cannot bind to the foreign token's IP here: no positive control")
    ex = foreign_ip_api.control.call(Acao.STATUSRAMAIS)
    value = check.value(ex, ClauseId.AUTH_3)
    check(
        isinstance(value, list) and all(isinstance(r, dict) for r in value),
        ClauseId.AUTH_3,
        "the foreign token is refused from the very IP it is bound to",
        ex,
    )


@pytest.mark.clause(ClauseId.AUTH_4, ClauseId.AUTH_5)
@pytest.mark.parametrize("acao", ACOES, ids=[a.value for a in ACOES])
def test_plain_http_answers_erro_de_protocolo(
    api: ApiClient,
    plain_api: ApiClient,
    check: Checker,
    target: Target,
    run_tag: RunTag,
    seeded: str,
    undo_block: None,
    acao: Acao,
) -> None:
    snap = Snapshot(api, check, target, acao)
    fields = snap.prepare(valid_body(acao, target, tag=run_tag, idmailing=seeded))
    before = snap.take()
    ex = plain_api.call(acao, **fields)
    check.status(ex, ClauseId.AUTH_4, ERRO_PROTOCOLO)
    snap.assert_unchanged(before, ex, "scheme (plain http)")


@pytest.mark.clause(ClauseId.AUTH_4)
def test_plain_http_any_path_and_body(plain_api: ApiClient, check: Checker) -> None:
    for body, path in (("not json", "/api.php"), ({"acao": "statusramais"}, "/"), ({}, "/discador.php")):
        ex = plain_api.post(body, path=path)
        check.status(ex, ClauseId.AUTH_4, ERRO_PROTOCOLO)


@pytest.mark.clause(ClauseId.AUTH_1)
def test_https_post_json_object_is_served(api: ApiClient, check: Checker) -> None:
    ex = api.call(Acao.STATUSRAMAIS)
    check.records(ex, ClauseId.AUTH_1)


MALFORMED: list[tuple[str, Any]] = [
    ("not JSON", "acao=statusramais"),
    ("truncated JSON", '{"acao":"statusramais"'),
    ("a JSON array", "[]"),
    ("a JSON string", '"statusramais"'),
    ("bad UTF-8", b'{"acao":"statusramais","x":"\xff\xfe"}'),
]


@pytest.mark.clause(ClauseId.AUTH_1)
@pytest.mark.parametrize("what,body", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_body_is_refused_cleanly(api: ApiClient, check: Checker, what: str, body: Any) -> None:
    ex = api.post(body)
    check.no_server_error(ex, ClauseId.AUTH_1)
    value = check.value(ex, ClauseId.AUTH_1)
    check(not _success_shape(Acao.STATUSRAMAIS, value), ClauseId.AUTH_1, f"{what} was served like a valid call", ex)


@pytest.mark.clause(ClauseId.AUTH_1)
def test_credentials_in_body_with_typographic_quotes_are_refused(api: ApiClient, check: Checker, observe: Any) -> None:
    from pbxcheck.checks.strategies import typographic

    ex = api.post(typographic({"acao": "statusramais", **api.credentials()}))
    check.no_server_error(ex, ClauseId.AUTH_1)
    value = check.value(ex, ClauseId.AUTH_1)
    check(
        not _success_shape(Acao.STATUSRAMAIS, value),
        ClauseId.AUTH_1,
        "a body with typographic quotes (AMB-5, not JSON) was served like a valid call",
        ex,
    )


@pytest.mark.clause(ClauseId.AUTH_1)
def test_acao_case_and_discador_php(api: ApiClient, check: Checker, observe: Any) -> None:
    """AMB-2 and AMB-4: how the target takes an upper-case acao and the click-to-call example's path."""
    upper = api.call("STATUSRAMAIS")
    check.no_server_error(upper, ClauseId.AUTH_1)
    observe(ClauseId.AUTH_1, "acao_upper_case", _served_or_answer(upper))
    alt = api.post({"acao": "statusramais", **api.credentials()}, path="/discador.php")
    check.no_server_error(alt, ClauseId.AUTH_1)
    observe(ClauseId.AUTH_1, "discador_php", _served_or_answer(alt))


def _served_or_answer(ex: Exchange) -> Any:
    """ "served" when a statusramais call got its listing, else what came back instead."""
    if ex.answer and _success_shape(Acao.STATUSRAMAIS, ex.answer.value):
        return "served"
    return ex.answer.value if ex.answer else f"HTTP {ex.status_code}"


# --- AUTH-6: hardening, reported as findings ---------------------------------------------------------------


@pytest.mark.clause(ClauseId.AUTH_6)
def test_denials_do_not_enumerate_and_are_throttled(
    api: ApiClient, check: Checker, target: Target, finding: Any, observe: Any, request: pytest.FixtureRequest
) -> None:
    from pbxcheck.checks.fixtures import foreign_probe

    answers: dict[str, str] = {}
    for factor in ("login", "senha", "token"):
        ex = api.post({"acao": "statusramais", **api.credentials(**{factor: wrong_like(getattr(target, factor))})})
        check.no_server_error(ex, ClauseId.AUTH_6)
        answers[factor] = f"HTTP {ex.status_code} {ex.raw[:200].decode('utf-8', 'replace')}"
    probe = foreign_probe(request, target)
    if probe is not None:
        ex = probe.client.call(Acao.STATUSRAMAIS)
        answers["source IP"] = f"HTTP {ex.status_code} {ex.raw[:200].decode('utf-8', 'replace')}"
    if answers["login"] != answers["senha"]:
        finding(
            ClauseId.AUTH_6,
            "medium",
            "a wrong login and a wrong senha get different denials, so logins can be "
            f"enumerated: login → {answers['login']!r}, senha → {answers['senha']!r}",
        )
    distinct = {k: v for k, v in answers.items() if v != answers["login"]}
    if distinct:
        finding(
            ClauseId.AUTH_6,
            "medium",
            "the denial tells which factor was wrong (a caller learns that the others "
            f"were right): {json.dumps(answers, ensure_ascii=False)}",
        )
    burst = guess_burst(api, target)
    observe(ClauseId.AUTH_6, "throttling", burst.summary())
    if not burst.throttled:
        finding(
            ClauseId.AUTH_6, "low", f"{burst.sent} wrong senhas in a row ({now_text()}): {burst.summary()['verdict']}"
        )


class Burst:
    """A bounded run of wrong senhas, then the right one: what a rate limit would show (AUTH-6).

    Throttling is *measured*, never inferred from the denial itself (every wrong senha is refused anyway):
    later guesses delayed (median of the last four clearly above the first four's, by 3x and 200 ms),
    dropped (no answer within the timeout), or a lockout (right after the burst the *right* senha is
    refused too; then polled until it is served again, at most LOCKOUT_WAIT_S)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.dropped = 0
        self.answers: dict[str, int] = {}
        self.sent = 0
        self.right_after: str = ""
        self.lockout_s: float | None = None  # how long the right senha stayed refused (None: not refused)

    @property
    def delayed(self) -> bool:
        return answers_delayed(self.times)

    @property
    def throttled(self) -> bool:
        return self.delayed or self.dropped > 0 or self.lockout_s is not None

    def summary(self) -> dict[str, Any]:
        why = [
            w
            for w, on in (
                ("later guesses delayed", self.delayed),
                (f"{self.dropped} guesses dropped", self.dropped > 0),
                (f"lockout: the right senha refused for {self.lockout_s or 0:.1f} s", self.lockout_s is not None),
            )
            if on
        ]
        verdict = (
            ("throttled: " + ", ".join(why))
            if why
            else (
                f"no throttling measured: every guess answered ({self.answers}) within "
                f"{max(self.times, default=0) * 1000:.0f} ms, and the right senha was served right after "
                f"({self.right_after})"
            )
        )
        return {
            "sent": self.sent,
            "answers": self.answers,
            "dropped": self.dropped,
            "first_ms": [round(t * 1000) for t in self.times[:4]],
            "last_ms": [round(t * 1000) for t in self.times[-4:]],
            "right_senha_after": self.right_after,
            "verdict": verdict,
        }


def _served(ex: Exchange) -> bool:
    return bool(ex.answer) and _success_shape(Acao.STATUSRAMAIS, ex.answer.value if ex.answer else None) is not None


def guess_burst(api: ApiClient, target: Target) -> Burst:
    b = Burst()
    for _ in range(THROTTLE_PROBES):
        b.sent += 1
        started = time.perf_counter()
        try:
            ex = api.post({"acao": "statusramais", **api.credentials(senha=wrong_like(target.senha))})
        except TransportError:
            b.dropped += 1
            continue
        b.times.append(time.perf_counter() - started)
        key = f"HTTP {ex.status_code} {ex.raw[:80].decode('utf-8', 'replace')}"
        b.answers[key] = b.answers.get(key, 0) + 1
    refused_at = time.monotonic()
    while True:
        try:
            ex = api.call(Acao.STATUSRAMAIS)
            served = _served(ex)
            b.right_after = b.right_after or (
                f"HTTP {ex.status_code}, served"
                if served
                else f"HTTP {ex.status_code} {ex.raw[:80].decode('utf-8', 'replace')}"
            )
        except TransportError as exc:
            served = False
            b.right_after = b.right_after or f"no answer ({type(exc).__name__})"
        if served:  # on the first try: no lockout (lockout_s stays None); later: the window measured
            return b
        b.lockout_s = waited = time.monotonic() - refused_at
        if waited >= LOCKOUT_WAIT_S:
            return b
        time.sleep(1.0)
