"""The tree keeps the tooling it promises: ruff's formatter and linter, and mypy --strict over the
four trees (src, suites, sip_probes, load), all configured in pyproject.toml. They run here so that
the README's test command, and so CI, goes red when one of them does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ["src", "suites", "sip_probes", "load", "tests", "bench"]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed beside this Python: install the [test] extra")
    return found


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_format_is_clean() -> None:
    done = _run(_tool("ruff"), "format", "--check", *TREES)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_lint_is_clean() -> None:
    done = _run(_tool("ruff"), "check", *TREES)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_strict_is_clean() -> None:
    done = _run(_tool("mypy"))  # files and strict = true come from pyproject.toml
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_two_test_modules_share_a_name() -> None:
    """tests/unit and tests/integration are not packages: two modules with one basename stop pytest's
    collection of the whole tree ('import file mismatch')."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
