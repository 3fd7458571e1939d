"""The numbers a load scenario may dial or insert: the target's ``[load] destinations`` range, or on a
loopback central (the reference one, no real phones behind it) a range never dialled anywhere."""

from __future__ import annotations

LOOPBACK_DESTINATIONS = ("1120000000", "1120009999")


def in_range(number: str, first: str, last: str) -> bool:
    """``number`` is one of first..last (same width, digits only)."""
    return len(number) == len(first) and number.isdigit() and int(first) <= int(number) <= int(last)
