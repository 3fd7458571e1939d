"""An asyncio loop on virtual time: when nothing is ready, the clock jumps to the next timer instead
of sleeping, so 64*T1 of SIP retransmissions through the asyncio runner take microseconds.

Only for tests without real sockets waiting on the network (a select that would block forever is a
deadlock and raises)."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector:
    def __init__(self, real: selectors.BaseSelector, loop: FakeClockLoop) -> None:
        self._real = real
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready:
            return ready
        if timeout is None:
            raise RuntimeError("the fake-clock loop would wait forever (nothing scheduled)")
        self._loop.virtual += max(timeout, 0.0)
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class FakeClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self.virtual = 1000.0
        self._selector = _JumpingSelector(self._selector, self)  # type: ignore[has-type,assignment,arg-type]

    def time(self) -> float:
        return self.virtual


def run(coro: Coroutine[Any, Any, T]) -> T:
    loop = FakeClockLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
