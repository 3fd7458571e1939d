"""``reports/load/<scenario>.result.json``: one run's figures, and how two of them compare.

A result holds the throughput, the HDR percentiles (corrected for coordinated omission in the open
model), Locust's own figures, failures, lost records, the generator's lateness, the environment and
the pbxcheck version. :func:`compare` judges a run against a baseline: per metric a tolerance (default
10 % on p99 and throughput); a latency difference under ``LATENCY_FLOOR_MS`` is never a regression
(loopback p99s of a millisecond or two differ by more than 10 % from run to run by noise alone).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = "pbxcheck-load-result/1"
DEFAULT_TOLERANCE = {"p99_ms": 0.10, "throughput": 0.10}
LATENCY_FLOOR_MS = 2.0
# metric -> (where in the result, higher is better)
METRICS: dict[str, tuple[tuple[str, ...], bool]] = {
    "throughput": (("throughput",), True),
    "p50_ms": (("latency_ms", "p50"), False),
    "p90_ms": (("latency_ms", "p90"), False),
    "p99_ms": (("latency_ms", "p99"), False),
    "p99.9_ms": (("latency_ms", "p99.9"), False),
    "max_ms": (("latency_ms", "max"), False),
    "fail_ratio": (("fail_ratio",), False),
}


def environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "locust": ver("locust"),
        "hdrhistogram": ver("hdrhistogram"),
    }


def pbxcheck_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pbxcheck")
    except PackageNotFoundError:
        return "0+unknown"


def metric(result: dict[str, Any], name: str) -> float | None:
    node: Any = result
    for part in METRICS[name][0]:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else None


@dataclass(frozen=True)
class Verdict:
    metric: str
    baseline: float
    current: float
    tolerance: float
    regressed: bool

    @property
    def ratio(self) -> float:
        return self.current / self.baseline if self.baseline else (1.0 if not self.current else float("inf"))

    def line(self) -> str:
        word = "REGRESSION" if self.regressed else "ok"
        return (
            f"{word:10} {self.metric}: baseline {self.baseline:.3f}, this run {self.current:.3f}, "
            f"ratio {self.ratio:.2f} (tolerance {self.tolerance:.0%})"
        )


def compare(
    baseline: dict[str, Any], current: dict[str, Any], tolerance: dict[str, float] | None = None
) -> list[Verdict]:
    """One verdict per metric with a tolerance that both results carry."""
    tol = dict(DEFAULT_TOLERANCE)
    tol.update(tolerance or {})
    out = []
    for name, allowed in tol.items():
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r} in the tolerance (known: {', '.join(METRICS)})")
        old, new = metric(baseline, name), metric(current, name)
        if old is None or new is None:
            continue
        higher_better = METRICS[name][1]
        if higher_better:
            regressed = new < old * (1 - allowed)
        else:
            regressed = new > old * (1 + allowed)
            if name.endswith("_ms") and new - old < LATENCY_FLOOR_MS:
                regressed = False
        out.append(Verdict(name, old, new, allowed, regressed))
    return out


def read(path: str | Path) -> dict[str, Any]:
    """A result file; ValueError (one line) when it is missing or not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ValueError(f"{p}: no such result file") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{p}: not a result file ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{p}: not a pbxcheck load result (schema {SCHEMA} expected)")
    return data


@dataclass(frozen=True)
class Threshold:
    name: str
    limit: float
    value: float
    higher_is_bad: bool = True

    @property
    def ok(self) -> bool:
        return self.value <= self.limit if self.higher_is_bad else self.value >= self.limit

    def line(self) -> str:
        return f"{self.name} {self.value:g} {'above' if self.higher_is_bad else 'below'} the limit {self.limit:g}"
