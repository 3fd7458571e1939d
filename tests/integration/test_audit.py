"""`pbxcheck audit`: three client integrations in three languages, each judged on the right clauses.

Each audit starts its own in-process reference central and runs the client five times (normal,
impostor certificate, four chaos answers), all on loopback and bounded by --timeout.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "fixtures" / "clients"
ALL = {"CL-TLS-1", "CL-TLS-2", "CL-REQ-1", "CL-REQ-2", "CL-REQ-3", "CL-REP-1", "CL-ERR-1"}


def audit(reports: Path, *command: str, timeout: float = 120, run_bound: int = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pbxcheck.audit",
            "--reports",
            str(reports),
            "--timeout",
            str(run_bound),
            "--",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def table(reports: Path) -> dict[str, Any]:
    return dict(json.loads((reports / "audit" / "client-clauses.json").read_text(encoding="utf-8")))


def statuses(reports: Path) -> dict[str, str]:
    return {cid: row["status"] for cid, row in table(reports)["clauses"].items()}


def secrets_of(reports: Path) -> list[str]:
    env = (reports / "audit" / "client.env").read_text(encoding="utf-8")
    pairs = dict(line.split("=", 1) for line in env.splitlines() if "=" in line and not line.startswith("#"))
    return [pairs["API_SENHA"].strip("'"), pairs["API_TOKEN"].strip("'")]


def assert_no_secret(reports: Path, proc: subprocess.CompletedProcess[str]) -> None:
    written = [reports / "audit" / n for n in ("client-clauses.json", "requests.jsonl")]
    written.append(reports / "client-certificate.html")
    written += sorted((reports / "failures").glob("audit-*.txt"))
    for secret in secrets_of(reports):
        assert secret[:6] not in proc.stdout + proc.stderr
        for path in written:
            assert secret[:6] not in path.read_text(encoding="utf-8"), path


def test_correct_python_client_conforms(tmp_path: Path) -> None:
    proc = audit(tmp_path, sys.executable, str(CLIENTS / "correct_client.py"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert statuses(tmp_path) == dict.fromkeys(ALL, "passed")
    assert "Conforms: all 7 clauses checked" in proc.stdout
    # both report acoes answered exactly 500 records, and it paged past each from the last instant
    rep = table(tmp_path)["clauses"]["CL-REP-1"]["checks"]
    assert {c["check"] for c in rep} == {"normal/statusreport", "normal/statusoperacoes"}
    env_file = tmp_path / "audit" / "client.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    names = [line.split("=", 1)[0] for line in env_file.read_text(encoding="utf-8").splitlines()[1:]]
    assert names == ["API_URL", "API_LOGIN", "API_SENHA", "API_TOKEN", "API_CA"]
    html = (tmp_path / "client-certificate.html").read_text(encoding="utf-8")
    assert 'data-verdict="conforms"' in html and all(cid in html for cid in ALL)
    phases = {p["phase"]: p for p in table(tmp_path)["audit"]["phases"]}
    assert phases["normal"]["exit_code"] == 0 and phases["impostor"]["exit_code"] != 0
    assert all(phases[f"chaos-{k}"]["exit_code"] == 1 for k in ("denial", "requisicao-invalida", "html-500", "timeout"))
    requests = [json.loads(line) for line in (tmp_path / "audit" / "requests.jsonl").read_text().splitlines()]
    assert {(r["phase"], r["port"], r["method"], r["path"]) for r in requests} >= {
        ("normal", "https", "POST", "/api.php"),
        ("chaos-timeout", "https", "POST", "/api.php"),
    }
    assert all('"senha": "[redacted]"' in r["body"] for r in requests)
    assert_no_secret(tmp_path, proc)


@pytest.mark.skipif(shutil.which("node") is None and not os.environ.get("CI"), reason="node is not installed")
def test_node_client_skipping_tls_verification_fails_cl_tls_2_only(tmp_path: Path) -> None:
    proc = audit(tmp_path, "node", str(CLIENTS / "insecure_client.js"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    got = statuses(tmp_path)
    assert got == {**dict.fromkeys(ALL, "passed"), "CL-TLS-2": "failed"}
    (failure,) = {f["message"] for f in table(tmp_path)["clauses"]["CL-TLS-2"]["failures"]}
    assert "certificate API_CA did not sign (its credentials in it)" in failure
    assert "CL-TLS-2  failed" in proc.stdout
    evidence = (tmp_path / "failures" / "audit-CL-TLS-2.txt").read_text(encoding="utf-8")
    assert "[impostor, impostor] POST /api.php" in evidence and '"senha":"[redacted]"' in evidence
    assert_no_secret(tmp_path, proc)


@pytest.mark.skipif(shutil.which("curl") is None and not os.environ.get("CI"), reason="curl is not installed")
def test_bash_client_ignoring_answers_fails_cl_err_1_and_cl_req_2_with_inicio(tmp_path: Path) -> None:
    proc = audit(tmp_path, str(CLIENTS / "careless_client.sh"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    got = statuses(tmp_path)
    assert got == {**dict.fromkeys(ALL, "passed"), "CL-ERR-1": "failed", "CL-REQ-2": "failed"}
    rows = table(tmp_path)["clauses"]
    assert rows["CL-REQ-2"]["deviations"] == ["AMB-3: `inicio` instead of `datainicial` (statusreport)"]
    silent = {f["check"] for f in rows["CL-ERR-1"]["failures"] if "silent loss" in f["message"]}
    assert silent == {"chaos-denial", "chaos-requisicao-invalida", "chaos-html-500", "chaos-timeout"}
    # it pages statusreport from the last record's instant (as `inicio`): CL-REP-1 holds all the same
    assert rows["CL-REP-1"]["checks"] and rows["CL-REP-1"]["status"] == "passed"
    html = (tmp_path / "client-certificate.html").read_text(encoding="utf-8")
    assert html.index('data-clause="CL-REQ-2"') < html.index('data-clause="CL-TLS-1"')  # failed first
    # the run certificate's own TLS line and its curl-reproduction note say nothing of a client
    assert "TLS verification" not in html and "PBX_SENHA" not in html
    assert_no_secret(tmp_path, proc)


RETRY_LOOP = r"""#!/usr/bin/env bash
# retries a refused insert at once, again and again (300 tries at most)
body="{\"acao\":\"insert\",\"login\":\"$API_LOGIN\",\"senha\":\"$API_SENHA\",\"token\":\"$API_TOKEN\",\"idcampanha\":\"900\",\"cliente\":\"Loop\"}"
for _ in $(seq 1 300); do
  answer="$(curl -s --max-time 1 --cacert "$API_CA" -d "$body" "${API_URL%/}/api.php")"
  [ "$answer" = '["Status","OK"]' ] && exit 0
done
exit 1
"""


@pytest.mark.skipif(shutil.which("curl") is None and not os.environ.get("CI"), reason="curl is not installed")
def test_a_client_retrying_a_refused_call_in_a_tight_loop_fails_cl_err_1(tmp_path: Path) -> None:
    client = tmp_path / "retry_loop.sh"
    client.write_text(RETRY_LOOP, encoding="utf-8")
    client.chmod(0o755)
    proc = audit(tmp_path / "reports", str(client), run_bound=8)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = table(tmp_path / "reports")["clauses"]
    assert {cid for cid, row in rows.items() if row["status"] == "failed"} == {"CL-ERR-1"}
    loops = {f["check"] for f in rows["CL-ERR-1"]["failures"] if "tight retry loop" in f["message"]}
    assert loops == {"chaos-denial", "chaos-requisicao-invalida", "chaos-html-500"}
    assert not any("silent loss" in f["message"] for f in rows["CL-ERR-1"]["failures"])
    assert rows["CL-REP-1"]["status"] == "not-applicable"


def test_a_clause_never_exercised_is_not_applicable(tmp_path: Path) -> None:
    proc = audit(tmp_path, sys.executable, str(CLIENTS / "correct_client.py"), "--insert-only")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = table(tmp_path)["clauses"]["CL-REP-1"]
    assert row["status"] == "not-applicable"
    assert "never read statusreport" in row["not_applicable"][0]["reason"]
    assert "Incomplete: 1 clause not checked (CL-REP-1)" in proc.stdout


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ((), "no command"),
        (("no-such-client-xyz",), "command not found: no-such-client-xyz"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(tmp_path: Path, command: tuple[str, ...], message: str) -> None:
    proc = audit(tmp_path, *command)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "audit").exists()


def test_a_command_that_makes_no_call_is_a_setup_error(tmp_path: Path) -> None:
    proc = audit(tmp_path, "true")
    assert proc.returncode == 2
    assert "made no call to $API_URL (exit code 0): nothing to audit" in proc.stdout


def test_serve_keeps_the_central_up_for_a_client_run_another_way(tmp_path: Path) -> None:
    """--serve: the env file is enough to run a client by hand; Ctrl-C (here SIGINT) judges what came."""
    server = subprocess.Popen(
        [sys.executable, "-m", "pbxcheck.audit", "--serve", "--reports", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        env_file = tmp_path / "audit" / "client.env"
        deadline = time.monotonic() + 60
        while not env_file.exists() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert env_file.exists(), "the audit central did not start"
        time.sleep(0.5)  # past the env file: the Ctrl-C handler is in place
        env = dict(os.environ)
        for line in env_file.read_text(encoding="utf-8").splitlines()[1:]:
            name, _, value = line.partition("=")
            env[name] = shlex.split(value)[0]
        client = subprocess.run(
            [sys.executable, str(CLIENTS / "correct_client.py")], env=env, capture_output=True, text=True, timeout=60
        )
        assert client.returncode == 0, client.stderr
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=60)
    assert server.returncode == 0, out
    got = statuses(tmp_path)
    assert got == {
        **dict.fromkeys(ALL, "passed"),
        "CL-TLS-2": "not-applicable",
        "CL-ERR-1": "not-applicable",
    }
    assert "Incomplete: 2 clauses not checked (CL-TLS-2, CL-ERR-1)" in out


def test_pbxcheck_audit_is_a_command_of_the_main_cli(tmp_path: Path) -> None:
    main = [sys.executable, "-m", "pbxcheck"]
    helped = subprocess.run([*main, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "audit" in helped.stdout
    proc = subprocess.run(
        [*main, "audit", "--reports", str(tmp_path), "--", "no-such-client-xyz", "-v"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert proc.stderr == "pbxcheck: command not found: no-such-client-xyz (not on PATH)\n"
