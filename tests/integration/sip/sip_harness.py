"""Helpers for the SIP side's integration tests: the reference central in this process (a background
thread with its own loop), our user agent on real loopback sockets in the test's loop.

``CentralThread.call(fn)`` runs ``fn`` on the central's loop thread, which owns the store and the SIP
side's state: that is how a test looks at bindings or counters without racing the central.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pbxcheck.central.process import CentralThread
from pbxcheck.central.server import Central, CentralConfig
from pbxcheck.central.sip import SipService, SipSettings, create_service
from pbxcheck.target import Target

T = TypeVar("T")


@dataclass
class SipCentral:
    thread: CentralThread
    central: Central
    target: Target

    @property
    def side(self) -> SipService:
        side = self.central.services[0]
        assert isinstance(side, SipService)
        return side

    def call(self, fn: Callable[[], T]) -> T:
        return self.thread.call(fn)

    def registered(self, ext: str) -> bool:
        return self.call(lambda: self.side.registrar.lookup(ext) is not None)


def start_central(
    *, faults: tuple[str, ...] = (), settings: SipSettings | None = None, clock_speed: float = 1.0
) -> tuple[CentralThread, Central]:
    cfg = CentralConfig(
        api_port=0,
        plain_port=0,
        sip_port=0,
        ws_port=0,
        ws_plain_port=0,
        faults=frozenset(faults),
        clock_speed=clock_speed,
    )
    thread = CentralThread(cfg, services=[functools.partial(create_service, settings=settings)])
    return thread, thread.__enter__()


@contextlib.contextmanager
def running_central(
    *, faults: tuple[str, ...] = (), settings: SipSettings | None = None, clock_speed: float = 1.0
) -> Iterator[SipCentral]:
    thread, central = start_central(faults=faults, settings=settings, clock_speed=clock_speed)
    try:
        yield SipCentral(thread, central, central.target())
    finally:
        thread.__exit__(None, None, None)


# the healthy central's settings: short nonce lifetime so a stale nonce shows in seconds, and a far
# end that answers after 0.2 s
TEST_SETTINGS = SipSettings(nonce_lifetime=2.0, far_end_answer_delay=0.2)


def run(coro_fn: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    """Run a scenario on a fresh loop, bounded in time."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), timeout)

    return asyncio.run(bounded())
