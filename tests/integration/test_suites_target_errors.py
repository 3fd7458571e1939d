"""A bad target file: exit 2 and one clear line naming the key, never a traceback."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from pbxcheck import runner
from pbxcheck.peers import free_port

GOOD = """
[api]
url = "https://127.0.0.1:1"
plain_url = "http://127.0.0.1:2"
[credentials]
login = "root"
senha = "x"
token = "y"
[disposable]
campaign = "900"
classe5_client = "teste"
"""

CASES = {
    "malformed TOML": (GOOD.replace('login = "root"', "login = root"), "not valid TOML"),
    "missing key": (GOOD.replace('token = "y"\n', ""), "credentials.token: missing"),
    "bad URL": (GOOD.replace("https://127.0.0.1:1", "ftp://central"), "api.url: must be"),
    "no disposable campaign": (GOOD.replace('campaign = "900"\n', ""), "disposable.campaign: missing"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_runner_bad_target_exits_2_with_one_line(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    path = tmp_path / "target.toml"
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    assert runner.run(str(path), str(tmp_path / "reports"), out=out) == 2
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "target.toml" in lines[0], lines
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("case", ["missing key", "bad URL"])
def test_cli_bad_target_exits_2_with_one_line(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    path = tmp_path / "target.toml"
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pbxcheck", "run", "--target", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert "Traceback" not in proc.stderr


def test_runner_usage_errors_exit_2(tmp_path: Path) -> None:
    out = io.StringIO()
    assert runner.run(None, str(tmp_path), hypothesis_profile="fast", out=out) == 2
    assert runner.run(None, str(tmp_path), paths=["no_such_suite.py"], out=out) == 2
    assert runner.run(str(tmp_path / "t.toml"), str(tmp_path), faults=["ignore-token"], out=out) == 2
    assert runner.run(None, str(tmp_path), faults=["no-such-fault"], out=out) == 2
    assert runner.run(str(tmp_path / "missing.toml"), str(tmp_path), out=out) == 2


def test_unreachable_target_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A central that is down: a preflight line saying so, quickly, not a hundred failed checks."""
    port = free_port(udp=False)  # nothing listens on it
    path = tmp_path / "target.toml"
    path.write_text(GOOD.replace("https://127.0.0.1:1", f"https://127.0.0.1:{port}"), encoding="utf-8")
    out = io.StringIO()
    assert runner.run(str(path), str(tmp_path / "reports"), out=out) == 2
    lines = out.getvalue().strip().splitlines()
    # the API line first (the SIP lines after it depend on what listens on 7048 here), then the summary
    assert f"API https://127.0.0.1:{port}: refused" in lines[0] and "no clause was checked" in lines[-1], lines
