"""Fixtures for the third-party peer tests: a Kamailio registrar and a baresip phone factory."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from pbxcheck.peers import require
from pbxcheck.peers.baresip import BaresipPhone
from pbxcheck.peers.kamailio import KamailioProcess


@pytest.fixture(scope="module")
def kamailio_users() -> dict[str, str]:
    """Users of the test Kamailio, with random passwords (the ones issue 4 names)."""
    return {u: secrets.token_hex(8) for u in ("2001", "2002", "5545")}


@pytest.fixture(scope="module")
def kamailio(kamailio_users: dict[str, str]) -> Iterator[KamailioProcess]:
    """A Kamailio registrar with digest auth on a free loopback port (UDP+TCP), default (non-leaking) config."""
    require("kamailio")
    with KamailioProcess(kamailio_users) as kam:
        yield kam


@pytest.fixture
def phone(kamailio: KamailioProcess) -> Iterator[Callable[..., BaresipPhone]]:
    """Factory: ``phone("2001", transport="tcp", auto_answer=True)`` → a started BaresipPhone for that
    Kamailio user (password from the Kamailio users unless given); all stopped at teardown."""
    require("baresip")
    started: list[BaresipPhone] = []

    def make(user: str, *, password: str | None = None, **kw: object) -> BaresipPhone:
        p = BaresipPhone(
            user, kamailio.users[user] if password is None else password, kamailio.host, kamailio.port, **kw
        )  # type: ignore[arg-type]
        started.append(p)
        return p.start()

    try:
        yield make
    finally:
        for p in reversed(started):
            p.stop()
