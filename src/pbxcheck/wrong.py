"""Wrong credentials for the checks, and how a rate limit on them is told apart from plain denials.

Wrong values are random values of the secret's shape, never derived from it.

A "wrong token" made by changing one character of the real one puts 31 of its 32 characters into every
report and curl line that shows the request. ``wrong_like`` draws a fresh value of the same length and
alphabet instead, so a denial is still about a value that *looks* right, and nothing leaks.
"""

from __future__ import annotations

import secrets
import string

_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
_HEX = frozenset("0123456789abcdef")


def wrong_like(real: str) -> str:
    """A wrong value of the same shape as ``real`` (same length, same alphabet: hex stays hex, digits stay
    digits), drawn at random and guaranteed different. Never derived from ``real``: a report or a curl line
    that shows it gives away nothing of the secret, not even 31 of its 32 characters."""
    if not real:
        return secrets.token_hex(4)
    if set(real) <= _HEX:
        alphabet = "0123456789abcdef"
    else:
        # the character classes present (punctuation is not copied: that would tell which the secret holds)
        alphabet = "".join(c for c in _CLASSES if any(ch in c for ch in real)) or string.ascii_lowercase
    while True:
        value = "".join(secrets.choice(alphabet) for _ in real)
        if value != real:
            return value


def answers_delayed(times: list[float]) -> bool:
    """Later answers to wrong guesses clearly slower than the first ones: the median of the last four
    at least 3x the first four's and 200 ms more (medians, so one slow answer does not count). One
    rule for the API (AUTH-6) and SIP (SIP-SEC-1): a delay is one of the three signs of throttling."""
    if len(times) < 8:
        return False
    first, last = sorted(times[:4])[2], sorted(times[-4:])[2]
    return last >= 3 * first and last - first >= 0.2
