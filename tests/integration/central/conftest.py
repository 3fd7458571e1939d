"""Fixtures for the central's integration tests: real servers on loopback, in this process.

A seeded database is built once (``template_db``) and copied for every central, so that answers
compare byte for byte between a clean central and one with a fault switched on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from central_harness import Running, make_template, start


@pytest.fixture(scope="session")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("central-template"))


@pytest.fixture(scope="module")
def central(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A clean central at clock speed 4 (a fresh contact waits 0.5 s, a click-to-call lasts 1 s),
    shared by a module's tests, which must not depend on their order."""
    yield from start(template_dir, tmp_path_factory.mktemp("central"), clock_speed=4.0)
