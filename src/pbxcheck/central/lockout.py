"""Brute-force lockout by source IP, shared by the SIP side (digest) and the HTTPS API (AUTH-6).

Off by default: the reference central does not throttle, and SIP-SEC-1 / AUTH-6 report that.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

LOCKOUT_ENV = "PBXCHECK_SIP_LOCKOUT"  # "<failures>/<window s>/<lockout s>", e.g. "5/30/10"; unset: off
API_LOCKOUT_ENV = "PBXCHECK_API_LOCKOUT"  # the same, for the HTTPS API's denials (app.py, AUTH-6)


class Lockout:
    """Optional brute-force lockout (off by default: the reference central does not throttle, and
    SIP-SEC-1 reports that). On, ``failures`` wrong passwords from one source IP within ``window``
    seconds lock that IP out for ``seconds``: every authenticated request from it is refused 403, the
    right password too. It exists so the SIP-SEC-1 probe can be shown to recognise real throttling
    (tests/quality/test_sip_faults.py), turned on through the environment of the central's process."""

    def __init__(
        self,
        failures: int = 0,
        window: float = 30.0,
        seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures, self.window, self.seconds, self.clock = failures, window, seconds, clock
        self._failed: dict[str, list[float]] = {}
        self._until: dict[str, float] = {}

    @classmethod
    def from_env(cls, name: str = LOCKOUT_ENV, environ: dict[str, str] | None = None) -> Lockout:
        raw = (environ if environ is not None else os.environ).get(name, "")
        if not raw:
            return cls()
        n, window, seconds = (raw.split("/") + ["30", "10"])[:3]
        return cls(int(n), float(window), float(seconds))

    def locked(self, ip: str) -> bool:
        until = self._until.get(ip)
        if until is None:
            return False
        if self.clock() < until:
            return True
        del self._until[ip]
        return False

    def failed(self, ip: str) -> None:
        if self.failures <= 0:
            return
        now = self.clock()
        recent = [t for t in self._failed.get(ip, []) if now - t < self.window] + [now]
        if len(recent) >= self.failures:
            self._until[ip] = now + self.seconds
            recent = []
        self._failed[ip] = recent
        if len(self._failed) > 10_000:  # bounded: a flood from many addresses forgets the oldest
            self._failed.pop(next(iter(self._failed)))
