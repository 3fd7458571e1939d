"""What `pbxcheck run` prints: a banner naming the target, progress by clause, one line per failed
clause with its failure file, the verdict and the certificate; pytest's tracebacks only with -v (they
are always in reports/pytest.log); never a secret. One central per module, three short runs on it."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pbxcheck import __version__, cli, report, runner
from pbxcheck.central.process import CentralProcess
from pbxcheck.contract import CONTRACT_DOCUMENT, CONTRACT_VERSION
from pbxcheck.redact import scan_for_leaks, scan_text
from pbxcheck.target import Target

pytestmark = pytest.mark.slow

# Two auth checks, each 9 cases: with ignore-token on, AUTH-2 and AUTH-3 fail (all cases alike).
CHECKS = [
    "test_auth.py::test_wrong_token_denied",
    "test_auth.py::test_valid_credentials_from_foreign_ip_denied",
]
# "FAILED <clause>  <title>  <n> distinct failure(s)  <failure file>"
FAILED_LINE = re.compile(r"^FAILED (?P<cid>\S+) +(?P<title>.+?) +(?P<n>\d+) distinct failures? +(?P<file>\S+)$")


@dataclass
class Run:
    code: int
    text: str
    reports: Path
    target: Target

    @property
    def table(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.reports / report.CLAUSES_JSON).read_text(encoding="utf-8"))
        return data

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def _run(target: Target, reports: Path, *, verbose: bool) -> Run:
    out = io.StringIO()
    assert target.path is not None
    code = runner.run(target.path, str(reports), paths=CHECKS, verbose=verbose, out=out)
    return Run(code, out.getvalue(), reports, target)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Run, Run]]:
    """The same faulty central checked twice: without -v, then with it."""
    tmp = tmp_path_factory.mktemp("faulty")
    with CentralProcess(faults=["ignore-token"]) as target:
        yield _run(target, tmp / "quiet", verbose=False), _run(target, tmp / "verbose", verbose=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with CentralProcess() as target:
        yield _run(target, tmp_path_factory.mktemp("clean") / "reports", verbose=False)


def test_the_banner_names_target_endpoints_tls_profile_and_contract(faulty: tuple[Run, Run]) -> None:
    run, _ = faulty
    assert run.code == runner.EXIT_FAILED, run.text[-3000:]
    head = run.text[: run.text.index("collecting the checks")]
    assert f"pbxcheck {__version__}" in head and f"“{CONTRACT_DOCUMENT}” {CONTRACT_VERSION}" in head
    assert "profile ci" in head
    assert re.search(rf"^  target +{re.escape(run.target.name)}$", head, re.M), head
    assert re.search(rf"^  API +{re.escape(run.target.api_endpoint)}  TLS verified$", head, re.M), head
    assert run.target.sip_wss_url and f"{run.target.sip_wss_url}  TLS verified" in head
    assert f"{run.target.sip_host}:{run.target.sip_udp_port}" in head


def test_one_line_per_failed_clause_with_its_failure_file(faulty: tuple[Run, Run]) -> None:
    run, _ = faulty
    failed = [m for m in map(FAILED_LINE.match, run.lines) if m]
    assert sorted(m["cid"] for m in failed) == sorted(report.failed_clauses(run.table)) == ["AUTH-2", "AUTH-3"]
    for m in failed:
        assert m["n"] == "1", m.group(0)  # nine parametrised cases failing alike are one failure
        path = Path(m["file"])
        assert path.parent == run.reports / report.FAILURES_DIR and path.is_file(), m.group(0)
        header = path.read_text(encoding="utf-8").splitlines()[1]
        assert header.startswith("clauses:") and m["cid"] in header.split(), (m["cid"], header)
    # then the verdict and where the certificate is, last
    assert "Does not conform: 2 clauses failed (AUTH-2, AUTH-3)" in run.lines[-3]
    assert run.lines[-1] == f"pbxcheck: certificate: {run.reports / 'certificate.html'}"


def test_progress_is_one_plain_line_per_clause_without_a_terminal(faulty: tuple[Run, Run]) -> None:
    run, _ = faulty
    assert "\x1b[" not in run.text  # no colour, no cursor movement, no spinner in a log
    progress = [line for line in run.lines if line.endswith("%]")]
    clauses = [line.split()[0] for line in progress]
    assert sorted(clauses) == sorted(set(clauses)) and {"AUTH-2", "AUTH-3"} <= set(clauses), progress
    assert progress[-1].endswith("[100%]")
    assert [line.split()[1] for line in progress if line.split()[0] in ("AUTH-2", "AUTH-3")] == ["FAILED"] * 2


def test_no_traceback_without_verbose_but_all_of_it_in_pytest_log(faulty: tuple[Run, Run]) -> None:
    run, _ = faulty
    for sign in ("Traceback", "= FAILURES =", "\nE   ", "short test summary"):
        assert sign not in run.text, sign
    log = (run.reports / runner.PYTEST_LOG).read_text(encoding="utf-8")
    assert "= FAILURES =" in log and "\nE   " in log and "test_wrong_token_denied[insert]" in log
    assert f"pytest's output: {run.reports / runner.PYTEST_LOG}" in run.text


def test_verbose_shows_pytest_s_failures_too(faulty: tuple[Run, Run]) -> None:
    _, run = faulty
    assert run.code == runner.EXIT_FAILED
    assert "= FAILURES =" in run.text and "\nE   " in run.text
    assert "pbxcheck: certificate: " in run.text
    assert len([line for line in run.lines if FAILED_LINE.match(line)]) == 2


def test_no_secret_on_the_terminal_nor_in_pytest_log(faulty: tuple[Run, Run]) -> None:
    for run in faulty:
        named = run.target.named_secrets
        assert len(named) >= 3
        assert scan_text(run.text, named) == []
        assert scan_for_leaks([run.reports], named) == []
        log = (run.reports / runner.PYTEST_LOG).read_text(encoding="utf-8")
        for secret in named.values():
            pieces = {secret[i : i + 6] for i in range(len(secret) - 5)}
            assert not any(p in run.text or p in log for p in pieces)


def test_a_clean_run_says_no_clause_failed(clean: Run) -> None:
    assert clean.code == runner.EXIT_OK, clean.text[-3000:]
    assert not [line for line in clean.lines if "FAILED" in line], clean.text
    progress = [line for line in clean.lines if line.endswith("%]")]
    assert {line.split()[0] for line in progress} >= {"AUTH-2", "AUTH-3"}
    assert all(line.split()[1] == "ok" for line in progress), progress
    summary = next(line for line in clean.lines if "· clauses: " in line)
    assert ", 0 failed," in summary and not summary.startswith("Does not conform")
    assert clean.lines[-1] == f"pbxcheck: certificate: {clean.reports / 'certificate.html'}"


def test_cli_run_passes_verbose_and_lists_it_in_help(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run(*args: Any, **kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(runner, "run", fake_run)
    for argv, verbose in ((["run"], False), (["run", "-v"], True), (["run", "--verbose"], True)):
        result = CliRunner().invoke(cli.app, argv)
        assert result.exit_code == 0, result.output
        assert seen["verbose"] is verbose, argv
    shown = CliRunner().invoke(cli.app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "--verbose" in shown and "-v" in shown and "pytest.log" in shown
