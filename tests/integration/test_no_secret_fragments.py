"""A run with an auth fault on (so the auth checks fail with the very bodies, credentials in them, that
were sent; with truncated locals and near-copies of the token in their texts) leaves no secret, nor
any run of 6+ characters of one, in reports/ (failure files, junit.xml, allure-results and its
attachments, the clause reports) or in the terminal stream."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pbxcheck import report, runner
from pbxcheck.central.process import CentralProcess
from pbxcheck.redact import scan_for_leaks, scan_text

pytestmark = pytest.mark.slow


def _windows(s: str, n: int = 6) -> set[str]:
    return {s[i : i + n] for i in range(len(s) - n + 1)}


def test_auth_fault_run_leaves_no_fragment_of_any_secret(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    out = io.StringIO()
    with CentralProcess(faults=["ignore-token"]) as target:
        assert target.path is not None
        code = runner.run(
            target.path,
            str(reports),
            paths=["test_auth.py"],
            extra_args=["-k", "not throttled", "--showlocals"],
            out=out,
        )
        named = {"senha": target.senha, "token": target.token, "foreign token": target.foreign_token or ""}
        named.update({f"extension {e.number} password": e.password for e in target.extensions})
    terminal = out.getvalue()
    assert "INTERNALERROR" not in terminal
    assert code == 1, "the ignore-token fault must fail AUTH-2/AUTH-3"
    files = [p for p in reports.rglob("*") if p.is_file()]
    assert any(p.parent.name == report.FAILURES_DIR for p in files), "the run should have written failure files"
    assert any("allure-results" in p.parts for p in files) and (reports / "junit.xml").exists()
    leaks = scan_for_leaks([reports], named) + scan_text(terminal, named)
    assert leaks == [], "\n".join(str(k) for k in leaks)
    # By brute force, in what pbxcheck writes itself (redacted with no exception at all): the terminal,
    # the failure files and the clause reports. (junit.xml and allure-results, hex IDs all over, are
    # scanned above with the rule that takes 6 characters inside a longer identifier for chance.)
    ours = [p for p in files if p.parent.name == report.FAILURES_DIR or p.name.startswith("clauses.")]
    blobs = [terminal] + [p.read_text(encoding="utf-8") for p in ours]
    for name, secret in named.items():
        windows = _windows(secret)
        assert windows, name
        assert not any(w in blob for blob in blobs for w in windows), f"part of the {name} leaked"
    assert "[redacted]" in terminal


def test_a_piece_of_a_secret_that_survived_redaction_fails_the_run_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's last pass: when the redaction of reports/ misses something (here it is replaced by
    one that leaves part of the senha in a file), a green run turns red, and the terminal names the
    file and the secret, never the piece."""
    reports = tmp_path / "reports"
    out = io.StringIO()
    with CentralProcess() as target:
        assert target.path is not None
        piece = target.senha[2:10]

        def leaky_redaction(folder: Path, *_: object, **__: object) -> None:
            (folder / "notes.txt").write_text(f"pasted by hand: {piece}\n", encoding="utf-8")

        monkeypatch.setattr(report, "redact_tree", leaky_redaction)
        code = runner.run(target.path, str(reports), paths=["test_auth.py::test_wrong_login_or_senha_denied"], out=out)
    terminal = out.getvalue()
    assert code == 1
    assert "SECRET LEAK" in terminal and "notes.txt" in terminal and "[credentials] senha" in terminal
    assert piece not in terminal
    assert '"secret_leaks": 1' in (reports / report.CLAUSES_JSON).read_text(encoding="utf-8")


def test_the_last_pass_is_silent_on_a_clean_folder(tmp_path: Path) -> None:
    from pbxcheck.target import parse_target

    target = parse_target(
        {
            "api": {"url": "https://127.0.0.1:1", "plain_url": "http://127.0.0.1:2"},
            "credentials": {"login": "root", "senha": "a-senha-of-16chr", "token": "f" * 32},
            "disposable": {"campaign": "900", "classe5_client": "teste"},
        }
    )
    (tmp_path / "clauses.md").write_text("login root, senha [redacted]\n", encoding="utf-8")
    out = io.StringIO()
    assert runner.last_pass(tmp_path, "all fine\n", target, out) == 0 and out.getvalue() == ""
    assert runner.last_pass(tmp_path, "token ffffffffff\n", target, out) == 1
    assert "the terminal output" in out.getvalue() and "ffffff" not in out.getvalue()
