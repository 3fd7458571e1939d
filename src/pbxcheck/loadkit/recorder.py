"""What each Locust process measures beside Locust's own stats, and how the master merges it.

Latencies go into an HDR histogram in microseconds. In the open model a latency runs from the
request's *intended* send time (its slot in the schedule) to its answer, so time a request spent
waiting for a free user or for a late generator counts (no coordinated omission); in the closed model
it runs from the actual send. A request sent more than ``LATE_S`` after its slot is *late*: the count
says how far the generator itself kept up. A worker ships :meth:`Recorder.snapshot` (the delta since
its last one) with each Locust report; the master :meth:`Recorder.merge`\\ s them.
"""

from __future__ import annotations

import base64
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

LATE_S = 0.010  # sent later than this after its intended time: the generator did not keep up
_HIGHEST_US = 3_600_000_000  # one hour; longer latencies are clamped to it
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, _HIGHEST_US, 3)


@dataclass
class Second:
    """One wall-clock second of answers (for the plot): raw latencies until summarised."""

    count: int = 0
    failures: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> list[float]:
        """[count, failures, p50 ms, p99 ms, max ms]."""
        xs = sorted(self.latencies_ms)
        if not xs:
            return [self.count, self.failures, 0.0, 0.0, 0.0]

        def pct(q: float) -> float:
            return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]

        return [self.count, self.failures, round(pct(0.5), 3), round(pct(0.99), 3), round(xs[-1], 3)]


class Recorder:
    def __init__(self) -> None:
        self.hist = new_histogram()
        self._pending: dict[int, int] = {}  # µs (at the HDR's precision) -> count, not yet in hist
        self.seconds: dict[int, Second] = {}
        self.timeline: dict[int, list[float]] = {}  # summarised seconds (merged from snapshots)
        self.late = 0  # sent late because the generator (its CPU, its event loop) lagged
        self.backlog = 0  # taken late because every user was still waiting for an answer
        self.max_late_s = 0.0
        self.scheduled = 0  # slots taken from the schedule (and sent)
        self.asked_total = 0  # slots the schedule holds: those never sent are counted apart
        self.asked_window = 0.0  # slots due inside the steady window (after the ramp)
        self.sent_window = 0  # of them, sent inside the window
        self.acked: list[str] = []  # idcrms whose insert was answered OK
        self.calls: list[str] = []  # IDs of the click-to-calls answered CHAMADA OK

    # --- recording (hot path) -------------------------------------------------------------------

    def record(self, latency_s: float, ok: bool, wall: float) -> None:
        # Counted in a dict at the HDR's own precision (11 significant bits: 3 decimal digits) and
        # added to the histogram in bulk: hdrh's record_value costs ~10 µs of Python per call.
        us = int(latency_s * 1_000_000) or 1
        if us >= 2048:
            shift = us.bit_length() - 11
            us = (us >> shift) << shift
        self._pending[us] = self._pending.get(us, 0) + 1
        sec = self.seconds.get(int(wall))
        if sec is None:
            sec = self.seconds[int(wall)] = Second()
        sec.count += 1
        if not ok:
            sec.failures += 1
        sec.latencies_ms.append(latency_s * 1000.0)

    def sent(self, lateness_s: float, in_window: bool, backlog: bool = False) -> None:
        """One slot sent ``lateness_s`` after it was due. ``backlog``: no user was free when it came
        due (the target answered too slowly for the pool; its latency already counts the wait), so it
        is not the generator's lag."""
        self.scheduled += 1
        if backlog:
            self.backlog += 1
        elif lateness_s > LATE_S:
            self.late += 1
        if lateness_s > self.max_late_s:
            self.max_late_s = lateness_s
        if in_window:
            self.sent_window += 1

    # --- shipping and merging -------------------------------------------------------------------

    def flush(self) -> None:
        """Move the pending counts into the HDR histogram."""
        for us, n in self._pending.items():
            self.hist.record_value(min(us, _HIGHEST_US), n)
        self._pending = {}

    def snapshot(self, reset: bool = True) -> dict[str, Any]:
        """A JSON/msgpack-able delta; with ``reset`` the recorder starts over (a worker's report)."""
        self.flush()
        data = {
            "hdr": self.hist.encode().decode() if self.hist.get_total_count() else "",
            "seconds": {str(k): v.summary() for k, v in self.seconds.items()},
            "late": self.late,
            "backlog": self.backlog,
            "max_late_s": self.max_late_s,
            "scheduled": self.scheduled,
            "asked_total": self.asked_total,
            "asked_window": self.asked_window,
            "sent_window": self.sent_window,
            "acked": list(self.acked),
            "calls": list(self.calls),
        }
        if reset:
            self.hist = new_histogram()
            self.seconds = {}
            self.late = self.backlog = self.scheduled = self.sent_window = self.asked_total = 0
            self.asked_window = 0.0
            self.acked = []
            self.calls = []
        return data

    def merge(self, data: dict[str, Any]) -> None:
        if data.get("hdr"):
            self.hist.add(HdrHistogram.decode(data["hdr"].encode()))
        for key, row in data.get("seconds", {}).items():
            self.timeline[int(key)] = merge_second(self.timeline.get(int(key)), row)
        self.late += data.get("late", 0)
        self.backlog += data.get("backlog", 0)
        self.max_late_s = max(self.max_late_s, data.get("max_late_s", 0.0))
        self.scheduled += data.get("scheduled", 0)
        self.asked_total += data.get("asked_total", 0)
        self.asked_window += data.get("asked_window", 0.0)
        self.sent_window += data.get("sent_window", 0)
        self.acked.extend(data.get("acked", []))
        self.calls.extend(data.get("calls", []))

    def absorb_own(self) -> None:
        """Merge this process's own measurements into its merged view (local runner, or the master's)."""
        self.merge(self.snapshot(reset=True))

    def percentiles_ms(self) -> dict[str, float]:
        self.flush()
        h = self.hist
        if not h.get_total_count():
            return {name: 0.0 for name, _ in PERCENTILES} | {"max": 0.0}
        out = {name: h.get_value_at_percentile(q) / 1000.0 for name, q in PERCENTILES}
        out["max"] = h.get_max_value() / 1000.0
        return out

    def export(self) -> dict[str, Any]:
        """The merged view, for the parent process (``pbxcheck load``) to judge."""
        self.flush()
        return {
            "hdr": self.hist.encode().decode() if self.hist.get_total_count() else "",
            "count": self.hist.get_total_count(),
            "percentiles_ms": self.percentiles_ms(),
            "timeline": [[k, *v] for k, v in sorted(self.timeline.items())],
            "late": self.late,
            "backlog": self.backlog,
            "max_late_ms": round(self.max_late_s * 1000, 3),
            "scheduled": self.scheduled,
            "asked_total": self.asked_total,
            "asked_window": self.asked_window,
            "sent_window": self.sent_window,
            "acked_z": pack_ids(self.acked),
            "calls_z": pack_ids(self.calls),
        }


def merge_second(a: list[float] | None, b: list[float]) -> list[float]:
    """Two processes' summaries of one second: counts add, max is the max, p50/p99 are weighted
    (an approximation, used for the plot only; the run's percentiles come from the merged HDR)."""
    if a is None:
        return list(b)
    n = a[0] + b[0]
    w = (lambda i: (a[i] * a[0] + b[i] * b[0]) / n) if n else (lambda i: 0.0)
    return [n, a[1] + b[1], round(w(2), 3), round(w(3), 3), max(a[4], b[4])]


def pack_ids(ids: list[str]) -> str:
    return base64.b64encode(zlib.compress("\n".join(ids).encode())).decode()


def unpack_ids(packed: str) -> list[str]:
    text = zlib.decompress(base64.b64decode(packed)).decode() if packed else ""
    return text.split("\n") if text else []
