"""Digest nonces for the reference central's SIP side, Asterisk/PJSIP style.

A nonce is ``<epoch>/<hex>`` (the document's trace shows ``nonce="1609521111/e77ebd57..."``) where
``hex`` is 32 hex digits: 8 random (so two challenges in the same second differ, and a nonce-count
table per nonce means something) and 24 of a keyed BLAKE2b MAC of ``epoch:salt:source-ip:realm``
(keyed BLAKE2 is a proper MAC and costs a third of OpenSSL's HMAC-MD5 per call). The
central keeps no state to *issue* a nonce, and can tell from the nonce alone

* that it issued it (the hash matches),
* for which source IP (a nonce captured and replayed from another IP is invalid, SIP-SEC-1),
* how old it is (older than ``lifetime`` seconds: stale, answered ``stale=true`` so an honest device
  re-authenticates without asking its user, RFC 2617 §3.2.1).

What needs state is the nonce count: per nonce, the highest ``nc`` accepted so far. A request whose nc
is not greater (a replay of a captured Authorization, or a wrong nc) is refused (RFC 2617 §3.2.2:
the server "should" detect replays by nc). The table is bounded: entries die with their nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from enum import Enum


class NonceState(Enum):
    VALID = "valid"
    STALE = "stale"  # ours, right IP, but older than the lifetime
    INVALID = "invalid"  # not ours, malformed, or issued to another source IP


class NonceAuthority:
    def __init__(self, realm: str, *, lifetime: float = 30.0, secret: bytes | None = None,
                 clock: Callable[[], float] = time.time, max_tracked: int = 200_000) -> None:
        self.realm = realm
        self.lifetime = lifetime
        self.secret = secret or secrets.token_bytes(16)
        self.clock = clock
        self.max_tracked = max_tracked
        self._nc: dict[str, tuple[int, float]] = {}  # nonce -> (highest nc accepted, epoch)

    def _hash(self, epoch: str, salt: str, source_ip: str) -> str:
        msg = f"{epoch}:{salt}:{source_ip}:{self.realm}".encode()
        return hashlib.blake2b(msg, key=self.secret, digest_size=12).hexdigest()

    def issue(self, source_ip: str) -> str:
        epoch = str(int(self.clock()))
        salt = secrets.token_hex(4)
        return f"{epoch}/{salt}{self._hash(epoch, salt, source_ip)}"

    def check(self, nonce: str, source_ip: str) -> NonceState:
        epoch, sep, digest = nonce.partition("/")
        if not sep or not epoch.isdigit() or len(epoch) > 12 or len(digest) != 32:
            return NonceState.INVALID
        if not hmac.compare_digest(digest[8:], self._hash(epoch, digest[:8], source_ip)):
            return NonceState.INVALID
        age = self.clock() - int(epoch)
        if age < -5:  # from the future: not one of ours (clock skew of a few seconds tolerated)
            return NonceState.INVALID
        return NonceState.STALE if age > self.lifetime else NonceState.VALID

    def accept_nc(self, nonce: str, nc: int, *, replay_allowed: bool = False) -> bool:
        """Record ``nc`` for ``nonce``; False when it is not greater than one already accepted."""
        seen = self._nc.get(nonce)
        if seen is not None and nc <= seen[0] and not replay_allowed:
            return False
        if nc < 1:
            return False
        if seen is None and len(self._nc) >= self.max_tracked:
            self._expire()
        epoch = nonce.partition("/")[0]
        self._nc[nonce] = (max(nc, seen[0] if seen else 0), float(epoch) if epoch.isdigit() else self.clock())
        return True

    def _expire(self) -> None:
        horizon = self.clock() - self.lifetime - 5
        for k in [k for k, (_, t) in self._nc.items() if t < horizon]:
            del self._nc[k]
        if len(self._nc) >= self.max_tracked:  # still full (a flood of fresh nonces): drop the oldest half
            for k in sorted(self._nc, key=lambda k: self._nc[k][1])[: len(self._nc) // 2]:
                del self._nc[k]


LOCKOUT_ENV = "PBXCHECK_SIP_LOCKOUT"  # "<failures>/<window s>/<lockout s>", e.g. "5/30/10"; unset: off
API_LOCKOUT_ENV = "PBXCHECK_API_LOCKOUT"  # the same, for the HTTPS API's denials (app.py, AUTH-6)


class Lockout:
    """Optional brute-force lockout (off by default: the reference central does not throttle, and
    SIP-SEC-1 reports that). On, ``failures`` wrong passwords from one source IP within ``window``
    seconds lock that IP out for ``seconds``: every authenticated request from it is refused 403, the
    right password too. It exists so the SIP-SEC-1 probe can be shown to recognise real throttling
    (tests/quality/test_sip_faults.py), turned on through the environment of the central's process."""

    def __init__(self, failures: int = 0, window: float = 30.0, seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.window, self.seconds, self.clock = failures, window, seconds, clock
        self._failed: dict[str, list[float]] = {}
        self._until: dict[str, float] = {}

    @classmethod
    def from_env(cls, name: str = LOCKOUT_ENV, environ: dict[str, str] | None = None) -> Lockout:
        import os

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
