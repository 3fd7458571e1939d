"""Helpers for the central's integration tests (imported by conftest.py and the test modules;
a uniquely named module, since several conftest.py files exist in the tree)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from pbxcheck.central.process import CentralThread
from pbxcheck.central.seed import seed
from pbxcheck.central.server import Central, CentralConfig
from pbxcheck.central.store import Store
from pbxcheck.central.tls import ensure_tls
from pbxcheck.target import Target


def make_template(d: Path) -> Path:
    """A seeded database and certificates that every central of the session copies."""
    ensure_tls(d)
    store = Store(str(d / "seeded.sqlite3"))
    seed(store)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return d


def copy_state(template: Path, dest: Path) -> str:
    """A state dir with the template's certificates and a copy of its database; returns the db path."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("ca.pem", "server.pem", "server.key"):
        shutil.copy(template / name, dest / name)
    db = dest / "central.sqlite3"
    shutil.copy(template / "seeded.sqlite3", db)
    return str(db)


def config_for(
    state: Path, db: str, *, faults: frozenset[str] = frozenset(), clock_speed: float = 1.0
) -> CentralConfig:
    return CentralConfig(
        api_port=0,
        plain_port=0,
        sip_port=0,
        ws_port=0,
        ws_plain_port=0,
        db_path=db,
        state_dir=str(state),
        faults=faults,
        clock_speed=clock_speed,
    )


class Running:
    """A central running on a background thread: its Target and a way onto its loop thread."""

    def __init__(self, thread: CentralThread, central: Central) -> None:
        self.thread = thread
        self.central = central
        self.target: Target = central.target()

    @property
    def store(self) -> Store:
        assert self.central.store is not None
        return self.central.store


def start(template: Path, state: Path, **kw: object) -> Iterator[Running]:
    db = copy_state(template, state)
    thread = CentralThread(config_for(state, db, **kw))  # type: ignore[arg-type]
    central = thread.__enter__()
    try:
        yield Running(thread, central)
    finally:
        thread.__exit__(None, None, None)
