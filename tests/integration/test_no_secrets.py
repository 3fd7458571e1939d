"""After a run that fails (so failure files, junit failure texts and allure traces are full of request
bodies), no secret of the target appears in any file under reports/ or in the terminal output."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pbxcheck import report, runner
from pbxcheck.central.process import CentralProcess

pytestmark = pytest.mark.slow


def test_no_secret_in_reports_or_terminal(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    out = io.StringIO()
    # ignore-senha makes the auth checks fail with the very bodies (credentials in them) that were sent.
    with CentralProcess(faults=["ignore-senha"]) as target:
        assert target.path is not None
        code = runner.run(
            target.path,
            str(reports),
            paths=["test_auth.py", "test_ramais.py", "test_classe5.py"],
            extra_args=["-k", "not throttled"],
            out=out,
        )
        secrets = target.secrets
    terminal = out.getvalue()
    assert code == 1, terminal[-3000:]
    assert len(secrets) >= 3
    files = [p for p in reports.rglob("*") if p.is_file()]
    assert any(p.parent.name == report.FAILURES_DIR for p in files), "the run should have written failure files"
    assert any("allure-results" in p.parts for p in files)
    assert (reports / "junit.xml").exists()
    assert report.find_secrets(reports, secrets) == []
    for s in secrets:
        assert s not in terminal
    assert "[redacted]" in terminal
    assert "[redacted]" in "".join(
        p.read_text(encoding="utf-8", errors="replace") for p in (reports / report.FAILURES_DIR).iterdir()
    )


def test_no_secret_from_the_plugin_alone(tmp_path: Path) -> None:
    """The same through plain `pytest suites/... --target` (no runner to filter the output)."""
    import subprocess
    import sys

    from pbxcheck.bundled import bundled_dir

    reports = tmp_path / "reports"
    with CentralProcess(faults=["ignore-senha"]) as target:
        assert target.path is not None
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(bundled_dir("suites") / "test_auth.py"),
                "--target",
                target.path,
                "--reports",
                str(reports),
                f"--junitxml={reports / 'junit.xml'}",
                f"--alluredir={reports / 'allure'}",
                "-k",
                "senha and (insert or statusdiscador)",
                "-v",
                "-l",
                "-p",
                "no:cacheprovider",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        secrets = target.secrets
    terminal = proc.stdout + proc.stderr
    assert proc.returncode == 1, terminal[-3000:]
    assert [s for s in secrets if s in terminal] == []
    assert report.find_secrets(reports, secrets) == []
    assert any((reports / report.FAILURES_DIR).iterdir())
