"""Admission to the reference central's SIP side: digest challenge and verification, nonces, lockout,
and the refusals that come after authentication (SIP-REG-1/2, SIP-SEC-1, C5-1, SIP-WS-1).

Digest: realm ``xhand``, ``qop="auth"``, ``algorithm=MD5``, an opaque fixed per central. A correct
answer on an expired nonce gets a new challenge with ``stale=TRUE``; an nc not greater than the last
accepted for that nonce (a replay) gets a fresh challenge. An unknown extension is verified against a
random password, so it is answered by the very same 401 as a wrong password (no enumeration,
SIP-REG-2). Refused after authentication (403, never before the challenge so nothing is revealed to
a caller without the password): the username is not the To (REGISTER) / From (INVITE) user; the
extension belongs to a blocked classe5 client (C5-1); REGISTER or INVITE over WS/WSS by an extension
without ramal-web (SIP-WS-1).

Nonces, Asterisk/PJSIP style.

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

from pbxcheck.contract import SIP_REALM
from pbxcheck.sip import digest
from pbxcheck.sip.drivers.base import Flow
from pbxcheck.sip.errors import DigestError
from pbxcheck.sip.message import Request

from ..lockout import Lockout
from ..store import SipAccount, Store
from .base import Replies, Stats


class NonceState(Enum):
    VALID = "valid"
    STALE = "stale"  # ours, right IP, but older than the lifetime
    INVALID = "invalid"  # not ours, malformed, or issued to another source IP


SALT_BYTES = 8


class NonceAuthority:
    def __init__(
        self,
        realm: str,
        *,
        lifetime: float = 30.0,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
        max_tracked: int = 200_000,
    ) -> None:
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
        # 64 bits: at thousands of challenges a second, 32 bits made two REGISTERs in one second get
        # the same nonce now and then (about once per 30 s load test), the second's nc=1 then a replay.
        salt = secrets.token_hex(SALT_BYTES)
        return f"{epoch}/{salt}{self._hash(epoch, salt, source_ip)}"

    def check(self, nonce: str, source_ip: str) -> NonceState:
        epoch, sep, digest = nonce.partition("/")
        salt_len = 2 * SALT_BYTES
        if not sep or not epoch.isdigit() or len(epoch) > 12 or len(digest) != salt_len + 24:
            return NonceState.INVALID
        if not hmac.compare_digest(digest[salt_len:], self._hash(epoch, digest[:salt_len], source_ip)):
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


class Admission:
    """Who may REGISTER or INVITE: ``admit`` answers (401/403/400/404) or returns the extension."""

    def __init__(
        self,
        store: Store,
        replies: Replies,
        stats: Stats,
        *,
        faults: frozenset[str] = frozenset(),
        nonce_lifetime: float = 30.0,
    ) -> None:
        self.store = store
        self.replies = replies
        self.stats = stats
        self.faults = faults
        self.nonces = NonceAuthority(SIP_REALM, lifetime=nonce_lifetime)
        self.lockout = Lockout.from_env()  # off unless PBXCHECK_SIP_LOCKOUT is set (central/lockout.py)
        self.opaque = secrets.token_hex(8)
        self._decoy_password = secrets.token_urlsafe(12)  # unknown extensions are checked against this

    def challenge(self, req: Request, flow: Flow, *, stale: bool = False) -> None:
        self.stats["challenged"] += 1
        no_qop = "challenge-no-qop" in self.faults
        ch = digest.Challenge(
            realm=SIP_REALM,
            nonce=self.nonces.issue(flow.remote[0]),
            opaque=None if no_qop else self.opaque,
            algorithm="MD5",
            qop=() if no_qop else ("auth",),
            stale=stale,
        )
        self.replies.respond(req, flow, 401, headers=[("WWW-Authenticate", str(ch))])

    def authenticate(self, req: Request, flow: Flow, claimed: SipAccount | None) -> SipAccount | None:
        """The authenticated extension, or None after answering (401 challenge)."""
        value = req.headers.get("Authorization")
        if value is None:
            self.challenge(req, flow)
            return None
        try:
            creds = digest.Credentials.parse(value)
        except DigestError:
            self.challenge(req, flow)  # RFC 4475 regaut01: unknown scheme -> challenge
            return None
        if self.lockout.locked(flow.remote[0]):
            self.replies.respond(req, flow, 403, "Forbidden (too many failed attempts)")
            return None
        lax = "nonce-replay-accepted" in self.faults
        row = (
            claimed
            if claimed is not None and claimed.number == creds.username
            else self.store.sip_account(creds.username)
        )
        if creds.realm != SIP_REALM or (creds.opaque is not None and creds.opaque != self.opaque):
            self.challenge(req, flow)
            return None
        state = self.nonces.check(creds.nonce, flow.remote[0])
        if state is NonceState.INVALID and not lax:
            self.challenge(req, flow)
            return None
        if creds.qop is None and "challenge-no-qop" not in self.faults:
            self.challenge(req, flow)  # we demanded qop=auth (RFC 2069 answers are weaker: no cnonce/nc)
            return None
        password = row.password if row is not None else self._decoy_password
        good = digest.verify(creds, password, req.method, realm=SIP_REALM)
        if "wrong-password-accepted" in self.faults and row is not None:
            good = True
        if not good or row is None:
            self.lockout.failed(flow.remote[0])
            self.challenge(req, flow)
            return None
        if state is NonceState.STALE and not lax:
            self.challenge(req, flow, stale=True)
            return None
        if creds.qop is not None:
            try:
                nc = int(creds.nc or "", 16)
            except ValueError:
                nc = 0
            if not self.nonces.accept_nc(creds.nonce, nc, replay_allowed=lax):
                self.challenge(req, flow)  # a replayed or wrong nonce count
                return None
        return row

    def admit(self, req: Request, flow: Flow, claimed: str | None) -> str | None:
        """Authentication and the refusals that come after it; the extension, or None (answered)."""
        header = "To" if req.method == "REGISTER" else "From"
        if claimed is None:
            self.replies.respond(req, flow, 400, f"Bad Request (no user in {header})")
            return None
        account = self.store.sip_account(claimed)
        if "unknown-ext-404" in self.faults and account is None:
            self.replies.respond(req, flow, 404)
            return None
        no_auth = (req.method == "REGISTER" and "register-no-challenge" in self.faults) or (
            req.method == "INVITE" and "invite-no-challenge" in self.faults
        )
        if no_auth and "Authorization" not in req.headers and account is not None:
            found: SipAccount | None = account
        else:
            found = self.authenticate(req, flow, account)
        if found is None:
            return None
        if found.number != claimed:
            self.forbid(req, flow, f"username does not match the {header}")
            return None
        if found.blocked and "classe5-sip-not-blocked" not in self.faults:
            self.forbid(req, flow, "client blocked")
            return None
        if flow.transport in ("WS", "WSS") and "ws-open-to-all" not in self.faults and not found.ramal_web:
            self.forbid(req, flow, "ramal-web disabled")
            return None
        return found.number

    def forbid(self, req: Request, flow: Flow, why: str) -> None:
        self.stats["forbidden"] += 1
        self.replies.respond(req, flow, 403, f"Forbidden ({why})")
