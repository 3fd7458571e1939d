"""The reference central answers the document's own examples and every acao as CLAUSES.md says."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from pbxcheck import contract as C
from pbxcheck.answers import record_pairs_agree
from pbxcheck.central import gsm
from pbxcheck.client import ApiClient

if TYPE_CHECKING:
    from central_harness import Running

ACAO_BODIES: dict[str, dict[str, str]] = {
    "insert": {"idcampanha": "583", "cliente": "DENIAL PROBE", "ddd1": "11", "tel1": "41180000"},
    "statusdiscador": {"idcampanha": "583"},
    "statusdetalhado": {"idcampanha": "583", "idmailing": "1435749"},
    "statusreport": {"datainicial": ""},
    "statusoperacoes": {"datainicial": ""},
    "deletediscador": {"idcampanha": "900"},
    "clicktocall": {"origem": "2002", "destino": "56453377"},
    "statusramais": {},
    "bloqueioclasse5": {"logincliente": "teste", "classe5acao": "BLOQUEAR"},
}
assert set(ACAO_BODIES) == {a.value for a in C.Acao}


def doc_body(central: Running, text: str) -> str:
    """A body from the document with its XXXX placeholders replaced by the real credentials."""
    t = central.target
    text = re.sub(r'"login":\s*"[X]+"', f'"login":"{t.login}"', text)
    text = re.sub(r'"senha":\s*"[X]+"', f'"senha":"{t.senha}"', text)
    return re.sub(r'"token":\s*"[X]+"', f'"token":"{t.token}"', text)


def listing(api: ApiClient, campaign: str) -> list[dict[str, str]]:
    value = api.call("statusdiscador", idcampanha=campaign).value
    assert isinstance(value, list)
    return value


# --- the document's examples --------------------------------------------------------------------


def test_document_python_insert_into_583(central: Running) -> None:
    # "Discador - Exemplo de código em Python", the line breaks of the PDF removed.
    body = (
        '{"acao":"insert","idcampanha":"583","login":"XXXXXXX","senha":"XXXXXXXXX","token":"XXXX",'
        '"idcrm":"1234","cliente":"Leandro","cpf":"346150521852","ddd1":"11","tel1":"41187777",'
        '"ddd2":"21","tel2":"12345678"}'
    )
    with ApiClient(central.target) as api:
        ex = api.post(doc_body(central, body))
        assert ex.status_code == 200 and ex.value == ["Status", "OK"]
        mine = [
            r
            for r in listing(api, "583")
            if r["numero"] == "41187777" and r["cliente"] == "Leandro" and r["data_insert"] >= time.strftime("%Y-%m-%d")
        ]
    assert mine, "the inserted contact is listed"
    rec = mine[-1]
    assert rec["status"] == "AGUARDANDO" and rec["ddd"] == "11" and rec["tentativas"] == "0"  # DIAL-ST-2
    assert rec["campanha"] == "EP_TRAD_30.12"


@pytest.mark.parametrize(
    "body, check",
    [
        (
            '{"acao":"statusdiscador","idcampanha":"583","login":"XXXXXXXX","senha":"XXXXXXXX","token":"XXXX"}',
            lambda v: isinstance(v, list) and any(r["id"] == "1435743" for r in v),
        ),
        (
            '{"acao":"statusdetalhado","idcampanha":"583","idmailing":"1435749","login":"XXXXXX","senha":"XXXXXX","token":"XXXX"}',
            lambda v: v["statuschamada"] == "ANSWER" and v["id_mailing"] == "1435749" and v["campanha"] == "583",
        ),
        (
            '{"acao":"statusreport","login":"XXXXX","senha":"XXXXX","token":"XXXX","datainicial":"2020-01-02 00:00:00"}',
            lambda v: isinstance(v, list) and len(v) == C.REPORT_MAX_ROWS,
        ),
        (
            '{"acao":"statusreport","login":"XXXXX","senha":"XXXXX","token":"XXXX","inicio":"2020-02-01 00:00:00"}',
            lambda v: isinstance(v, list) and len(v) == C.REPORT_MAX_ROWS,
        ),
        (
            '{"acao":"statusoperacoes","login":"XXXXX","senha":"XXXXX","token":"XXXX","datainicial":"2020-01-02 00:00:00"}',
            lambda v: isinstance(v, list) and {e["evento"] for e in v} == set(C.OPERATION_EVENTS),
        ),
        (
            '{"acao":"clicktocall","login":"root","senha":"XXXX","token":"XXXX","origem":"2002","destino":"56453377"}',
            lambda v: v[:3] == ["Status", "CHAMADA OK", "ID"] and re.fullmatch(r"2002_\d{14}_\d+", v[3]),
        ),
        (
            '{"acao":"statusramais","login":"root","senha":"XXXX","token":"XXXX"}',
            lambda v: [r["Ramal"] for r in v][:2] == ["2001", "2002"] and all(set(r) == set(C.RAMAL_FIELDS) for r in v),
        ),
    ],
)
def test_document_bodies(central: Running, body: str, check) -> None:  # type: ignore[no-untyped-def]
    with ApiClient(central.target) as api:
        ex = api.post(doc_body(central, body.replace('"senha":"XXXX"', '"senha":"XXXXX"')))
    assert ex.status_code == 200
    assert check(ex.value), ex.raw[:300]


def test_document_classe5_bodies_block_then_unblock(central: Running) -> None:
    t = central.target
    with ApiClient(t) as api:
        for acao, answer, blocked in (("BLOQUEAR", "BLOQUEADO", True), ("DESBLOQUEAR", "DESBLOQUEADO", False)):
            body = {
                "login": t.login,
                "senha": t.senha,
                "token": t.token,
                "acao": "bloqueioclasse5",
                "logincliente": "teste",
                "classe5acao": acao,
            }
            assert api.post(body).value == ["Status", answer]
            assert central.thread.call(lambda: central.store.is_extension_blocked("3001")) is blocked
            refused = api.call("clicktocall", origem="3001", destino="41187777").value
            assert (refused == ["Status", C.RAMAL_BLOQUEADO]) is blocked
        assert api.call("bloqueioclasse5", logincliente="nobody", classe5acao="BLOQUEAR").value == [
            "Status",
            C.CLIENTE_NAO_CADASTRADO,
        ]
        assert api.call("bloqueioclasse5", logincliente="teste", classe5acao="TRAVAR").value == [
            "Status",
            C.CAMPO_INVALIDO + "classe5acao",
        ]


def test_typographic_quotes_are_not_json(central: Running) -> None:
    # AMB-5: the document's insert example as printed.
    with ApiClient(central.target) as api:
        ex = api.post('{“acao”:"insert",“idcampanha”:"235",“login”:"XXXXXX”}')
    assert ex.value == ["Status", C.REQUISICAO_INVALIDA]


# --- auth ---------------------------------------------------------------------------------------


def _state(central: Running) -> tuple[object, ...]:
    """What a denied call could change. Waits for running click-to-call simulations to end first,
    and ignores the records the dialer writes on its own."""
    engine = central.central.calls
    assert engine is not None
    deadline = time.time() + 10
    while central.thread.call(engine.live_channels) and time.time() < deadline:
        time.sleep(0.05)
    s = central.store
    return central.thread.call(
        lambda: (
            s.count_contacts(),
            s.classe5_blocked("teste"),
            len(engine.live_channels()),
            s.db.execute("SELECT count(*) FROM calls WHERE id_clicktocall IS NOT NULL").fetchone()[0],
        )
    )


@pytest.mark.parametrize("acao", sorted(ACAO_BODIES))
@pytest.mark.parametrize("factor", ["login", "senha", "token", "source_ip", "foreign_token_here", "missing"])
def test_each_wrong_factor_denies_and_changes_nothing(central: Running, acao: str, factor: str) -> None:
    t = central.target
    source = "127.0.0.2" if factor == "source_ip" else "127.0.0.1"
    body: dict[str, object] = {"acao": acao, "login": t.login, "senha": t.senha, "token": t.token, **ACAO_BODIES[acao]}
    if factor == "login":
        body["login"] = t.login + "x"
    elif factor == "senha":
        body["senha"] = t.senha[:-1]
    elif factor == "token":
        body["token"] = "0" * 32
    elif factor == "foreign_token_here":
        body["token"] = t.foreign_token
    else:
        body.pop("senha") if factor == "missing" else None
    before = _state(central)
    with ApiClient(t, source_ip=source) as api:
        ex = api.post(body)
    assert ex.status_code == 200
    assert ex.value == ["Status", C.LOGIN_INVALIDO]  # AUTH-2, one string for every factor (AUTH-6)
    assert _state(central) == before  # AUTH-5


def test_foreign_token_works_from_its_own_ip(central: Running) -> None:
    t = central.target
    with ApiClient(t, source_ip="127.0.0.2") as api:
        ex = api.post(
            {
                "acao": "statusdetalhado",
                "login": t.login,
                "senha": t.senha,
                "token": t.foreign_token,
                "idcampanha": "583",
                "idmailing": "1435744",
            }
        )
    assert ex.value == []


# --- the plain port -----------------------------------------------------------------------------


def test_plain_port_answers_protocol_error_to_everything(central: Running) -> None:
    before = _state(central)
    with ApiClient(central.target, plain=True) as api:
        for acao, fields in ACAO_BODIES.items():
            assert api.call(acao, **fields).raw == b'["Status","Erro de Protocolo"]'
        assert api.post(b"\xff not json").value == ["Status", C.ERRO_PROTOCOLO]
        assert api.post(b"x" * (3 << 20)).value == ["Status", C.ERRO_PROTOCOLO]
        for path in ("/", "/gravador28/x.gsm", "/discador.php"):
            r = api.get(path)
            assert (r.status_code, r.content) == (200, b'["Status","Erro de Protocolo"]')
    assert _state(central) == before


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, answer",
    [
        (b"", C.REQUISICAO_INVALIDA),
        (b"{not json", C.REQUISICAO_INVALIDA),
        (b"[1,2,3]", C.REQUISICAO_INVALIDA),
        (b'"insert"', C.REQUISICAO_INVALIDA),
        (b"null", C.REQUISICAO_INVALIDA),
        (b'{"acao":"insert"\xff}', C.REQUISICAO_INVALIDA),
        (b"[" * 100000 + b"]" * 100000, C.REQUISICAO_INVALIDA),
        (b'{"acao":"statusramais"}', C.LOGIN_INVALIDO),
        (b'{"acao":"statusramais","login":["root"],"senha":1,"token":{}}', C.LOGIN_INVALIDO),
    ],
)
def test_malformed_bodies(central: Running, raw: bytes, answer: str) -> None:
    with ApiClient(central.target) as api:
        ex = api.post(raw)
    assert (ex.status_code, ex.value) == (200, ["Status", answer])


def test_lone_surrogates_are_refused_not_crashed_on(central: Running) -> None:
    t = central.target
    creds = f'"login":"{t.login}","senha":"{t.senha}","token":"{t.token}"'
    with ApiClient(t) as api:
        ex = api.post('{"acao":"insert","idcampanha":"583",' + creds + ',"cliente":"a\\ud800b"}')
        assert (ex.status_code, ex.value) == (200, ["Status", C.CAMPO_INVALIDO + "cliente"])
        ex = api.post('{"acao":"statusramais","login":"root","senha":"\\udfff","token":"' + t.token + '"}')
        assert (ex.status_code, ex.value) == (200, ["Status", C.LOGIN_INVALIDO])
        ex = api.post('{"acao":"clicktocall",' + creds + ',"origem":"\\ud800","destino":"1"}')
        assert (ex.status_code, ex.value) == (200, ["Status", C.CAMPO_INVALIDO + "origem"])


def test_ten_megabyte_body(central: Running) -> None:
    before = _state(central)
    t = central.target
    big = json.dumps(
        {
            "acao": "insert",
            "login": t.login,
            "senha": t.senha,
            "token": t.token,
            "idcampanha": "583",
            "cliente": "x" * (10 << 20),
        }
    )
    with ApiClient(t) as api:
        ex = api.post(big)
        assert (ex.status_code, ex.value) == (200, ["Status", C.REQUISICAO_INVALIDA])
        assert api.call("statusdetalhado", idcampanha="583", idmailing="1435744").value == []  # still serving
    assert _state(central) == before


@pytest.mark.parametrize(
    "acao, fields, answer",
    [
        (None, {}, C.CAMPO_INVALIDO + "acao"),
        ("nonsense", {}, C.ACAO_INVALIDA),
        ("insert", {}, C.CAMPO_INVALIDO + "idcampanha"),
        ("insert", {"idcampanha": {"id": 583}}, C.CAMPO_INVALIDO + "idcampanha"),
        ("insert", {"idcampanha": "583", "cliente": ["a"]}, C.CAMPO_INVALIDO + "cliente"),
        ("insert", {"idcampanha": "583", "tel1": True}, C.CAMPO_INVALIDO + "tel1"),
        ("insert", {"idcampanha": "583", "gen3": "x" * 255}, C.CAMPO_INVALIDO + "gen3"),
        ("insert", {"idcampanha": "999"}, C.CAMPANHA_NAO_CADASTRADA),
        ("statusdiscador", {"idcampanha": "999"}, C.CAMPANHA_NAO_CADASTRADA),
        ("statusdetalhado", {"idcampanha": "583"}, C.CAMPO_INVALIDO + "idmailing"),
        ("statusreport", {"datainicial": "2020-13-45 99:99:99"}, C.DATA_INVALIDA),
        ("statusreport", {"datainicial": "ontem"}, C.DATA_INVALIDA),
        ("statusoperacoes", {"datainicial": 20200101}, C.DATA_INVALIDA),
        ("clicktocall", {"origem": "9999", "destino": "41187777"}, C.RAMAL_INVALIDO),
        ("clicktocall", {"origem": "2001"}, C.CAMPO_INVALIDO + "destino"),
        ("bloqueioclasse5", {"logincliente": "teste"}, C.CAMPO_INVALIDO + "classe5acao"),
    ],
)
def test_field_errors(central: Running, acao: str | None, fields: dict[str, object], answer: str) -> None:
    before = _state(central)
    with ApiClient(central.target) as api:
        ex = api.call(acao, **fields) if acao else api.post({**api.credentials(), **fields})
    assert (ex.status_code, ex.value) == (200, ["Status", answer])
    assert _state(central) == before


def test_acao_is_case_insensitive_and_numbers_are_strings(central: Running) -> None:
    with ApiClient(central.target) as api:
        assert api.call("StatusDetalhado", idcampanha=583, idmailing=1435749).value["id_mailing"] == "1435749"


# --- dialer listing, fields ---------------------------------------------------------------------


def test_statusdiscador_records_carry_53_columns_twice_all_strings(central: Running) -> None:
    with ApiClient(central.target) as api:
        records = listing(api, "583")
    statuses = {r["status"] for r in records}
    assert statuses >= {s.value for s in C.ContactStatus}
    for r in records:
        assert record_pairs_agree(r, C.CONTACT_COLUMNS) == []
        assert len(r) == 2 * len(C.CONTACT_COLUMNS)
        assert all(isinstance(v, str) for v in r.values())
        assert int(r["tentativas"]) <= C.MAX_TRIES
        if r["status"] == "EXCEDIDO":
            assert r["tentativas"] == "5"
    doc = next(r for r in records if r["id"] == "1435743")
    assert (doc["status"], doc["tentativas"], doc["cidade"], doc["cuje"]) == (
        "Descartado",
        "2",
        "FILIAL DO CADASTRO",
        "CONTA_IDENTIFICADOR",
    )


def test_254_characters_with_accents_come_back_intact(central: Running) -> None:
    text = ("RESPONSÁVEL ÇÃO " * 20)[:254]
    fields = {name: text for name in C.OPEN_TEXT_FIELDS}
    with ApiClient(central.target) as api:
        assert api.call("insert", idcampanha="583", cliente=text, ddd1="11", tel1="41180009", **fields).value == [
            "Status",
            "OK",
        ]
        rec = [r for r in listing(api, "583") if r["numero"] == "41180009"][-1]
    for name in ("cliente", *C.OPEN_TEXT_FIELDS):
        assert rec[name] == text, name


def test_statusdetalhado(central: Running) -> None:
    with ApiClient(central.target) as api:
        detail = api.call("statusdetalhado", idcampanha="583", idmailing="1435749").value
        assert list(detail) == list(C.DETAIL_FIELDS)
        assert detail["nomeoperador"] == "DANIELE" and int(detail["duracao"]) > 10
        assert re.fullmatch(r"\d+\.\d+", detail["uniqueid"])
        assert detail["tempofila"] is None
        assert api.call("statusdetalhado", idcampanha="583", idmailing="1435744").value == []
        assert api.call("statusdetalhado", idcampanha="583", idmailing="0").value == []
        r = api.recording(detail["gravacao"])
    assert r.status_code == 200
    assert len(r.content) == int(detail["tamanho_gravacao"]) and gsm.is_gsm(r.content)


def test_recording_unknown_is_404(central: Running) -> None:
    with ApiClient(central.target) as api:
        assert api.recording("2020/01/01/nothing-here").status_code == 404
        assert api.get("/gravador28/2020/01/01/x.wav").status_code == 404


# --- report, operations -------------------------------------------------------------------------


def test_statusreport_cap_and_dates(central: Running) -> None:
    today = datetime.now().strftime("%Y-%m-%d") + " 00:00:00"
    with ApiClient(central.target) as api:
        rows = api.call("statusreport", datainicial=today).value
        assert len(rows) == C.REPORT_MAX_ROWS  # the seed has more than 500 today
        assert all(r["datahora"] >= today for r in rows)
        assert api.call("statusreport", datainicial="").value == rows  # REP-2
        assert api.call("statusreport").value == rows
        assert api.call("statusreport", inicio=today).value == rows  # AMB-3
        later = rows[-1]["datahora"]
        assert all(r["datahora"] >= later for r in api.call("statusreport", datainicial=later).value)
        assert api.call("statusreport", datainicial="2999-01-01 00:00:00").value == []


def test_statusoperacoes(central: Running) -> None:
    with ApiClient(central.target) as api:
        events = api.call("statusoperacoes", datainicial="").value
    assert events and all(list(e) == list(C.OPERATION_FIELDS) for e in events)
    assert {e["evento"] for e in events} <= set(C.OPERATION_EVENTS)
    today = datetime.now().strftime("%Y-%m-%d")
    assert all(e["datahora"] >= today for e in events)


# --- delete, click to call, ramais --------------------------------------------------------------


def test_deletediscador_counts_exactly(central: Running) -> None:
    with ApiClient(central.target) as api:
        api.call("insert", idcampanha="900", cliente="TO DELETE", tel1="40000099")
        n = len(listing(api, "900"))
        assert n >= 1
        assert api.call("deletediscador", idcampanha="900").value == ["Total Deletados", str(n)]
        assert listing(api, "900") == []
        assert api.call("deletediscador", idcampanha="900").value == ["Total Deletados", "0"]


def test_clicktocall_shows_in_ramais_then_leaves_a_record(central: Running) -> None:
    with ApiClient(central.target) as api:
        since = time.strftime(C.DATE_FORMAT, time.localtime(time.time() - 1))
        ok, msg, key, call_id = api.call("clicktocall", origem="6961", destino="41187777").value
        assert (ok, msg, key) == ("Status", "CHAMADA OK", "ID")
        assert re.fullmatch(r"6961_\d{14}_\d+", call_id)
        ramal = next(r for r in api.call("statusramais").value if r["Ramal"] == "6961")
        assert ramal["Callerid"] == "41187777" and ramal["Direcao"] == C.DIRECAO_SAIDA
        deadline = time.time() + 10
        found = None
        while found is None and time.time() < deadline:
            time.sleep(0.3)
            rows = api.call("statusreport", datainicial=since).value
            found = next((r for r in rows if r.get(C.ID_CLICKTOCALL) == call_id), None)
        assert found is not None, "C2C-3: the call record carries the ID"
        assert (found["ramal"], found["numero"], found["statuschamada"]) == ("6961", "41187777", "ANSWER")
        rec = api.recording(found["gravacao"])
        assert rec.status_code == 200 and len(rec.content) == int(found["tamanho_gravacao"])
        ramal = next(r for r in api.call("statusramais").value if r["Ramal"] == "6961")
        assert ramal["Status"] == C.RAMAL_UNAVAILABLE and ramal["Callerid"] == ""


def test_pipelined_requests_on_one_connection_come_back_in_order(central: Running) -> None:
    """Writes are corked per loop iteration (cork.py): answers must still arrive whole and in order."""
    import socket
    import ssl
    from urllib.parse import urlsplit

    t = central.target
    url = urlsplit(t.api_url)
    ctx = ssl.create_default_context(cafile=t.ca_file)
    bodies = [
        json.dumps(
            {
                "acao": "statusdetalhado",
                "login": t.login,
                "senha": t.senha,
                "token": t.token,
                "idcampanha": "583",
                "idmailing": m,
            }
        ).encode()
        for m in ("1435744", "1435749", "0")
    ]
    raw = b"".join(
        b"POST /api.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(b), b)
        for b in bodies
    )
    with (
        socket.create_connection((url.hostname, url.port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=url.hostname) as tls,
    ):
        tls.sendall(raw)
        data = b""
        while data.count(b"HTTP/1.1 200") < 3 or not data.endswith(b"[]"):
            chunk = tls.recv(65536)
            assert chunk, data
            data += chunk
    parts = data.split(b"HTTP/1.1 200 OK\r\n")[1:]
    answers = [p.split(b"\r\n\r\n", 1)[1] for p in parts]
    assert answers[0] == b"[]" and answers[2] == b"[]"
    assert json.loads(answers[1])["id_mailing"] == "1435749"


def test_document_clicktocall_curl_on_discador_php(central: Running) -> None:
    """AMB-4: the example posts to /discador.php, with the JSON in a Bearer header and no token in
    the body. The path is served as /api.php; without the token in the body it is denied."""
    t = central.target
    header = json.dumps(
        {
            "acao": "clicktocall",
            "login": t.login,
            "senha": t.senha,
            "token": t.token,
            "origem": "2002",
            "destino": "41187777",
        }
    )
    body = {"acao": "clicktocall", "login": t.login, "senha": t.senha, "origem": "2002", "destino": "41187777"}
    with ApiClient(t) as api:
        ex = api.post(body, path="/discador.php", headers={"Authorization": f"Bearer {header}"})
        assert ex.value == ["Status", C.LOGIN_INVALIDO]
        ex = api.post({**body, "token": t.token}, path="/discador.php")
        assert ex.value[:3] == ["Status", "CHAMADA OK", "ID"]
