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
from collections import deque

from pbxcheck.sip.headers import MAGIC_COOKIE

__all__ = ["new_branch", "new_call_id", "new_cnonce", "new_instance_host", "new_tag", "random_hex"]


POOL_BYTES = 4096
CHUNK = 8  # bytes per handed-out piece: every identifier here is a whole number of them
# Pieces of one os.urandom block as hex, each handed out once: deque.popleft is atomic under the
# GIL, so threads (and greenlets: gevent's patched Lock was itself a tenth of this path) need no
# lock; two threads refilling at once only add twice as many fresh pieces.
_chunks: deque[str] = deque()
_forget_pool = _chunks.clear  # a forked child must not hand out what its parent will


os.register_at_fork(after_in_child=_forget_pool)


def _chunk() -> str:
    try:
        return _chunks.popleft()
    except IndexError:
        text = os.urandom(POOL_BYTES).hex()
        step = 2 * CHUNK
        _chunks.extend(text[i : i + step] for i in range(step, len(text), step))
        return text[:step]


def random_hex(nbytes: int) -> str:
    """``2 * nbytes`` lowercase hex digits from the CSPRNG: a token (RFC 3261 §25.1) of any use."""
    if nbytes == CHUNK:
        return _chunk()
    if nbytes > POOL_BYTES // 4:
        return os.urandom(nbytes).hex()
    return "".join(_chunk() for _ in range(-(-nbytes // CHUNK)))[: 2 * nbytes]


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
