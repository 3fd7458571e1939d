"""The one place SIP identifiers are made: branches, tags, Call-IDs, cnonces, instance hosts.

Every generator draws from ``secrets`` (RFC 3261 §8.1.1.4, §8.1.1.7, §19.3 ask for global uniqueness
and unguessable values: a predictable tag or Call-ID lets a third party inject into a dialog).
Other modules re-export these names (``transaction.new_branch``, ``dialog.new_tag``) as aliases only.
"""

from __future__ import annotations

import secrets

from pbxcheck.sip.headers import MAGIC_COOKIE

__all__ = ["new_branch", "new_call_id", "new_cnonce", "new_instance_host", "new_tag", "random_hex"]


def random_hex(nbytes: int) -> str:
    """``2 * nbytes`` lowercase hex digits: a token (RFC 3261 §25.1) of any use."""
    return secrets.token_hex(nbytes)


def new_branch() -> str:
    """A fresh branch: the magic cookie (§8.1.1.7, "z9hG4bK") then 64 random bits, so that it is
    unique across space and time and marks the request as RFC 3261 (§17.2.3 matching)."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    """A From/To tag with 64 random bits (§19.3 asks for at least 32)."""
    return secrets.token_hex(8)


def new_call_id() -> str:
    """A Call-ID with 96 random bits (§8.1.1.4: globally unique; no host part needed)."""
    return secrets.token_hex(12)


def new_cnonce() -> str:
    """A digest client nonce (RFC 2617 §3.2.2: opaque, chosen by the client)."""
    return secrets.token_hex(8)


def new_instance_host() -> str:
    """An invalid host for a WebSocket client's Via and Contact (RFC 7118 §5: ``<random>.invalid``)."""
    return secrets.token_hex(6) + ".invalid"
