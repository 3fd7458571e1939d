"""Fixtures of the SIP probes: a per-check SIP session that logs, draws and attaches what it exchanged.

``sip`` (a :class:`SipSession`) is what every probe uses:

* ``sip.run(coro)`` runs the probe's asyncio scenario with a hard time bound, closing every channel;
* ``await sip.channel("UDP")`` opens a logged channel to the target (``local=`` picks the source
  address, e.g. ``("127.0.0.3", 5070)`` for a second device behind another public IP);
* ``await sip.phone(ext, "TCP")`` gives a ``sip.ua.UserAgent`` for one extension of the target file
  (``sipkit.register`` and ``sipkit.call`` drive it); ``beside=`` puts it on another phone's socket
  (one NAT mapping);
* ``sip.fail(clause, what)`` / ``sip.check(cond, clause, what)`` fail one clause with the ladder of the
  exchange and its raw messages in the failure text.

At teardown every check attaches its exchange to the Allure report: the ladder (time, delta,
direction, request or status line, like the document's "Call flow"), the raw messages, and a pcap
(built with scapy from the log) for the checks that crafted packets or failed. Passwords never appear:
a probe never writes one into a message, and every text goes through the run's redactor anyway.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from pbxcheck.checks.sipsession import SipSession
from pbxcheck.contract import ClauseId
from pbxcheck.redact import Redactor
from pbxcheck.target import Target


@pytest.fixture
def sip(request: pytest.FixtureRequest, target: Target, redactor: Redactor) -> Iterator[SipSession]:
    session = SipSession(target, redactor, request.node.name)
    yield session
    rep = getattr(request.node, "_sip_rep_call", None)
    session.attach(failed=bool(rep is not None and rep.failed))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item._sip_rep_call = rep  # type: ignore[attr-defined]


def _clauses(item: pytest.Item) -> tuple[str, ...]:
    return tuple(str(a) for m in item.iter_markers("clause") for a in m.args)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # The SIP-SEC-1 probes (password guessing, torture messages) may get our address throttled or, on a
    # fragile central, stop its SIP side: they run after every other check except the AUTH-6 bursts.
    items.sort(key=lambda it: (ClauseId.AUTH_6 in _clauses(it), ClauseId.SIP_SEC_1 in _clauses(it)))


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
