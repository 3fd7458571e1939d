"""`pbxcheck load`: bounded Locust scenarios with thresholds that decide the exit code.

Locust runs as a subprocess (its gevent monkey-patching must not leak into this process); the target
reaches the locustfile through $PBXCHECK_TARGET. Distributed runs use Locust's own master/worker
engine (`--master` here, `--worker` on each other machine).

Exit codes, as ``pbxcheck run``'s: 0 every threshold held, 1 a threshold failed (or no request
completed, or an OK insert went missing), 2 usage or setup error (a bad option, Locust could not
start), 130 interrupted. SIGINT, SIGTERM and SIGHUP stop Locust's process group (its ``--processes``
workers too) with the SIGTERM Locust handles, then the embedded central; the temp folders go, and
``<scenario>.INCOMPLETE`` beside the results says they are partial.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from . import signals
from .bundled import bundled_dir
from .client import ApiClient
from .contract import Acao
from .target import Target, load_target

console = Console(highlight=False, soft_wrap=True)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, signals.EXIT_INTERRUPTED


@dataclass(frozen=True)
class Scenario:
    name: str
    locustfile: str  # relative to load/
    description: str
    counts_inserts: bool = False  # check afterwards that every OK insert is listed (nothing lost)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("dialer-insert", "locustfile_insert.py",
             "insert contacts into the disposable campaign; afterwards none may be missing", counts_inserts=True),
    Scenario("click-to-call", "locustfile_c2c.py", "concurrent clicktocall from the target's extensions"),
    Scenario("sip-register", "locustfile_sip_register.py", "authenticated SIP REGISTERs over UDP (SIP Users)"),
)}

_RUN_TIME = re.compile(r"^\d+(s|m|h)?$|^(\d+h)?(\d+m)?(\d+s)?$")


def scenarios() -> dict[str, str]:
    return {s.name: s.description for s in SCENARIOS.values()}


def _locustfile(scenario: str) -> tuple[Path, Scenario | None]:
    if scenario in SCENARIOS:
        sc = SCENARIOS[scenario]
        path = bundled_dir("load") / sc.locustfile
        if not path.is_file():
            raise ValueError(f"scenario {scenario!r} is not available in this installation ({path.name} missing)")
        return path, sc
    path = Path(scenario)
    if path.suffix == ".py" and path.is_file():
        return path, None
    raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)} (or a locustfile path)")


@contextlib.contextmanager
def _target(path: str | None, state: Path) -> Iterator[tuple[Target, str]]:
    if path is not None:
        yield load_target(path), path
        return
    from .central.process import CentralProcess

    with CentralProcess(state_dir=state / "central") as t:
        yield t, str(state / "central" / "target.toml")


def _campaign_size(t: Target) -> int:
    with ApiClient(t) as api:
        value = api.call(Acao.STATUSDISCADOR, idcampanha=t.disposable_campaign).value
    return len(value) if isinstance(value, list) else 0


@dataclass(frozen=True)
class Totals:
    requests: int
    failures: int
    p95_ms: float
    rps: float


def _totals(stats_json: Path) -> Totals:
    """Totals over every request name, from Locust's final ``--json-file`` stats (the CSV can lag)."""
    entries = json.loads(stats_json.read_text()) if stats_json.is_file() else []
    requests = sum(e["num_requests"] for e in entries)
    failures = sum(e["num_failures"] for e in entries)
    times: dict[float, int] = {}
    for e in entries:
        for ms, count in e["response_times"].items():
            times[float(ms)] = times.get(float(ms), 0) + count
    p95 = 0.0
    seen, total = 0, sum(times.values())
    for ms in sorted(times):
        seen += times[ms]
        if seen >= 0.95 * total:
            p95 = ms
            break
    start = min((e["start_time"] for e in entries), default=0.0)
    end = max((e["last_request_timestamp"] or 0 for e in entries), default=0.0)
    return Totals(requests, failures, p95, requests / (end - start) if end > start else 0.0)


def run(scenario: str, *, target: str | None, users: int, spawn_rate: float, run_time: str, web: bool,
        master: bool, worker: bool, master_host: str, expect_workers: int, max_fail_ratio: float,
        max_p95_ms: float | None, reports: str) -> int:
    """Run one scenario; 0 when every threshold held, 1 otherwise, 2 when Locust could not start, 130
    when a signal interrupted it. Raises ValueError on bad input."""
    if users < 1 or spawn_rate <= 0:
        raise ValueError("--users must be at least 1 and --spawn-rate positive")
    if not _RUN_TIME.match(run_time) or run_time in ("", "0", "0s"):
        raise ValueError(f"--run-time must be a bounded duration like 30s or 2m, not {run_time!r}")
    locustfile, sc = _locustfile(scenario)
    out = Path(reports) / "load"
    out.mkdir(parents=True, exist_ok=True)
    stem = sc.name if sc else locustfile.stem
    marker = out / f"{stem}.INCOMPLETE"
    marker.unlink(missing_ok=True)
    with signals.interrupts() as seen:
        try:
            return _run(locustfile, sc, stem, out, target=target, users=users, spawn_rate=spawn_rate,
                        run_time=run_time, web=web, master=master, worker=worker, master_host=master_host,
                        expect_workers=expect_workers, max_fail_ratio=max_fail_ratio, max_p95_ms=max_p95_ms)
        except KeyboardInterrupt:
            reason = f"interrupted by {seen.name}"
            marker.write_text(f"{reason}: the results beside this file cover part of the run only\n")
            console.print(f"[red]{reason}[/]: Locust and the central were stopped, the results in {out} are incomplete")
            return EXIT_INTERRUPTED


def _run(locustfile: Path, sc: Scenario | None, stem: str, out: Path, *, target: str | None, users: int,
         spawn_rate: float, run_time: str, web: bool, master: bool, worker: bool, master_host: str,
         expect_workers: int, max_fail_ratio: float, max_p95_ms: float | None) -> int:
    with tempfile.TemporaryDirectory(prefix="pbxcheck-load-") as tmp, _target(target, Path(tmp)) as (t, tpath):
        before = _campaign_size(t) if sc and sc.counts_inserts and not worker else 0
        cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--host", t.api_url,
               "-u", str(users), "-r", str(spawn_rate), "-t", run_time, "--stop-timeout", "10",
               "--csv", str(out / stem), "--html", str(out / f"{stem}.html"), "--json-file", str(out / stem)]
        if not web:
            cmd.append("--headless")
        if master:
            cmd += ["--master", "--expect-workers", str(expect_workers)]
        if worker:
            cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--worker", "--master-host", master_host]
        locust_tmp = Path(tmp) / "locust"
        locust_tmp.mkdir()
        env = {**os.environ, "PBXCHECK_TARGET": str(Path(tpath).resolve()), "TMPDIR": str(locust_tmp)}
        (out / f"{stem}.json").unlink(missing_ok=True)  # a stale one would pass for this run's stats
        # Its own session: the whole of Locust (workers included) is stopped as one group.
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            # Hard stop past the run time, in case a user blocks: every load is bounded.
            returncode = proc.wait(timeout=_seconds(run_time) + 120 if not web else None)
        except subprocess.TimeoutExpired:
            signals.stop_tree(proc, first=signal.SIGTERM, grace=15.0)
            console.print(f"[red]Locust still ran {_seconds(run_time) + 120} s after its start; stopped[/]")
            return EXIT_FAILED
        except BaseException:
            # SIGTERM: Locust's own handler quits its users and writes the stats (SIGINT would raise
            # KeyboardInterrupt in whichever user greenlet runs, and print its traceback).
            signals.stop_tree(proc, first=signal.SIGTERM, grace=15.0)
            raise
        if worker:
            return EXIT_OK if returncode == 0 else EXIT_FAILED
        if returncode != 0 and not (out / f"{stem}.json").is_file():
            console.print(f"[red]Locust exited with code {returncode} before running[/]")
            return EXIT_USAGE
        totals = _totals(out / f"{stem}.json")
        code = EXIT_OK
        requests, failures, p95 = totals.requests, totals.failures, totals.p95_ms
        ratio = failures / requests if requests else 1.0
        console.print(f"{stem}: {requests} requests, {failures} failed ({ratio:.2%}), "
                      f"{totals.rps:.0f} req/s, p95 {p95:.0f} ms")
        if requests == 0:
            console.print("[red]no request completed[/]")
            code = EXIT_FAILED
        if ratio > max_fail_ratio:
            console.print(f"[red]failure ratio {ratio:.2%} above --max-fail-ratio {max_fail_ratio:.2%}[/]")
            code = EXIT_FAILED
        if max_p95_ms is not None and p95 > max_p95_ms:
            console.print(f"[red]p95 {p95:.0f} ms above --max-p95-ms {max_p95_ms:.0f}[/]")
            code = EXIT_FAILED
        if sc and sc.counts_inserts:
            ok_inserts = requests - failures
            after = _campaign_size(t)
            lost = ok_inserts - (after - before)
            console.print(f"inserts answered OK: {ok_inserts}; listed afterwards: {after - before}; lost: {lost}")
            if lost != 0:
                console.print("[red]inserts answered OK but missing from statusdiscador[/]")
                code = EXIT_FAILED
        return code


def _seconds(run_time: str) -> int:
    if run_time.isdigit():
        return int(run_time)
    total = 0
    for value, unit in re.findall(r"(\d+)([hms])", run_time):
        total += int(value) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total
