"""The audit's judges on hand-made requests: each clause fails for the reason it names, and passes
or is not applicable otherwise (no central, no socket)."""

from __future__ import annotations

import json
from typing import Any

from pbxcheck.audit.command import CommandRun
from pbxcheck.audit.judge_behaviour import TIGHT_MAX, judge_err_1, judge_rep_1
from pbxcheck.audit.judge_requests import body_problems, judge_req_1, judge_req_3
from pbxcheck.audit.judge_transport import judge_tls_1, judge_tls_2
from pbxcheck.audit.recorder import PLAIN, TLS, Exchange
from pbxcheck.audit.verdicts import Evidence

SENHA, TOKEN = "s3nh4-very-secret", "0123456789abcdef0123"
AUTH = {"login": "root", "senha": SENHA, "token": TOKEN}


def ex(phase: str = "normal", *, body: Any = None, raw: bytes | None = None, at: float = 0.0, **kw: Any) -> Exchange:
    data = (
        raw if raw is not None else json.dumps(body if body is not None else {"acao": "statusramais", **AUTH}).encode()
    )
    fields: dict[str, Any] = {"port": TLS, "method": "POST", "path": "/api.php", "query": "", "headers": []}
    fields.update(kw)
    return Exchange(
        phase, fields["port"], fields["method"], fields["path"], fields["query"], fields["headers"], data, at
    )


def run(phase: str, code: int | None = 0) -> CommandRun:
    return CommandRun(phase, code, code is None, 1.0)


def messages(v: Any) -> list[str]:
    return [f.message for f in v.failures]


def test_req_2_names_the_documents_deviations() -> None:
    got = dict(body_problems({"acao": "statusreport", **AUTH, "inicio": "2024-01-01 00:00:00"}))
    assert got == {
        "statusreport: `inicio` instead of `datainicial` (AMB-3)": "AMB-3: `inicio` instead of `datainicial` (statusreport)"
    }
    got = dict(body_problems({"acao": "insert", **AUTH, "ldcampanha": "900"}))
    assert "insert: `ldcampanha` instead of `idcampanha` (AMB-1)" in got
    assert "insert: lacks idcampanha" not in got  # renamed, not missing
    assert [m for m, _ in body_problems({"acao": "insert", **AUTH, "idcampanha": "900", "clinte": "x"})] == [
        "insert: `clinte` instead of `cliente`"
    ]


def test_req_2_types_lengths_phones_and_dates() -> None:
    body = {"acao": "INSERT", **AUTH, "idcampanha": 900, "cliente": "x" * 255, "ddd1": "011", "tel1": "11987654321"}
    got = [m for m, _ in body_problems(body)]
    assert got == [
        "insert: idcampanha is int, not a string",
        "insert: cliente has 255 characters (at most 254)",
        "insert: ddd1 is not 2 digits",
        "insert: tel1 is not 8-9 digits (the DDD goes in ddd1)",
    ]
    assert [m for m, _ in body_problems({"acao": "insert", **AUTH, "idcampanha": "9", "tel2": "987654321"})] == [
        "insert: tel2 without ddd2"
    ]
    assert [m for m, _ in body_problems({"acao": "statusoperacoes", **AUTH, "datainicial": "2024-01-01"})] == [
        "statusoperacoes: datainicial is not YYYY-MM-DD HH:ii:ss"
    ]
    assert body_problems({"acao": "statusreport", **AUTH, "datainicial": ""}) == []  # empty means today (REP-2)
    assert body_problems({"acao": "clicktocall", **AUTH, "origem": "2001", "destino": "11987654321"}) == []
    assert [m for m, _ in body_problems({"acao": "nada", **AUTH})] == ["unknown acao 'nada'"]


def test_req_1_credentials_only_in_a_posted_json_object() -> None:
    bearer = ex(headers=[("authorization", "Bearer " + json.dumps(AUTH))], path="/discador.php")
    in_query = ex(method="GET", query=f"senha={SENHA}")
    no_token = ex(body={"acao": "statusramais", "login": "root", "senha": SENHA})
    v = judge_req_1(Evidence({}, [bearer, in_query, no_token, ex()]), [SENHA, TOKEN])
    assert messages(v) == [
        "an Authorization header (Bearer): credentials travel only in the body",
        "POST /discador.php, not /api.php (AMB-4)",
        "credentials in the URL or its query string",
        "GET /api.php: not a POST",
        "statusramais: the body lacks token",
    ]
    assert v.deviations == [
        "AMB-4: credentials in an Authorization: Bearer header",
        "AMB-4: /discador.php instead of /api.php",
    ]
    assert judge_req_1(Evidence({}, [ex()]), [SENHA, TOKEN]).status == "passed"
    assert judge_req_1(Evidence({}, []), [SENHA]).status == "not-applicable"


def test_req_3_typographic_quotes_and_bad_utf8() -> None:
    quotes = ex(raw="{“acao”: “statusramais”}".encode())
    latin1 = ex(raw='{"acao":"insert","cliente":"Jo\xe3o"}'.encode("latin-1"))
    v = judge_req_3(Evidence({}, [quotes, latin1, ex(raw=b"")]))
    assert messages(v) == [
        "typographic quotes (“ ”) in the body: not JSON (AMB-5)",
        "the body is not UTF-8",
        "an empty body",
    ]
    assert v.deviations == ['AMB-5: typographic quotes instead of "']


def _report_answer(x: Exchange, n: int, last: str) -> Exchange:
    x.status = 200
    x.chunks.append(json.dumps([{"id": str(i), "datahora": last} for i in range(n)]).encode())
    return x


def test_rep_1_asks_again_from_the_last_records_instant() -> None:
    first = _report_answer(
        ex(body={"acao": "statusreport", **AUTH, "datainicial": "2024-01-01 00:00:00"}), 500, "2024-01-01 10:00:00"
    )
    right = ex(body={"acao": "statusreport", **AUTH, "datainicial": "2024-01-01 10:00:00"}, at=1.0)
    wrong = ex(body={"acao": "statusreport", **AUTH, "datainicial": "2024-01-01 10:00:01"}, at=1.0)
    assert judge_rep_1(Evidence({}, [first, right])).status == "passed"
    assert messages(judge_rep_1(Evidence({}, [first, wrong]))) == [
        "statusreport answered 500 records; the client asked again from '2024-01-01 10:00:01', not from the last record's instant"
    ]
    assert messages(judge_rep_1(Evidence({}, [first]))) == [
        "statusreport answered 500 records; the client never asked again"
    ]
    short = _report_answer(ex(body={"acao": "statusoperacoes", **AUTH}), 36, "2024-01-01 10:00:00")
    v = judge_rep_1(Evidence({}, [short]))
    assert (
        v.status == "not-applicable"
        and v.not_applicable == "the client never got 500 records (statusoperacoes: at most 36)"
    )


def test_err_1_silent_loss_and_tight_loop() -> None:
    insert = {"acao": "insert", **AUTH, "idcampanha": "900"}
    refused = ex("chaos-denial", body=insert)
    refused.chaos = "denial"
    ok_exit = Evidence({"chaos-denial": run("chaos-denial", 0)}, [refused])
    assert messages(judge_err_1(ok_exit)) == ["denial: 1 insert(s) refused, yet the command exited 0 (silent loss)"]
    failed_exit = Evidence({"chaos-denial": run("chaos-denial", 1)}, [refused])
    assert judge_err_1(failed_exit).status == "passed"
    loop = []
    for i in range(TIGHT_MAX + 1):
        x = ex("chaos-html-500", body=insert, at=i * 0.1)
        x.chaos = "html-500"
        loop.append(x)
    v = judge_err_1(Evidence({"chaos-html-500": run("chaos-html-500", 1)}, loop))
    assert messages(v) == [f"html-500: one refused call sent {TIGHT_MAX + 1} times within 2 s (tight retry loop)"]
    spaced = loop[:TIGHT_MAX]
    assert judge_err_1(Evidence({"chaos-html-500": run("chaos-html-500", 1)}, spaced)).status == "passed"
    assert judge_err_1(Evidence({"chaos-denial": run("chaos-denial", 0)}, [])).status == "not-applicable"


def test_tls_clauses() -> None:
    plain = ex(port=PLAIN)
    v = judge_tls_1(Evidence({}, [ex(), plain]), [SENHA])
    assert messages(v) == ["POST /api.php sent over plain http (its credentials in it)"]
    assert judge_tls_1(Evidence({}, [ex()]), [SENHA]).status == "passed"
    impostor_run = {"impostor": run("impostor", 1)}
    assert judge_tls_2(Evidence(impostor_run, [], impostor_connections=1), [SENHA]).status == "passed"
    assert judge_tls_2(Evidence(impostor_run, []), [SENHA]).status == "not-applicable"
    sent = judge_tls_2(Evidence(impostor_run, [], impostor=[ex("impostor")], impostor_connections=1), [SENHA])
    assert sent.status == "failed"
    assert judge_tls_2(Evidence({}, [ex()]), [SENHA]).not_applicable == "the impostor phase did not run (--serve)"
