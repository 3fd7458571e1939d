"""Each fault switch changes exactly the answers of the clause it breaks, and nothing else.

One battery of probes runs against a clean central and against a central per fault, each on a
copy of the same seeded database; answers are normalised where they carry the time. The table
EXPECTED names, per fault, the probes whose answer must differ; every other must be identical.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from central_harness import start

from pbxcheck import contract as C
from pbxcheck.central import gsm
from pbxcheck.central.faults import HTTP_FAULTS
from pbxcheck.client import ApiClient, Exchange

if TYPE_CHECKING:
    from central_harness import Running

SPEED = 4.0  # a fresh contact stays AGUARDANDO 0.5 s; a click-to-call lasts 1 s
WORKERS = 8

EXPECTED: dict[str, set[str]] = {
    "plain-http-accepted": {"plain"},
    "ignore-source-ip": {"auth-foreign-ip", "auth-foreign-token-here"},
    "ignore-token": {"auth-wrong-token", "auth-foreign-token-here", "auth-foreign-ip"},
    "ignore-senha": {"auth-wrong-senha"},
    "denial-reveals-factor": {
        "auth-wrong-login",
        "auth-wrong-senha",
        "auth-wrong-token",
        "auth-foreign-ip",
        "auth-foreign-token-here",
        "insert-denied",
    },
    "status-string-changed": {"insert-ok"},
    "campaign-check-skipped": {"insert-unknown-campaign"},
    "denied-insert-side-effect": {"denied-insert-count"},
    "field-truncated-200": {"long-fields"},
    "accents-mangled": {"long-fields"},
    "long-field-500": {"insert-255"},
    "keys-disagree": {"listing-583"},
    "missing-column": {"listing-583"},
    "fresh-not-aguardando": {"fresh-status"},
    "status-lowercase": {"listing-583", "fresh-status"},
    "tentativas-over-5": {"listing-583"},
    "detail-short-duration": {"statusdetalhado"},
    "detail-wrong-uniqueid": {"statusdetalhado"},
    "detail-wrong-mailing": {"statusdetalhado"},
    "delete-count-wrong": {"delete", "delete-again"},
    "delete-leaves-rows": {"after-delete", "delete-again"},
    "report-501-rows": {"report", "report-empty", "report-inicio"},
    # the click-to-call record is looked up with statusreport since the call: yesterday's rows crowd it out
    "report-before-datainicial": {"report", "report-empty", "report-inicio", "clicktocall-record"},
    "report-empty-date-all": {"report-empty"},
    "report-bad-date-500": {"report-bad-date"},
    "ops-empty": {"ops"},
    "recording-size-mismatch": {"recording"},
    "recording-not-gsm": {"recording"},
    "recording-missing": {"recording"},
    "c2c-bad-id": {"clicktocall"},
    "c2c-wrong-status": {"clicktocall"},
    "c2c-no-record": {"clicktocall-record"},
    "ramais-missing-field": {"ramais"},
    "classe5-noop": {"clicktocall-blocked"},
    "server-error-on-bad-json": {"bad-json", "not-object", "big-body"},
    # one acao only, or a denied call's side effect: nothing this battery sends (tests/quality proves them)
    "classe5-ignores-token": set(),
    "classe5-ignores-source-ip": set(),
    "denied-delete-side-effect": set(),
    "denied-classe5-side-effect": set(),
    "denied-c2c-side-effect": set(),
}


def _shape(ex: Exchange) -> Any:
    """The answer as compared: status code and JSON, or the raw bytes if it is not JSON."""
    if ex.answer is None:
        return (ex.status_code, ex.raw[:80])
    return (ex.status_code, ex.answer.value)


def _id_shape(value: Any) -> Any:
    """A click-to-call answer with its digits masked (they carry the time)."""
    return [re.sub(r"\d", "9", v) if isinstance(v, str) else v for v in value] if isinstance(value, list) else value


def battery(central: Running) -> dict[str, Any]:
    t = central.target
    today = datetime.now().strftime("%Y-%m-%d") + " 00:00:00"
    out: dict[str, Any] = {}
    api = ApiClient(t)
    elsewhere = ApiClient(t, source_ip="127.0.0.2")
    plain = ApiClient(t, plain=True)
    probe = {"idcampanha": "583", "idmailing": "1435744"}  # an AGUARDANDO contact: []

    def rows(campaign: str) -> list[dict[str, str]]:
        v = api.call("statusdiscador", idcampanha=campaign).value
        return v if isinstance(v, list) else []

    try:
        out["auth-ok"] = _shape(api.call("statusdetalhado", **probe))
        out["auth-wrong-login"] = _shape(
            api.post({**api.credentials(login="nobody"), "acao": "statusdetalhado", **probe})
        )
        out["auth-wrong-senha"] = _shape(
            api.post({**api.credentials(senha="wrong"), "acao": "statusdetalhado", **probe})
        )
        out["auth-wrong-token"] = _shape(
            api.post({**api.credentials(token="f" * 32), "acao": "statusdetalhado", **probe})
        )
        out["auth-foreign-ip"] = _shape(elsewhere.call("statusdetalhado", **probe))
        out["auth-foreign-token-here"] = _shape(
            api.post({**api.credentials(token=t.foreign_token), "acao": "statusdetalhado", **probe})
        )
        out["plain"] = _shape(plain.call("statusdetalhado", **probe))

        out["listing-583"] = _shape(api.call("statusdiscador", idcampanha="583"))
        out["statusdetalhado"] = _shape(api.call("statusdetalhado", idcampanha="583", idmailing="1435749"))
        out["report"] = _shape(api.call("statusreport", datainicial=today))
        out["report-empty"] = _shape(api.call("statusreport", datainicial=""))
        out["report-inicio"] = _shape(api.call("statusreport", inicio=today))
        out["report-bad-date"] = _shape(api.call("statusreport", datainicial="2020-99-99 00:00:00"))
        out["ops"] = _shape(api.call("statusoperacoes", datainicial=today))
        out["ramais"] = _shape(api.call("statusramais"))
        detail = api.call("statusdetalhado", idcampanha="583", idmailing="1435749").value
        gravacao = detail.get("gravacao", "") if isinstance(detail, dict) else ""
        r = api.recording(gravacao)
        out["recording"] = (r.status_code, len(r.content), gsm.is_gsm(r.content))

        out["insert-ok"] = _shape(api.call("insert", idcampanha="583", cliente="PROBE OK", tel1="41180001"))
        out["insert-unknown-campaign"] = _shape(api.call("insert", idcampanha="999", cliente="PROBE 999"))
        out["insert-denied"] = _shape(
            api.post(
                {**api.credentials(login="nobody"), "acao": "insert", "idcampanha": "583", "cliente": "PROBE DENIED"}
            )
        )
        out["denied-insert-count"] = sum(r.get("cliente") == "PROBE DENIED" for r in rows("583"))
        long_text = ("RESPONSÁVEL ÇÃO " * 20)[:254]
        api.call(
            "insert",
            idcampanha="583",
            cliente=long_text,
            gen22="PROBE LONG",
            tel1="41180002",
            **{f"gen{i}": long_text for i in range(1, 22)},
        )
        long_rec = next((r for r in rows("583") if r.get("gen22") == "PROBE LONG"), {})
        out["long-fields"] = {k: long_rec.get(k) for k in ("cliente", *(f"gen{i}" for i in range(1, 22)))}
        out["insert-255"] = _shape(api.call("insert", idcampanha="583", gen5="x" * 255))
        api.call("insert", idcampanha="900", cliente="PROBE FRESH", tel1="41180003")
        fresh = next((r for r in rows("900") if r.get("cliente") == "PROBE FRESH"), {})
        out["fresh-status"] = (fresh.get("status"), fresh.get("tentativas"))

        since = time.strftime(C.DATE_FORMAT, time.localtime(time.time() - 1))
        c2c = api.call("clicktocall", origem="2001", destino="41187777")
        out["clicktocall"] = (c2c.status_code, _id_shape(c2c.value))
        out["bloqueio"] = _shape(api.call("bloqueioclasse5", logincliente="teste", classe5acao="BLOQUEAR"))
        out["clicktocall-blocked"] = _id_shape(api.call("clicktocall", origem="3001", destino="41187777").value)
        out["desbloqueio"] = _shape(api.call("bloqueioclasse5", logincliente="teste", classe5acao="DESBLOQUEAR"))
        out["bloqueio-unknown"] = _shape(api.call("bloqueioclasse5", logincliente="x", classe5acao="BLOQUEAR"))

        out["delete"] = _shape(api.call("deletediscador", idcampanha="900"))
        out["after-delete"] = len(rows("900"))
        out["delete-again"] = _shape(api.call("deletediscador", idcampanha="900"))

        out["bad-json"] = _shape(api.post(b"{not json"))
        out["not-object"] = _shape(api.post(b"[1,2]"))
        out["big-body"] = _shape(api.post(b" " * (2 << 20)))
        out["missing-field"] = _shape(api.call("statusdetalhado", idcampanha="583"))
        out["unknown-acao"] = _shape(api.call("nonsense"))

        c2c_id = c2c.value[3] if isinstance(c2c.value, list) and len(c2c.value) == 4 else None
        found = None
        deadline = time.time() + 6
        while found is None and time.time() < deadline:
            time.sleep(0.1)
            report = api.call("statusreport", datainicial=since).value
            found = next((r for r in report if c2c_id and r.get(C.ID_CLICKTOCALL) == c2c_id), None)
        out["clicktocall-record"] = None if found is None else (found["ramal"], found["numero"])
    finally:
        for client in (api, elsewhere, plain):
            client.close()
    return out


def _run_battery(template: Path, state: Path, fault: str | None) -> dict[str, Any]:
    faults = frozenset({fault}) if fault else frozenset()
    for running in start(template, state, faults=faults, clock_speed=SPEED):
        return battery(running)
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def results(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str | None, Any]:
    """Every battery, clean and one per fault, run a few at a time: most of a battery is waiting
    (for the simulated call to end, for servers to stop), so they overlap well."""
    names: list[str | None] = [None, *sorted(HTTP_FAULTS)]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {n: pool.submit(_run_battery, template_dir, tmp_path_factory.mktemp(n or "clean"), n) for n in names}
        return {n: f.result() for n, f in futures.items()}


@pytest.fixture(scope="module")
def clean(results: dict[str | None, Any]) -> dict[str, Any]:
    return dict(results[None])


def test_clean_battery_is_conformant(clean: dict[str, Any]) -> None:
    """The reference answers the faults are compared with (so a fault cannot hide behind a bug)."""
    denied = (200, ["Status", C.LOGIN_INVALIDO])
    assert clean["auth-ok"] == (200, [])
    assert all(
        clean[k] == denied
        for k in (
            "auth-wrong-login",
            "auth-wrong-senha",
            "auth-wrong-token",
            "auth-foreign-ip",
            "auth-foreign-token-here",
            "insert-denied",
        )
    )
    assert clean["plain"] == (200, ["Status", C.ERRO_PROTOCOLO])
    assert clean["insert-ok"] == (200, ["Status", "OK"])
    assert clean["insert-unknown-campaign"] == (200, ["Status", C.CAMPANHA_NAO_CADASTRADA])
    assert clean["denied-insert-count"] == 0
    assert set(clean["long-fields"].values()) == {("RESPONSÁVEL ÇÃO " * 20)[:254]}
    assert clean["fresh-status"] == ("AGUARDANDO", "0")
    assert clean["clicktocall"] == (200, ["Status", "CHAMADA OK", "ID", "9999_99999999999999_999999"])
    assert clean["clicktocall-blocked"] == ["Status", C.RAMAL_BLOQUEADO]
    assert clean["clicktocall-record"] == ("2001", "41187777")
    assert clean["after-delete"] == 0 and clean["delete-again"] == (200, ["Total Deletados", "0"])
    assert len(clean["report"][1]) == C.REPORT_MAX_ROWS
    assert clean["recording"][0] == 200 and clean["recording"][2] is True
    assert clean["bad-json"] == (200, ["Status", C.REQUISICAO_INVALIDA])


def test_every_http_fault_is_in_the_table() -> None:
    assert set(EXPECTED) == set(HTTP_FAULTS)
    covered = {c for f in HTTP_FAULTS.values() for c in f.clauses}
    http = {c for c, clause in C.CLAUSES.items() if not clause.sip and c not in ("AUTH-6", "REC-2")}
    assert http - covered == set(), "every HTTP clause has a fault that breaks it"


@pytest.mark.parametrize("name", sorted(HTTP_FAULTS))
def test_fault_changes_exactly_its_answers(name: str, results: dict[str | None, Any], clean: dict[str, Any]) -> None:
    got = results[name]
    changed = {k for k in clean if got.get(k) != clean[k]}
    assert changed == EXPECTED[name], {k: (clean[k], got.get(k)) for k in changed ^ EXPECTED[name]}
