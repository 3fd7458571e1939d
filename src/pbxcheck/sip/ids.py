"""The one place SIP identifiers are made: branches, tags, Call-IDs, cnonces, instance hosts.

Every generator draws from the operating system's CSPRNG (RFC 3261 §8.1.1.4, §8.1.1.7, §19.3 ask for
global uniqueness and unguessable values: a predictable tag or Call-ID lets a third party inject into
a dialog). ``os.urandom`` is read 4 KiB at a time, not once per identifier: each call is a system
call (~5 µs here), four per authenticated registration, a tenth of the load generator's CPU per
REGISTER before (bench/RESULTS.md); a forked child drops the parent's unread bytes, so the two never
hand out the same ones. Other modules re-export these names (``transaction.new_branch``,
``dialog.new_tag``) as aliases only.
"""

from __future__ import annotations

import os
import threading

from pbxcheck.sip.headers import MAGIC_COOKIE

__all__ = ["new_branch", "new_call_id", "new_cnonce", "new_instance_host", "new_tag", "random_bytes", "random_hex"]


POOL_BYTES = 4096
_lock = threading.Lock()
_pool = b""
_at = 0


def _forget_pool() -> None:
    global _pool, _at
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def random_bytes(nbytes: int) -> bytes:
    """``nbytes`` bytes from the CSPRNG, each handed out once (``secrets.token_bytes``, batched)."""
    global _pool, _at
    if nbytes > POOL_BYTES:
        return os.urandom(nbytes)
    with _lock:  # two threads never get the same slice
        at = _at
        if at + nbytes > len(_pool):
            _pool, at = os.urandom(POOL_BYTES), 0
        _at = at + nbytes
        return _pool[at : at + nbytes]


def random_hex(nbytes: int) -> str:
    """``2 * nbytes`` lowercase hex digits: a token (RFC 3261 §25.1) of any use."""
    return random_bytes(nbytes).hex()


def new_branch() -> str:
    """A fresh branch: the magic cookie (§8.1.1.7, "z9hG4bK") then 64 random bits, so that it is
    unique across space and time and marks the request as RFC 3261 (§17.2.3 matching)."""
    return MAGIC_COOKIE + random_hex(8)


def new_tag() -> str:
    """A From/To tag with 64 random bits (§19.3 asks for at least 32)."""
    return random_hex(8)


def new_call_id() -> str:
    """A Call-ID with 96 random bits (§8.1.1.4: globally unique; no host part needed)."""
    return random_hex(12)


def new_cnonce() -> str:
    """A digest client nonce (RFC 2617 §3.2.2: opaque, chosen by the client)."""
    return random_hex(8)


def new_instance_host() -> str:
    """An invalid host for a WebSocket client's Via and Contact (RFC 7118 §5: ``<random>.invalid``)."""
    return random_hex(6) + ".invalid"
