"""The plugin's pure parts and the suites' strategies (no central needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcheck.bundled import bundled_dir
from pbxcheck.checks import Checker, ClauseFailure, failed_clauses_of, other_loopback, pin_matches, strategies
from pbxcheck.client import Exchange
from pbxcheck.contract import CLAUSES, MAX_PHONES, MAX_TEXT, OPEN_TEXT_FIELDS
from pbxcheck.redact import Redactor
from pbxcheck.target import parse_target

TARGET = parse_target(
    {
        "api": {"url": "https://127.0.0.1:8443", "plain_url": "http://127.0.0.1:8080"},
        "credentials": {"login": "root", "senha": "senha-secreta-123", "token": "f" * 32},
        "disposable": {"campaign": "900", "classe5_client": "teste"},
    }
)


def test_failed_clauses_named_by_clause_failures_else_all_marked() -> None:
    assert failed_clauses_of(ClauseFailure("REP-1", "x"), ("REP-1", "REP-2")) == ["REP-1"]
    assert failed_clauses_of(AssertionError("x"), ("REP-1", "REP-2")) == ["REP-1", "REP-2"]
    group = ExceptionGroup("many", [ClauseFailure("AUTH-5", "a"), ClauseFailure("AUTH-2", "b")])
    assert failed_clauses_of(group, ("AUTH-2", "AUTH-5", "AUTH-3")) == ["AUTH-2", "AUTH-5"]
    assert failed_clauses_of(None, ("AUTH-2",)) == []


def test_checker_failure_reads_like_schemathesis_and_is_redacted() -> None:
    check = Checker(TARGET, Redactor(TARGET.secrets))
    ex = Exchange(
        url="https://127.0.0.1:8443/api.php",
        body={"acao": "insert", "senha": TARGET.senha},
        source_ip="127.0.0.1",
        status_code=200,
        raw=b'["Status","Ok"]',
    )
    with pytest.raises(ClauseFailure) as info:
        check.fail("DIAL-INS-1", 'expected exactly ["Status", "OK"]', ex)
    text = str(info.value)
    assert info.value.clause_id == "DIAL-INS-1"
    assert text.startswith("[DIAL-INS-1] " + CLAUSES["DIAL-INS-1"].summary)
    assert "sent:" in text and "got:" in text and "curl" in text and '["Status","Ok"]' in text
    assert TARGET.senha not in text and "[redacted]" in text
    # the clause table's one line says what went wrong, not the clause's summary
    assert info.value.headline == '[DIAL-INS-1] expected exactly ["Status", "OK"]'
    assert ClauseFailure("AUTH-1", "first line\nsecond").headline == "first line"


def test_checker_condition_true_does_not_raise() -> None:
    Checker(TARGET, Redactor(TARGET.secrets))(True, "AUTH-1", "fine")


def test_pins_match_json_or_bare_strings() -> None:
    assert pin_matches('["Status","Token Invalido"]', ["Status", "Token Invalido"])
    assert not pin_matches('["Status","Token Invalido"]', ["Status", "Login/Senha Invalido"])
    assert pin_matches("statusreport, field id_clicktocall", "statusreport, field id_clicktocall")
    assert pin_matches("5", 5)


def test_other_loopback_differs() -> None:
    assert other_loopback("127.0.0.1") == "127.0.0.2"
    assert other_loopback("127.0.0.2") != "127.0.0.2"


@pytest.mark.parametrize("cpf", ["52998224725", "11144477735", "39053344705"])
def test_cpf_check_digits_of_known_valid_cpfs(cpf: str) -> None:
    assert strategies.cpf_check_digits(cpf[:9]) == cpf[9:]
    assert strategies.cpf_is_valid(cpf)
    assert not strategies.cpf_is_valid(cpf[:10] + str((int(cpf[10]) + 1) % 10))


@settings(max_examples=50, deadline=None)
@given(strategies.valid_contacts())
def test_valid_contacts_keep_the_document_rules(contact: dict[str, str]) -> None:
    assert strategies.cpf_is_valid(contact["cpf"])
    phones = [i for i in range(1, MAX_PHONES + 1) if f"tel{i}" in contact]
    assert phones == list(range(1, len(phones) + 1)) and 1 <= len(phones) <= MAX_PHONES
    for i in phones:
        assert len(contact[f"ddd{i}"]) == 2 and contact[f"ddd{i}"][0] != "0"
        assert contact[f"tel{i}"].isdigit() and len(contact[f"tel{i}"]) in (8, 9)
    for name in OPEN_TEXT_FIELDS:
        assert len(contact.get(name, "")) <= MAX_TEXT


@settings(max_examples=30, deadline=None)
@given(strategies.exactly_254)
def test_exactly_254_is_exactly_254(value: str) -> None:
    assert len(value) == MAX_TEXT


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_hostile_bodies_are_what_they_claim(data: st.DataObject) -> None:
    hostile = data.draw(strategies.hostile_inserts)
    valid = {"acao": "insert", "login": "l", "senha": "s", "token": "t", "idcampanha": "900", "cliente": "c"}
    body = hostile.build(valid)
    assert hostile.kind in strategies.HOSTILE_KINDS
    if hostile.kind in ("not-json", "typographic-quotes"):
        with pytest.raises(ValueError):
            json.loads(body)
    elif hostile.kind == "not-an-object":
        assert not isinstance(json.loads(body), dict)
    elif hostile.kind == "too-long":
        assert any(isinstance(v, str) and len(v) > MAX_TEXT for v in body.values())
    elif hostile.kind == "huge":
        assert len(body if isinstance(body, str) else json.dumps(body)) > 1 << 20


class _State:
    def __init__(self) -> None:
        self.observations: list[dict[str, object]] = []
        self.findings: list[dict[str, object]] = []
        self.redactor = Redactor(TARGET.secrets)


def test_recorder_pins_and_fail_on() -> None:
    from pbxcheck.checks import Recorder

    pinned = TARGET.with_(pins={"AUTH-2.token": '["Status","Token Invalido"]'}, fail_on_findings=("AUTH-6",))
    state = _State()
    rec = Recorder(state, pinned, "suites/x.py::t")  # type: ignore[arg-type]
    rec.observe("AUTH-2", "token", ["Status", "Token Invalido"])
    with pytest.raises(ClauseFailure) as info:
        rec.observe("AUTH-2", "token", ["Status", "Login/Senha Invalido"])
    assert info.value.clause_id == "AUTH-2" and "pinned" in str(info.value)
    rec.finding("REC-2", "medium", f"downloads without {TARGET.senha}")
    assert TARGET.senha not in str(state.findings)
    with pytest.raises(ClauseFailure):
        rec.finding("AUTH-6", "low", "no throttling")
    with pytest.raises(ValueError):
        rec.finding("AUTH-6", "dire", "x")
    assert len(state.observations) == 2 and len(state.findings) == 2


# --- Redaction of reports and exceptions, blocked checks -------------------------------------------------


def test_clause_failure_and_blocked_redact_what_they_are_given() -> None:
    from pbxcheck.checks import Blocked, blocked_by
    from pbxcheck.checks.failure import active_redactor, set_active_redactor

    saved = active_redactor()
    set_active_redactor(Redactor(TARGET.secrets))
    try:
        failure = ClauseFailure("AUTH-2", f"'senha': '{TARGET.senha[:13]}...'")
        assert TARGET.senha[:6] not in str(failure) and "[redacted]" in str(failure)
        with pytest.raises(Blocked) as info:
            blocked_by("C2C-1", f"no call ID (token {TARGET.token[2:20]})")
        assert info.value.clause_id == "C2C-1" and isinstance(info.value, pytest.skip.Exception)
        assert info.value.msg == "blocked by C2C-1: no call ID (token [redacted])"
        with pytest.raises(KeyError):
            blocked_by("NOPE-1", "x")
    finally:
        set_active_redactor(saved)


def _failure_repr(message: str) -> object:
    from _pytest._code import ExceptionInfo

    try:
        raise ExceptionGroup("group " + message, [ValueError(message)])
    except ExceptionGroup:
        info = ExceptionInfo.from_current()
    return info.getrepr(showlocals=True, style="long")


def test_redact_longrepr_keeps_each_type_pytest_expects() -> None:
    from pbxcheck.checks.redaction import redact_longrepr, render

    r = Redactor(TARGET.secrets)
    secret_text = f"token X{TARGET.token[1:]} senha {TARGET.senha[:12]}..."
    skip = ("/x/test.py", 3, "Skipped: " + secret_text)
    clean = redact_longrepr(skip, r)
    assert isinstance(clean, tuple) and clean[:2] == skip[:2] and "[redacted]" in clean[2]
    assert redact_longrepr(secret_text, r) == r.text(secret_text) and redact_longrepr(None, r) is None
    chain = _failure_repr(secret_text)
    kind = type(chain)
    assert TARGET.token[1:] in render(chain)
    clean = redact_longrepr(chain, r)
    assert type(clean) is kind and clean is chain  # redacted in place, same type (junitxml reads reprcrash)
    text = render(clean)
    assert "[redacted]" in text and r.text(text) == text
    assert "[redacted]" in clean.reprcrash.message  # type: ignore[attr-defined]


def test_unknown_repr_objects_fall_back_to_their_redacted_text() -> None:
    from _pytest._code.code import TerminalRepr

    from pbxcheck.checks.redaction import redact_longrepr, render

    class Opaque(TerminalRepr):
        def __init__(self, text: str) -> None:
            self._hidden = [text]  # a structure our walk does not enter: a non-pytest class holds it

        def toterminal(self, tw: object) -> None:
            tw.line(self._hidden[0])  # type: ignore[attr-defined]

    Opaque.__module__ = "someplugin"
    r = Redactor(TARGET.secrets)
    clean = redact_longrepr(Opaque(f"x {TARGET.senha} y"), r)
    assert isinstance(clean, TerminalRepr) and render(clean).strip() == "x [redacted] y"


def test_exception_text_redacted_for_readers_of_excinfo() -> None:
    from pbxcheck.checks.redaction import redact_exception

    r = Redactor(TARGET.secrets)
    plain = AssertionError(f"got {TARGET.senha}")
    plain.add_note(f"note {TARGET.token}")
    skipped = pytest.skip.Exception(f"no ws {TARGET.token}")
    group = BaseExceptionGroup("g", [plain, skipped])
    redact_exception(group, r)
    assert str(plain) == "got [redacted]" and plain.__notes__ == ["note [redacted]"]
    assert skipped.msg == "no ws [redacted]"


# --- The typed contract ------------------------------------------------------------------------------


def test_clause_ids_are_the_clause_table_and_the_spec() -> None:
    """ClauseId's members are exactly CLAUSES' keys (each Clause keyed by its own member), and, when
    the spec sits beside the tree, exactly the server-side IDs of CLAUSES.md (not CL-* nor AMB-*)."""
    import re
    from pathlib import Path

    from pbxcheck.contract import CLIENT_CLAUSES, ClauseId, ClauseKind

    assert {m.value for m in ClauseId} == set(CLAUSES) | set(CLIENT_CLAUSES)
    assert all(c.id is ClauseId(k) for k, c in (CLAUSES | CLIENT_CLAUSES).items())
    assert all(m.name == m.value.replace("-", "_") for m in ClauseId)
    assert CLAUSES["AUTH-1"].kind is ClauseKind.AUTH and CLAUSES["REC-2"].kind is ClauseKind.HARDENING
    spec = Path(__file__).resolve().parents[3] / "shared" / "spec" / "CLAUSES.md"
    if not spec.exists():
        pytest.skip(f"{spec} is not beside the tree")
    table = set(re.findall(r"^\| ([A-Z0-9]+(?:-[A-Z0-9]+)*-\d+) \|", spec.read_text(encoding="utf-8"), re.M))
    server = {i for i in table if not i.startswith(("CL-", "AMB-"))}
    assert server == {m.value for m in ClauseId} - set(CLIENT_CLAUSES)
    assert {i for i in table if i.startswith("CL-")} == set(CLIENT_CLAUSES)


# --- The check layer's shape ------------------------------------------------------------------------


def test_suites_and_probes_import_package_modules_only() -> None:
    """No sys.path insert in suites/ or sip_probes/, and no test module imports another test module
    (shared helpers live in pbxcheck.checks: support, strategies, sipkit, sipsession)."""
    import ast

    for folder in ("suites", "sip_probes"):
        for path in sorted(bundled_dir(folder).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
                    pytest.fail(f"{path.name}: sys.path is touched")
                names: list[str] = []
                if isinstance(node, ast.ImportFrom):
                    names = [node.module or ""] + [a.name for a in node.names] if node.level else [node.module or ""]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                bad = [
                    n
                    for n in names
                    if n.split(".")[-1].startswith(
                        ("test_", "conftest", "sipkit", "sipsession", "support", "strategies")
                    )
                    and not n.startswith("pbxcheck.")
                ]
                assert not bad, f"{path.name} imports {bad}: import shared code from pbxcheck.checks"


def test_http_and_sip_failures_share_one_formatter() -> None:
    """Checker.fail (HTTP) and SipSession.fail (SIP) both read '[ID] summary', the section, what went
    wrong, then the reproduction (curl line / ladder and raw messages); headline '[ID] what'."""
    from pbxcheck.checks.sipsession import SipSession

    r = Redactor(TARGET.secrets)
    http = Checker(TARGET, r)
    with pytest.raises(ClauseFailure) as h:
        http.fail(CLAUSES["AUTH-4"].id, f"answered with {TARGET.senha}")
    sip = SipSession(TARGET, r, "t")
    with pytest.raises(ClauseFailure) as s:
        sip.fail(CLAUSES["SIP-REG-1"].id, "no 401")
    for info, cid, what in ((h, "AUTH-4", "answered with [redacted]"), (s, "SIP-REG-1", "no 401")):
        c = CLAUSES[cid]
        assert str(info.value).startswith(f"[{cid}] {c.summary}\n  ({c.section})\n\n  {what}")
        assert info.value.headline == f"[{cid}] {what}" and info.value.clause_id == cid
    assert "SIP exchange of t" in str(s.value)
    assert TARGET.senha not in str(h.value)


def test_modules_marking_reads_both_spellings_of_a_clause_mark(tmp_path: Path) -> None:
    """Quality runs pick the modules of a fault's clauses from the marks; a spelling the reader
    misses would make the runner run every module (the bug that made faults 'break' other clauses)."""
    from pbxcheck.checks.clauses import modules_marking

    (tmp_path / "test_a.py").write_text("@pytest.mark.clause(ClauseId.AUTH_2, ClauseId.C5_1)\n", encoding="utf-8")
    (tmp_path / "test_b.py").write_text('@pytest.mark.clause("REP-1")\n', encoding="utf-8")
    (tmp_path / "helper.py").write_text('@pytest.mark.clause("AUTH-2")\n', encoding="utf-8")
    assert modules_marking(tmp_path, ["AUTH-2"]) == ["test_a.py"]
    assert modules_marking(tmp_path, ["C5-1", "REP-1"]) == ["test_a.py", "test_b.py"]
    assert modules_marking(tmp_path, ["RAM-1"]) == []
    assert modules_marking(tmp_path) == ["test_a.py", "test_b.py"]
