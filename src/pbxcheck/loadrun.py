"""`pbxcheck load`: bounded Locust scenarios, two load models, honest latency, thresholds and baselines.

Locust runs as a subprocess (its gevent monkey-patching must not leak into this process); the target
reaches the locustfile through $PBXCHECK_TARGET, the run's settings through ``--pbx-*`` options that
Locust's master also hands to every worker. The locustfiles' glue (``load/common.py``) measures with
:mod:`pbxcheck.loadkit` and the master writes its merged measurements and Locust's final stats to one
file, from which this module writes ``<scenario>.result.json``, the CSV totals (the same figures) and
the PNG plot, checks every acknowledged insert by its idcrm, cleans up and decides the exit code.

Models: *closed* (``--users`` with think time, 1 s by default: safe on a real central) and *open*
(``--rate R --ramp S``: R requests/s after a linear ramp, latency from each request's intended send
time, the count of requests the generator could not send on time).

Safety: against a target outside 127.0.0.0/8 (and ::1) nothing starts unless its ``[load]`` names a
``max_rate`` (which caps ``--rate``, and the closed model's users together) and a ``destinations``
range (the only numbers a scenario dials or inserts). Every run is bounded in time (``--run-time``,
and a hard stop 120 s past it) and, in the open model, in count.

Exit codes, as ``pbxcheck run``'s: 0 every threshold held, 1 a threshold failed, a baseline metric
regressed, the generator could not keep up, no request completed, or an acknowledged insert is not
listed; 2 usage or setup error (a bad option, an unsafe target, Locust could not start); 130
interrupted. SIGINT, SIGTERM and SIGHUP stop Locust's process group (its ``--processes`` workers too)
with the SIGTERM Locust handles, then the embedded central; the temp folders go, and
``<scenario>.INCOMPLETE`` beside the results says they are partial.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.markup import escape

from . import signals
from .bundled import bundled_dir
from .client import ApiClient
from .contract import Acao
from .errors import PbxcheckError
from .loadkit import result as results
from .loadkit.destinations import LOOPBACK_DESTINATIONS
from .loadkit.phones import PhonesError, PhonesProcess
from .loadkit.phones import judge as judge_rings
from .loadkit.png import timeline_png
from .loadkit.recorder import LATE_S, unpack_ids
from .target import Target, load_target

console = Console(highlight=False, soft_wrap=True)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, signals.EXIT_INTERRUPTED
DEFAULT_THINK_S = 1.0
OPEN_GRACE_S = 2  # Locust runs this much past the open model's schedule, for the last answers
AGENTS = 20  # click-to-call's phones on a loopback target (a real central's need --agents: they take bindings)


@dataclass(frozen=True)
class Scenario:
    name: str
    locustfile: str  # relative to load/
    description: str
    inserts: bool = False  # check afterwards that every acknowledged insert is listed, then clean up
    profile: str | None = None  # default weights file (relative to load/)
    http: bool = True  # the API scenarios (destinations, weights); sip-register is its own User
    phones: bool = False  # user agents registered for the origins: each CHAMADA OK must ring one


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "dialer-insert",
            "locustfile_insert.py",
            "valid contacts into the disposable campaign; every acknowledged idcrm must be listed",
            inserts=True,
        ),
        Scenario(
            "click-to-call",
            "locustfile_c2c.py",
            "clicktocall from registered, auto-answering agents to [load] destinations; each must ring its origin",
            phones=True,
        ),
        Scenario(
            "status-polling",
            "locustfile_status_polling.py",
            "statusdiscador and statusramais polled like a CRM while inserts run",
            inserts=True,
        ),
        Scenario(
            "mixed",
            "locustfile_mixed.py",
            "inserts, click-to-call and polling in a profile's proportions",
            inserts=True,
            profile="profiles/mixed.toml",
        ),
        Scenario("sip-register", "locustfile_sip_register.py", "authenticated SIP REGISTERs (SIP Users)", http=False),
    )
}

_RUN_TIME = re.compile(r"^\d+(s|m|h)?$|^(\d+h)?(\d+m)?(\d+s)?$")
_ACTIONS = ("insert", "clicktocall", "statusdiscador", "statusramais")


def scenarios() -> dict[str, str]:
    return {s.name: s.description for s in SCENARIOS.values()}


@dataclass
class Options:
    """Everything `pbxcheck load SCENARIO` takes (the CLI's flags, by name)."""

    target: str | None = None
    users: int | None = None
    spawn_rate: float | None = None
    run_time: str = "30s"
    rate: float | None = None
    ramp: str = "0s"
    think_time: float | None = None
    processes: int = 0
    web: bool = False
    web_host: str = "127.0.0.1"
    master: bool = False
    worker: bool = False
    master_host: str = "127.0.0.1"
    expect_workers: int = 1
    max_fail_ratio: float | None = None
    max_p95_ms: float | None = None
    max_p99_ms: float | None = None
    max_lost: int | None = None
    max_late_ratio: float = 0.01  # open model: above it (or that far under the asked rate) the generator is saturated
    baseline: str | None = None
    profile: str | None = None
    faults: list[str] = field(default_factory=list)
    reports: str = "reports"
    cleanup: bool = True
    tolerance: dict[str, float] = field(default_factory=dict)  # --tolerance, over [load] tolerance
    central_cpu: int | None = None  # pin the embedded central (benchmarks)
    agents: int | None = None  # click-to-call's phones (default: AGENTS on a loopback target, else none)


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


def _free_port(host: str) -> int:
    """A TCP port nothing listens on at ``host`` right now (the kernel's pick)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _seconds(run_time: str, what: str = "--run-time") -> int:
    if not _RUN_TIME.match(run_time):
        raise ValueError(f"{what} must be a bounded duration like 30s or 2m, not {run_time!r}")
    if run_time.isdigit():
        return int(run_time)
    total = 0
    for value, unit in re.findall(r"(\d+)([hms])", run_time):
        total += int(value) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total


def read_profile(path: str | Path) -> dict[str, int]:
    """A profile file's ``[weights]``: action -> whole number. ValueError (one line) otherwise."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"--profile {p}: {exc}") from None
    weights = data.get("weights")
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"--profile {p}: needs a [weights] table (action = whole number)")
    for k, v in weights.items():
        if k not in _ACTIONS:
            raise ValueError(f"--profile {p}: unknown action {k!r} (known: {', '.join(_ACTIONS)})")
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"--profile {p}: weight of {k} must be a whole number, not {v!r}")
    if not any(weights.values()):
        raise ValueError(f"--profile {p}: every weight is 0")
    return {k: v for k, v in weights.items() if v}


def is_loopback(url_or_host: str) -> bool:
    from .checks.fixtures import is_loopback as host_is_loopback

    return host_is_loopback(urlsplit(url_or_host).hostname if "//" in url_or_host else url_or_host)


def safety_problem(t: Target, rate: float | None) -> str | None:
    """Why no load may start against this target, or None. Loopback targets are free."""
    if is_loopback(t.api_url):
        if rate and t.load.max_rate and rate > t.load.max_rate:
            return f"--rate {rate:g} is above the target's [load] max_rate {t.load.max_rate:g}"
        return None
    missing = [k for k, v in (("max_rate", t.load.max_rate), ("destinations", t.load.destinations)) if not v]
    if missing:
        return (
            f"{t.api_url} is not a loopback address: its target file must set [load] "
            f"{' and '.join(missing)} before any load starts (see docs/target-format.md)"
        )
    if rate and rate > (t.load.max_rate or 0):
        return f"--rate {rate:g} is above the target's [load] max_rate {t.load.max_rate:g}"
    return None


@contextlib.contextmanager
def _target(o: Options, state: Path) -> Iterator[tuple[Target, str]]:
    if o.target is not None:
        yield load_target(o.target), o.target
        return
    from .central.process import CentralProcess

    with CentralProcess(state_dir=state / "central", faults=o.faults, pin_cpu=o.central_cpu) as t:
        yield t, str(state / "central" / "target.toml")


def run(scenario: str, options: Options | None = None, **kwargs: Any) -> int:
    """Run one scenario; 0 when every threshold held, 1 otherwise, 2 when Locust could not start or
    the target is not safe to load, 130 when a signal interrupted it. Raises ValueError (or
    TargetError) on bad input."""
    o = options or Options(**kwargs)
    _validate(o)
    locustfile, sc = _locustfile(scenario)
    out = Path(o.reports) / "load"
    out.mkdir(parents=True, exist_ok=True)
    stem = sc.name if sc else locustfile.stem
    marker = out / f"{stem}.INCOMPLETE"
    marker.unlink(missing_ok=True)
    with signals.interrupts() as seen:
        try:
            return _run(locustfile, sc, stem, out, o)
        except KeyboardInterrupt:
            reason = f"interrupted by {seen.name}"
            marker.write_text(f"{reason}: the results beside this file cover part of the run only\n")
            console.print(f"[red]{reason}[/]: Locust and the central were stopped, the results in {out} are incomplete")
            return EXIT_INTERRUPTED


def _validate(o: Options) -> None:
    if o.users is not None and o.users < 1:
        raise ValueError("--users must be at least 1")
    if o.spawn_rate is not None and o.spawn_rate <= 0:
        raise ValueError("--spawn-rate must be positive")
    if o.run_time in ("", "0", "0s") or _seconds(o.run_time) <= 0:
        raise ValueError(f"--run-time must be a bounded duration like 30s or 2m, not {o.run_time!r}")
    if o.rate is not None and not (o.rate > 0 and math.isfinite(o.rate)):
        raise ValueError("--rate must be a positive number of requests per second")
    ramp = _seconds(o.ramp, "--ramp")
    if ramp >= _seconds(o.run_time) and o.rate:
        raise ValueError("--ramp must be shorter than --run-time")
    if not 0 <= o.max_late_ratio <= 1:
        raise ValueError("--max-late-ratio must be a ratio 0-1")
    if o.think_time is not None and o.think_time < 0:
        raise ValueError("--think-time must be 0 or more seconds")
    if o.rate and o.think_time:
        raise ValueError("--think-time is for the closed model; the open model (--rate) paces by the rate")
    if o.master and o.worker:
        raise ValueError("--master and --worker exclude each other")
    if o.processes and (o.master or o.worker):
        raise ValueError("--processes starts its own master and workers: not with --master or --worker")
    if o.processes < 0:
        raise ValueError("--processes must be 1 or more")
    if o.worker and o.target is None:
        raise ValueError(
            "a --worker needs --target (the master's target file): a worker never starts a central of its own"
        )
    if o.faults and o.target is not None:
        raise ValueError("--fault only applies to the embedded central (no --target)")
    if o.web_host not in ("127.0.0.1", "::1", "localhost") and not o.web:
        raise ValueError("--web-host only applies with --web")


def _run(locustfile: Path, sc: Scenario | None, stem: str, out: Path, o: Options) -> int:
    duration = _seconds(o.run_time)
    ramp = _seconds(o.ramp, "--ramp")
    weights = (
        read_profile(o.profile)
        if o.profile
        else (read_profile(bundled_dir("load") / sc.profile) if sc and sc.profile else None)
    )
    with tempfile.TemporaryDirectory(prefix="pbxcheck-load-") as tmp:
        # Before any central starts: a target file that does not allow this load is refused.
        if o.target is not None and not o.worker:
            problem = safety_problem(load_target(o.target), o.rate)
            if problem:
                console.print(f"[red]pbxcheck load: refused[/]: {escape(problem)}")
                return EXIT_USAGE
        with _target(o, Path(tmp)) as (t, tpath), contextlib.ExitStack() as stack:
            numbers = agent_numbers(o, sc, t)
            try:
                phones = stack.enter_context(PhonesProcess(tpath, numbers, Path(tmp))) if numbers else None
            except PhonesError as exc:
                console.print(
                    f"[red]pbxcheck load: the phones did not register[/]: {escape(str(exc))} "
                    "(--agents 0 runs click-to-call on the API alone)"
                )
                return EXIT_USAGE
            if phones is not None:
                console.print(f"{len(numbers)} agents registered and auto-answering: {', '.join(numbers)}")
            return _locust(locustfile, sc, stem, out, o, t, tpath, Path(tmp), duration, ramp, weights, phones)


def agent_numbers(o: Options, sc: Scenario | None, t: Target) -> list[str]:
    """The extensions click-to-call registers phones for (and calls from); ValueError when the target
    file lists fewer than ``--agents``."""
    if o.worker or sc is None or not sc.phones:
        return []
    want = o.agents if o.agents is not None else AGENTS if is_loopback(t.api_url) else 0
    # the ramal-web ones and the disposable classe5 client's (C5-1 blocks it) last
    pool = sorted(t.extensions, key=lambda e: (e.ramal_web, e.classe5_client == t.disposable_classe5))
    if o.agents is not None and len(pool) < want:
        raise ValueError(f"--agents {want}: the target file lists {len(pool)} extensions ([[extensions]])")
    return [e.number for e in pool[:want]]


def _locust(
    locustfile: Path,
    sc: Scenario | None,
    stem: str,
    out: Path,
    o: Options,
    t: Target,
    tpath: str,
    tmp: Path,
    duration: int,
    ramp: int,
    weights: dict[str, int] | None,
    phones: PhonesProcess | None = None,
) -> int:
    ld = t.load
    open_model = bool(o.rate)
    think = (
        0.0
        if open_model
        else (
            o.think_time
            if o.think_time is not None
            else ld.think_time
            if ld.think_time is not None
            else DEFAULT_THINK_S
        )
    )
    if open_model:
        assert o.rate is not None
        users = o.users or min(max(10, math.ceil(o.rate * 0.1)), 1000)
        spawn_rate = o.spawn_rate or float(users)
        locust_time = f"{duration + OPEN_GRACE_S}s"
    else:
        users = o.users or 10
        spawn_rate = o.spawn_rate or float(min(users, 10))
        locust_time = f"{duration}s"
    pbx_out = tmp / "pbx.json"
    locust_tmp = tmp / "locust"
    locust_tmp.mkdir()
    env = {
        **os.environ,
        "PBXCHECK_TARGET": str(Path(tpath).resolve()),
        "TMPDIR": str(locust_tmp),
        "PYTHONUNBUFFERED": "1",
    }
    base = [sys.executable, "-m", "locust", "-f", str(locustfile)]
    if o.worker:
        cmd = [*base, "--worker", "--master-host", o.master_host]
    else:
        cmd = [
            *base,
            "--host",
            t.api_url,
            "-u",
            str(users),
            "-r",
            str(spawn_rate),
            "-t",
            locust_time,
            "--stop-timeout",
            "10",
            "--csv",
            str(out / stem),
            "--html",
            str(out / f"{stem}.html"),
            "--only-summary",
            "--pbx-out",
            str(pbx_out),
        ]
        cmd += ["--pbx-think", str(think)]  # pacing: the HTTP users and the SIP user alike
        if open_model:
            cmd += ["--pbx-rate", str(o.rate), "--pbx-ramp", str(ramp), "--pbx-duration", str(duration)]
        if ld.max_rate and not open_model:
            cmd += ["--pbx-max-rate", str(ld.max_rate)]
        if sc is None or sc.http:
            if ld.destinations:
                cmd += ["--pbx-destinations", "-".join(ld.destinations)]
            if weights:
                cmd += ["--pbx-weights", ",".join(f"{k}={v}" for k, v in weights.items())]
            if phones is not None:
                cmd += ["--pbx-origins", ",".join(phones.numbers)]
        if o.web:
            # A port of its own: Locust's default 8089 is also the central's WSS default.
            web_port = _free_port(o.web_host)
            cmd += ["--web-host", o.web_host, "--web-port", str(web_port), "--autostart", "--autoquit", "0"]
            host = f"[{o.web_host}]" if ":" in o.web_host else o.web_host
            console.print(f"Locust's web UI: http://{host}:{web_port}/ (until the run ends)")
        else:
            cmd.append("--headless")
        if o.master:
            cmd += ["--master", "--expect-workers", str(o.expect_workers)]
        if o.processes:
            cmd += ["--processes", str(o.processes)]
    for name in (f"{stem}_stats.csv", f"{stem}.result.json", f"{stem}.png"):
        (out / name).unlink(missing_ok=True)  # a stale one would pass for this run's
    model = (
        f"open model, {o.rate:g} requests/s after a {ramp} s ramp"
        if open_model
        else f"closed model, {users} users, think time {think:g} s"
    )
    if not o.worker:
        console.print(f"pbxcheck load {stem}: {model}, {duration} s against {t.api_url}")
    started = datetime.now(UTC)
    # Its own session: the whole of Locust (workers included) is stopped as one group.
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        # Hard stop past the run time, in case a user blocks: every load is bounded.
        returncode = proc.wait(timeout=duration + 120 if not o.worker else None)
    except subprocess.TimeoutExpired:
        signals.stop_tree(proc, first=signal.SIGTERM, grace=15.0)
        console.print(f"[red]Locust still ran {duration + 120} s after its start; stopped[/]")
        return EXIT_FAILED
    except BaseException:
        # SIGTERM: Locust's own handler quits its users and writes the stats (SIGINT would raise
        # KeyboardInterrupt in whichever user greenlet runs, and print its traceback).
        signals.stop_tree(proc, first=signal.SIGTERM, grace=15.0)
        raise
    if o.worker:
        return EXIT_OK if returncode == 0 else EXIT_FAILED
    if not pbx_out.is_file():
        console.print(f"[red]Locust exited with code {returncode} before running[/]")
        return EXIT_USAGE
    data = json.loads(pbx_out.read_text())
    (out / f"{stem}_stats.csv").write_text(data["locust"]["stats_csv"])  # the very figures judged below
    res = _result(
        stem,
        sc,
        o,
        t,
        data,
        started=started,
        open_model=open_model,
        users=users,
        think=think,
        duration=duration,
        ramp=ramp,
        weights=weights,
    )
    if phones is not None:
        first, last = ld.destinations or LOOPBACK_DESTINATIONS
        res["calls"] = judge_rings(unpack_ids(data["pbx"]["calls_z"]), phones.numbers, phones.stop(), first, last)
    if sc and sc.inserts:
        res["lost"] = _check_inserts(t, unpack_ids(data["pbx"]["acked_z"]))
        if o.cleanup:
            res["cleanup"] = _cleanup(t)
    code = _judge(res, o, t)
    (out / f"{stem}.result.json").write_text(json.dumps(res, indent=1) + "\n")
    if res["timeline"]:
        (out / f"{stem}.png").write_bytes(timeline_png(res["timeline"]))
    console.print(f"results: {out / (stem + '.result.json')}, {out / (stem + '.html')}, {out / (stem + '.png')}")
    return code


def _result(
    stem: str,
    sc: Scenario | None,
    o: Options,
    t: Target,
    data: dict[str, Any],
    *,
    started: datetime,
    open_model: bool,
    users: int,
    think: float,
    duration: int,
    ramp: int,
    weights: dict[str, int] | None,
) -> dict[str, Any]:
    loc, pbx = data["locust"], data["pbx"]
    requests, failures = loc["requests"], loc["failures"]
    span = max(loc["last"] - loc["start"], 1e-9)
    asked_window = pbx["asked_window"]
    window = duration - ramp
    cpu = data.get("cpu_s")
    gen: dict[str, Any] = {
        "cpu_s": round(cpu, 3) if cpu is not None else None,
        "cpu_us_per_request": round(cpu / requests * 1e6, 1)
        if cpu and requests and data.get("processes", 1) == 1
        else None,
        "late": pbx["late"],
        "backlog": pbx["backlog"],
        "scheduled": pbx["scheduled"],
        "late_threshold_ms": LATE_S * 1000,
        "max_late_ms": pbx["max_late_ms"],
    }
    if open_model:
        # a slot never sent before the stop is the latest of all: counted as late, never as fast
        gen["unsent"] = max(0, pbx.get("asked_total", 0) - pbx["scheduled"])
        late_all = pbx["late"] + pbx["backlog"] + gen["unsent"]
        achieved = pbx["sent_window"] / window if window else 0.0
        gen.update(
            asked_rate=o.rate,
            achieved_rate=round(achieved, 3),
            achieved_ratio=round(pbx["sent_window"] / asked_window, 5) if asked_window else 0.0,
            late_ratio=round(late_all / pbx["asked_total"], 5) if pbx.get("asked_total") else 0.0,
        )
        gen["saturated"] = bool(gen["late_ratio"] > o.max_late_ratio or gen["achieved_ratio"] < 1 - o.max_late_ratio)
        gen["max_late_ratio"] = o.max_late_ratio
    else:
        gen["saturated"] = False
    return {
        "schema": results.SCHEMA,
        "scenario": stem,
        "model": "open" if open_model else "closed",
        "settings": {
            "rate": o.rate,
            "ramp_s": ramp,
            "run_time_s": duration,
            "users": users,
            "think_time_s": think,
            "processes": data.get("processes", 1),
            "weights": weights,
            "faults": o.faults,
            "target": t.name,
            "api_url": t.api_url,
        },
        "started": started.isoformat(timespec="seconds"),
        "requests": requests,
        "failures": failures,
        "fail_ratio": round(failures / requests, 6) if requests else 1.0,
        # answers OK per second: over the schedule's length in the open model (Locust's span also
        # holds the users' warm-up), over Locust's span in the closed one
        "throughput": round((requests - failures) / (duration if open_model else span), 3),
        "latency_ms": {
            **pbx["percentiles_ms"],
            "corrected": open_model,
            "count": pbx["count"],
            "from": "intended send time" if open_model else "actual send time",
        },
        "locust": {
            "requests": requests,
            "failures": failures,
            "rps": round(requests / span, 3),
            "p50_ms": loc["p50_ms"],
            "p95_ms": loc["p95_ms"],
            "p99_ms": loc["p99_ms"],
            "max_ms": loc["max_ms"],
            "by_name": loc["entries"],
        },
        "failures_by_message": loc["errors"],
        "generator": gen,
        "lost": None,
        "calls": None,
        "cleanup": None,
        "timeline": pbx["timeline"],
        "environment": results.environment(),
        "pbxcheck_version": results.pbxcheck_version(),
    }


def _check_inserts(t: Target, acked: list[str]) -> dict[str, Any]:
    """Every acknowledged insert, looked up by its idcrm (listed as ``cuje``) in statusdiscador."""
    try:
        with ApiClient(t) as api:
            value = api.call(Acao.STATUSDISCADOR, idcampanha=t.disposable_campaign).value
    except PbxcheckError as exc:
        return {"acknowledged": len(acked), "checked": False, "error": str(exc), "missing": None, "examples": []}
    listed = (
        {str(r.get("cuje", r.get("21"))) for r in value if isinstance(r, dict)} if isinstance(value, list) else set()
    )
    missing = [i for i in acked if i not in listed]
    return {"acknowledged": len(acked), "checked": True, "missing": len(missing), "examples": missing[:5]}


def _cleanup(t: Target) -> dict[str, Any]:
    """deletediscador on the disposable campaign: what the run inserted goes."""
    try:
        with ApiClient(t) as api:
            value = api.call(Acao.DELETEDISCADOR, idcampanha=t.disposable_campaign).value
    except PbxcheckError as exc:
        return {"done": False, "error": str(exc)}
    return {"done": True, "answer": value}


def _judge(res: dict[str, Any], o: Options, t: Target) -> int:
    ld = t.load
    code = EXIT_OK
    requests, failures = res["requests"], res["failures"]
    lat, loc, gen = res["latency_ms"], res["locust"], res["generator"]
    console.print(
        f"{res['scenario']}: {requests} requests, {failures} failed ({res['fail_ratio']:.2%}), "
        f"throughput {res['throughput']:.1f}/s"
    )
    console.print(
        f"  latency from the {lat['from']} (HDR, ms): p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  "
        f"p99 {lat['p99']:.2f}  p99.9 {lat['p99.9']:.2f}  max {lat['max']:.2f}"
    )
    console.print(
        f"  Locust's own (from the actual send, ms): p50 {loc['p50_ms']:.0f}  p95 {loc['p95_ms']:.0f}  "
        f"p99 {loc['p99_ms']:.0f}  max {loc['max_ms']:.0f}; {loc['rps']:.1f} req/s"
    )
    if res["model"] == "open":
        console.print(
            f"  generator: asked {gen['asked_rate']:g}/s, achieved {gen['achieved_rate']:.1f}/s after the "
            f"ramp; {gen['late'] + gen['backlog']} of {gen['scheduled']} requests sent more than "
            f"{LATE_S * 1000:.0f} ms after their intended time ({gen['backlog']} when no user was free), "
            f"{gen['unsent']} never sent before the stop"
        )
        if gen["saturated"]:
            why = (
                "no user was free when they came due: the target answered too slowly for --users, or this "
                "process ran out of CPU"
                if gen["backlog"] > gen["late"]
                else "this process ran out of CPU (one core per process: --processes N spreads the rate)"
            )
            console.print(
                f"[red]generator saturated: it could not keep up with {gen['asked_rate']:g}/s[/] "
                f"({why}); the latencies include its own delay, they are not the target's alone"
            )
            code = EXIT_FAILED
    for count, message in res["failures_by_message"][:5]:
        console.print(f"  [red]{count} failed[/]: {escape(message)}")
    if requests == 0:
        console.print("[red]no request completed[/]")
        code = EXIT_FAILED
    checks: list[tuple[str, float | None, float]] = [
        (
            "--max-fail-ratio",
            o.max_fail_ratio if o.max_fail_ratio is not None else ld.fail_ratio if ld.fail_ratio is not None else 0.0,
            res["fail_ratio"],
        ),
        ("--max-p95-ms", o.max_p95_ms, loc["p95_ms"]),
        ("--max-p99-ms", o.max_p99_ms if o.max_p99_ms is not None else ld.p99_ms, lat["p99"]),
    ]
    lost = res["lost"]
    if lost is not None:
        if lost["checked"]:
            console.print(
                f"inserts acknowledged: {lost['acknowledged']}; missing from statusdiscador "
                f"(by idcrm): {lost['missing']}; lost: {lost['missing']}"
            )
            checks.append(
                (
                    "--max-lost",
                    o.max_lost if o.max_lost is not None else ld.lost if ld.lost is not None else 0,
                    lost["missing"],
                )
            )
            if lost["missing"]:
                console.print(
                    f"[red]inserts answered OK but missing from statusdiscador[/], e.g. {', '.join(lost['examples'])}"
                )
        else:
            console.print(f"[red]could not check the acknowledged inserts[/]: {escape(lost['error'])}")
            code = EXIT_FAILED
    calls = res["calls"]
    if calls is not None:
        console.print(
            f"click-to-call with {calls['agents']} agents: {calls['acknowledged']} CHAMADA OK, {calls['rung']} rang "
            f"their origin, {calls['answered']} answered, {calls['failed']} failed; origins never rung: "
            f"{', '.join(calls['origins_never_rung']) or 'none'}; numbers outside the destination range: "
            f"{calls['destinations_outside_range']}"
        )
        if calls["failed"]:
            console.print(
                f"[red]click-to-calls acknowledged but not rung or not answered[/], e.g. {', '.join(calls['failed_examples'])}"
            )
        if calls["destinations_outside_range"]:
            console.print(
                f"[red]calls to numbers outside the destination range[/], e.g. {', '.join(calls['outside_examples'])}"
            )
        if calls["failed"] or calls["destinations_outside_range"]:
            code = EXIT_FAILED
    if res["cleanup"] is not None:
        c = res["cleanup"]
        console.print(
            f"cleanup: deletediscador {t.disposable_campaign}: {c.get('answer') if c['done'] else c['error']}"
        )
    thresholds = []
    for name, limit, value in checks:
        if limit is None:
            continue
        th = results.Threshold(name, float(limit), float(value))
        thresholds.append({"name": name, "limit": th.limit, "value": th.value, "ok": th.ok})
        if not th.ok:
            console.print(f"[red]{name.removeprefix('--max-').replace('-', ' ')} {value:g} above {name} {limit:g}[/]")
            code = EXIT_FAILED
    res["thresholds"] = thresholds
    if o.baseline:
        base = results.read(o.baseline)
        code = max(code, print_comparison(base, res, {**ld.tolerance, **o.tolerance}, o.baseline))
    res["exit_code"] = code
    return code


def print_comparison(base: dict[str, Any], cur: dict[str, Any], tolerance: dict[str, float], base_name: str) -> int:
    """Print one line per metric; EXIT_FAILED when any regressed."""
    if (base.get("scenario"), base.get("model")) != (cur.get("scenario"), cur.get("model")):
        console.print(
            f"[yellow]note[/]: baseline {base_name} is {base.get('scenario')} ({base.get('model')} model), "
            f"this run {cur.get('scenario')} ({cur.get('model')} model)"
        )
    verdicts = results.compare(base, cur, tolerance)
    cur["comparison"] = {
        "baseline": str(base_name),
        "verdicts": [
            {
                "metric": v.metric,
                "baseline": v.baseline,
                "current": v.current,
                "ratio": round(v.ratio, 4),
                "tolerance": v.tolerance,
                "regressed": v.regressed,
            }
            for v in verdicts
        ],
    }
    console.print(f"against the baseline {base_name}:")
    for v in verdicts:
        console.print(("[red]" if v.regressed else "") + "  " + v.line() + ("[/]" if v.regressed else ""))
    regressed = [v.metric for v in verdicts if v.regressed]
    if regressed:
        console.print(f"[red]regression beyond tolerance: {', '.join(regressed)}[/]")
        return EXIT_FAILED
    return EXIT_OK


def compare_files(a: str, b: str, tolerance: dict[str, float]) -> int:
    """`pbxcheck load compare A B`: B judged against the baseline A, offline."""
    base, cur = results.read(a), results.read(b)
    return print_comparison(base, cur, tolerance, a)


def parse_tolerances(items: list[str]) -> dict[str, float]:
    """``metric=ratio`` flags (``p99_ms=0.2``); ValueError naming the bad one."""
    out: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            ratio = float(value)
        except ValueError:
            ratio = -1.0
        if name not in results.METRICS or ratio < 0:
            raise ValueError(f"--tolerance {item!r}: expected METRIC=RATIO, METRIC one of {', '.join(results.METRICS)}")
        out[name] = ratio
    return out
