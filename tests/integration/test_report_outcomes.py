"""Every outcome pytest has, through the whole reporting path (terminal, junitxml, allure-pytest,
the clause reports), with the target's secrets in every message: no INTERNALERROR, no secret nor any
6+-character fragment of one anywhere, and each outcome ends where the clause table says it should."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clause_verdicts import agree

from pbxcheck import report
from pbxcheck.checks.junit_clauses import unprefixed
from pbxcheck.redact import scan_for_leaks, scan_text

SENHA = "Sx9-senhaSecreta_Q7"
TOKEN = "a3f0c4d2e1b5968778695a4b3c2d1e0f"
FOREIGN = "f0e1d2c3b4a5968778695a4b3c2d1e0a"
EXT = "ramalPass-77zz"
SECRETS = {"senha": SENHA, "token": TOKEN, "foreign token": FOREIGN, "extension password": EXT}

TARGET = f"""
name = "outcomes"
[api]
url = "https://127.0.0.1:9"
plain_url = "http://127.0.0.1:9"
[credentials]
login = "root"
senha = "{SENHA}"
token = "{TOKEN}"
[foreign]
token = "{FOREIGN}"
[disposable]
campaign = "900"
classe5_client = "teste"
[[extensions]]
number = "2001"
password = "{EXT}"
[gate]
require = ["SIP-WS-1"]
"""

# One check per outcome; each puts the secrets (whole, truncated, one character off) in its text.
CHECKS = '''
import logging
import sys

import pytest
from hypothesis import given, settings, strategies as st

from pbxcheck.checks import ClauseFailure, blocked_by

SENHA, TOKEN, FOREIGN, EXT = {secrets!r}
log = logging.getLogger("outcomes")


def noisy():
    print("stdout", SENHA, TOKEN[:13] + "...")
    print("stderr", "X" + TOKEN[1:], file=sys.stderr)
    log.warning("log %s %s", FOREIGN, EXT[:7])


@pytest.fixture
def skips_in_setup():
    pytest.skip("no [foreign] source IP for " + TOKEN[:12])


@pytest.fixture
def breaks_in_setup():
    noisy()
    raise ValueError("setup broke with " + SENHA)


@pytest.fixture
def breaks_in_teardown():
    yield
    noisy()
    raise RuntimeError("teardown broke with " + FOREIGN[:20])


@pytest.mark.clause("AUTH-1")
def test_passed(target):
    noisy()
    assert target.senha == SENHA


@pytest.mark.clause("AUTH-2")
def test_failed_assert(target):
    noisy()
    long_local = {{"senha": SENHA * 3, "token": TOKEN}}
    assert target.token == "X" + TOKEN[1:], long_local


@pytest.mark.clause("AUTH-3")
def test_skip_in_setup(target, skips_in_setup):
    pass


@pytest.mark.clause("SIP-WS-1")
def test_skip_in_call(target):
    noisy()
    pytest.skip("the target file has no sip.ws_url (token " + TOKEN + ")")


@pytest.mark.clause("SIP-REG-1")
@pytest.mark.skipif(True, reason="skipif " + SENHA[:10])
def test_skipif(target):
    pass


@pytest.mark.clause("AUTH-4")
@pytest.mark.xfail(reason="xfail " + EXT)
def test_xfail(target):
    noisy()
    raise AssertionError("expected " + SENHA)


@pytest.mark.clause("AUTH-5")
@pytest.mark.xfail(reason="xpass " + TOKEN, strict=False)
def test_xpass(target):
    noisy()


@pytest.mark.clause("AUTH-6")
@pytest.mark.xfail(reason="xpass strict " + FOREIGN, strict=True)
def test_xpass_strict(target):
    noisy()


@pytest.mark.clause("REP-1")
def test_error_in_setup(target, breaks_in_setup):
    pass


@pytest.mark.clause("REP-2")
def test_error_in_teardown(target, breaks_in_teardown):
    noisy()


@pytest.mark.clause("OPS-1")
def test_pytest_fail(target):
    pytest.fail("pytest.fail with " + SENHA[2:15] + " and " + TOKEN)


@pytest.mark.clause("REC-1")
@settings(max_examples=5, derandomize=True, database=None)
@given(st.integers(0, 3))
def test_hypothesis(target, n):
    noisy()
    assert f"{{TOKEN[:n + 20]}}" == "", SENHA


@pytest.mark.clause("C5-1", "REC-2")
def test_exception_group(target):
    raise ExceptionGroup("group " + TOKEN, [ValueError(SENHA), ClauseFailure("C5-1", "c5 " + FOREIGN)])


class Glued(Exception):
    """Its text comes from __str__, not args: allure-pytest reads it from the exception itself."""

    def __str__(self):
        return "zz" + TOKEN[3:10] + "zz"


@pytest.mark.clause("RAM-1")
def test_custom_exception_text(target):
    raise Glued()


@pytest.mark.clause("RAM-2")
def test_missing_fixture(target, no_such_fixture_{frag}):
    pass


@pytest.mark.clause("C2C-3")
def test_blocked(target):
    blocked_by("C2C-1", "the click-to-call answer is broken: " + TOKEN[3:30])
'''

OUTCOME = {  # clause -> its verdict in the clause table
    "AUTH-1": report.PASSED,
    "AUTH-2": report.FAILED,
    "AUTH-3": report.NOT_APPLICABLE,
    "SIP-WS-1": report.FAILED,  # not applicable, and [gate] require makes that a failure
    "SIP-REG-1": report.NOT_APPLICABLE,
    "AUTH-4": report.NOT_APPLICABLE,
    "AUTH-5": report.PASSED,
    "AUTH-6": report.FAILED,
    "REP-1": report.FAILED,
    "REP-2": report.FAILED,
    "OPS-1": report.FAILED,
    "REC-1": report.FAILED,
    "C5-1": report.FAILED,
    "REC-2": report.BLOCKED,
    "C2C-3": report.BLOCKED,
    "RAM-1": report.FAILED,
    "RAM-2": report.FAILED,
}


def _windows(s: str, n: int = 6) -> set[str]:
    return {s[i : i + n] for i in range(len(s) - n + 1)}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp = tmp_path_factory.mktemp("outcomes")
    (tmp / "target.toml").write_text(TARGET, encoding="utf-8")
    (tmp / "test_outcomes.py").write_text(
        CHECKS.format(secrets=(SENHA, TOKEN, FOREIGN, EXT), frag=TOKEN[4:16]), encoding="utf-8"
    )
    reports = tmp / "reports"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "test_outcomes.py",
            "--target",
            "target.toml",
            "--reports",
            str(reports),
            f"--junitxml={reports / 'junit.xml'}",
            f"--alluredir={reports / 'allure-results'}",
            "-rA",
            "-l",
            "-v",
            "-p",
            "no:cacheprovider",
            "-c",
            "/dev/null",
            "--rootdir",
            str(tmp),
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
        ],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, reports


def test_no_outcome_crashes_the_run(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, reports = run
    terminal = proc.stdout + proc.stderr
    assert "INTERNALERROR" not in terminal, terminal[-4000:].replace(TOKEN, "T")
    assert proc.returncode == 1
    assert "pbxcheck: clauses" in terminal  # the summary was written: the session reached its end
    suite = ET.parse(reports / "junit.xml").getroot()
    cases = {unprefixed(c.get("name", "")): [ch.tag for ch in c] for c in suite.iter("testcase")}
    assert cases["test_passed"] == ["system-out", "system-err"] or "failure" not in cases["test_passed"]
    assert "skipped" in cases["test_skip_in_call"] and "skipped" in cases["test_skip_in_setup"]
    assert "skipped" in cases["test_skipif"] and "skipped" in cases["test_xfail"]
    assert "failure" in cases["test_failed_assert"] and "failure" in cases["test_xpass_strict"]
    assert "error" in cases["test_error_in_setup"] and "error" in cases["test_error_in_teardown"]
    assert "skipped" in cases["test_blocked"]
    assert "failure" in cases["[gate] require SIP-WS-1"]  # the gate fails a clause no check failed
    results = [json.loads(p.read_text(encoding="utf-8")) for p in (reports / "allure-results").glob("*-result.json")]
    assert len({r["name"] for r in results}) == 16 + 1  # and the result of the [gate] that failed SIP-WS-1


def test_not_applicable_and_blocked_with_reasons_everywhere(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, reports = run
    table = json.loads((reports / report.CLAUSES_JSON).read_text(encoding="utf-8"))
    status = {cid: table["clauses"][cid]["status"] for cid in OUTCOME}
    assert status == OUTCOME
    ws = table["clauses"]["SIP-WS-1"]
    assert ws["not_applicable"][0]["reason"].startswith("the target file has no sip.ws_url")
    assert "[gate] require" in ws["failures"][0]["message"]
    assert table["clauses"]["AUTH-3"]["not_applicable"][0]["reason"].startswith("no [foreign] source IP")
    assert table["clauses"]["C2C-3"]["blocked_by"][0]["clause"] == "C2C-1"
    assert table["clauses"]["REC-2"]["blocked_by"][0]["clause"] == "C5-1"
    junit = (reports / "junit.xml").read_text(encoding="utf-8")
    assert 'message="not applicable: the target file has no sip.ws_url' in junit
    assert 'message="blocked by C2C-1: the click-to-call answer is broken' in junit
    allure = {
        r["name"]: r
        for p in (reports / "allure-results").glob("*-result.json")
        for r in [json.loads(p.read_text(encoding="utf-8"))]
    }
    assert allure["test_skip_in_call"]["status"] == "skipped"
    assert (
        "not applicable: the target file has no sip.ws_url" in allure["test_skip_in_call"]["statusDetails"]["message"]
    )
    assert "blocked by C2C-1" in allure["test_blocked"]["statusDetails"]["message"]
    assert allure["[gate] require SIP-WS-1"]["status"] == "failed"
    terminal = proc.stdout
    assert "not applicable: no [foreign] source IP" in terminal and "blocked by C2C-1" in terminal
    assert "not checked" in terminal


def test_no_secret_nor_fragment_anywhere(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, reports = run
    assert any((reports / report.FAILURES_DIR).iterdir())
    leaks = scan_for_leaks([reports], SECRETS) + scan_text(proc.stdout + proc.stderr, SECRETS)
    assert leaks == [], "\n".join(str(k) for k in leaks)
    # by brute force, every 6-character window of every secret: in the terminal and what pbxcheck writes
    # itself, then in junit.xml and allure-results but for runs inside longer identifiers (their UUIDs)
    ours = [p for p in reports.rglob("*") if p.is_file() and "allure-results" not in p.parts and p.name != "junit.xml"]
    blobs = [proc.stdout, proc.stderr] + [p.read_text(encoding="utf-8") for p in ours]
    for name, secret in SECRETS.items():
        assert not any(w in blob for w in _windows(secret) for blob in blobs), f"part of the {name} leaked"
    assert "[redacted]" in proc.stdout


def _texts(value: object, key: str = "") -> list[str]:
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _texts(v, k)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v, key)]
    return [value] if isinstance(value, str) and key in ("message", "trace", "name", "description", "value") else []


def test_allure_texts_redacted_without_exception(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """allure-pytest takes the message from the exception itself (a custom __str__ included) and
    fixture errors into containers: those texts are redacted strictly, like pytest's own."""
    _, reports = run
    texts = [
        t
        for p in (reports / "allure-results").glob("*.json")
        for t in _texts(json.loads(p.read_text(encoding="utf-8")))
    ]
    assert any("zz[redacted]zz" in t for t in texts)
    for name, secret in SECRETS.items():
        assert not any(w in t for t in texts for w in _windows(secret)), f"part of the {name} in allure's texts"


def _labels(result: dict[str, object]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for label in result["labels"]:  # type: ignore[attr-defined]
        out.setdefault(label["name"], []).append(label["value"])
    return out


def test_a_check_of_two_clauses_fails_only_where_it_failed(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """test_exception_group (C5-1, REC-2) fails C5-1 only: Allure has it failed under C5-1 and
    blocked (skipped) under REC-2, JUnit says so in its properties and name, as clauses.json does."""
    _, reports = run
    results = [json.loads(p.read_text(encoding="utf-8")) for p in (reports / "allure-results").glob("*-result.json")]
    group = {_labels(r)["clause"][0]: r for r in results if r["name"] == "test_exception_group"}
    assert sorted(group) == ["C5-1", "REC-2"]
    assert group["C5-1"]["status"] == "broken" and _labels(group["C5-1"])["outcome"] == ["failed"]
    assert group["REC-2"]["status"] == "skipped" and _labels(group["REC-2"])["outcome"] == ["blocked"]
    assert group["REC-2"]["statusDetails"]["message"].startswith("blocked by C5-1: ")
    assert group["C5-1"]["historyId"] != group["REC-2"]["historyId"]  # not retries of one test
    for cid, r in group.items():
        assert _labels(r)["suite"][0].startswith(cid + " ")
    case = next(
        c
        for c in ET.parse(reports / "junit.xml").getroot().iter("testcase")
        if "test_exception_group" in c.get("name", "")
    )
    assert case.get("name") == "[C5-1 REC-2] test_exception_group"
    props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
    assert props == [
        ("clause", "C5-1"),
        ("clause", "REC-2"),
        ("clause.C5-1", "failed"),
        ("clause.REC-2", "blocked by C5-1"),
    ]


def test_allure_and_junit_agree_with_clauses_json(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Every outcome pytest has, the gate's failure included: per clause, Allure's results and
    JUnit's properties give the verdict clauses.json gives."""
    _, reports = run
    table = json.loads((reports / report.CLAUSES_JSON).read_text(encoding="utf-8"))
    results = [json.loads(p.read_text(encoding="utf-8")) for p in (reports / "allure-results").glob("*-result.json")]
    assert agree(table, results, ET.parse(reports / "junit.xml").getroot()) == {}


pytest_plugins = ["pytester"]
ONE_EACH = [
    "test_passed",
    "test_failed_assert",
    "test_skip_in_setup",
    "test_skip_in_call",
    "test_skipif",
    "test_xfail",
    "test_xpass",
    "test_xpass_strict",
    "test_error_in_setup",
    "test_error_in_teardown",
    "test_pytest_fail",
    "test_hypothesis",
    "test_exception_group",
    "test_custom_exception_text",
    "test_missing_fixture",
    "test_blocked",
]


@pytest.mark.parametrize("name", ONE_EACH)
def test_each_outcome_alone(pytester: pytest.Pytester, name: str) -> None:
    """Each outcome on its own (in process, through pytester), so a crash names its outcome."""
    pytester.makefile(".toml", target=TARGET)
    pytester.makepyfile(test_outcomes=CHECKS.format(secrets=(SENHA, TOKEN, FOREIGN, EXT), frag=TOKEN[4:16]))
    reports = pytester.path / "reports"
    result = pytester.runpytest(
        "test_outcomes.py",
        "-k",
        f"{name} and not {name}_",
        "--target",
        "target.toml",
        "--reports",
        str(reports),
        f"--junitxml={reports / 'junit.xml'}",
        f"--alluredir={reports / 'allure-results'}",
        "-rA",
        "-l",
        "-p",
        "no:cacheprovider",
    )
    terminal = "\n".join(result.outlines + result.errlines)
    assert "INTERNALERROR" not in terminal and result.ret in (0, 1), terminal[-3000:].replace(TOKEN, "T")
    cases = ET.parse(reports / "junit.xml").getroot().iter("testcase")
    assert [unprefixed(c.get("name", "")) for c in cases if c.get("classname") != "pbxcheck.gate"] == [name]
    table = json.loads((reports / report.CLAUSES_JSON).read_text(encoding="utf-8"))
    assert any(row["checks"] for row in table["clauses"].values())
    leaks = scan_for_leaks([reports], SECRETS) + scan_text(terminal, SECRETS, strict=True)
    assert leaks == [], "\n".join(str(k) for k in leaks)
