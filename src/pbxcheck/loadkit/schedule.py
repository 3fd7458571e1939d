"""The open model's arrival schedule: when the k-th request of a process is meant to be sent.

The rate climbs linearly from 0 to ``rate`` over ``ramp`` seconds, then stays at ``rate`` until
``duration``. The number of slots due by time t is N(t) = rate·t²/(2·ramp) during the ramp and
rate·ramp/2 + rate·(t - ramp) after it; slot k is due at N⁻¹(k). The schedule is finite (every run
is bounded in count as well as in time): slots due at or after ``duration`` are never issued.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Schedule:
    rate: float  # requests/s once the ramp is over
    ramp: float  # seconds
    duration: float  # seconds

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.ramp < 0 or self.duration <= 0:
            raise ValueError("rate and duration must be positive, ramp 0 or more")

    def due(self, t: float) -> float:
        """Slots due by ``t`` seconds after the start (a real number: N(t))."""
        t = min(max(t, 0.0), self.duration)
        if self.ramp and t < self.ramp:
            return self.rate * t * t / (2 * self.ramp)
        return self.rate * self.ramp / 2 + self.rate * (t - self.ramp)

    # computed once: at() runs once per request of the open model
    @cached_property
    def total(self) -> int:
        """How many slots the whole schedule issues."""
        return math.ceil(self.due(self.duration) - 1e-9)

    @cached_property
    def _ramp_slots(self) -> float:
        return self.rate * self.ramp / 2

    def at(self, k: int) -> float | None:
        """Seconds after the start at which slot ``k`` (0-based) is due; None past the end."""
        if k < 0 or k >= self.total:
            return None
        ramp_slots = self._ramp_slots
        if k < ramp_slots:  # (no ramp: 0 slots)
            return math.sqrt(2 * self.ramp * k / self.rate)
        return self.ramp + (k - ramp_slots) / self.rate


class Pacer:
    """Hands out the schedule's slots one by one, as absolute ``clock()`` times from ``start``."""

    def __init__(self, schedule: Schedule, start: float) -> None:
        self.schedule = schedule
        self.start = start
        self.issued = 0

    def next(self) -> float | None:
        offset = self.schedule.at(self.issued)
        if offset is None:
            return None
        self.issued += 1
        return self.start + offset
