"""What every locustfile shares: the target (from $PBXCHECK_TARGET), a TLS context for gevent, and
the measuring glue of `pbxcheck load` (imported by every locustfile, sip-register's included).

The glue adds the ``--pbx-*`` options (Locust sends them from the master to every worker), records
every request's latency in an HDR histogram (:mod:`pbxcheck.loadkit.recorder`), ships each worker's
measurements to the master with Locust's own reports, and on quit the master (or the one local
process) writes them, with Locust's final stats, to ``--pbx-out`` for `pbxcheck load` to judge.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from locust import events
from locust.runners import MasterRunner, WorkerRunner

from pbxcheck.loadkit.recorder import LATE_S, Recorder
from pbxcheck.loadkit.schedule import Pacer, Schedule
from pbxcheck.target import Target, load_target

sequence = itertools.count(1)  # unique()'s numbers
RUN_ID = os.environ.get("PBXCHECK_RUN_ID") or uuid.uuid4().hex[:8]
recorder = Recorder()
_env: Any = None
_pacer: Pacer | None = None
_reporting: set[str] = set()  # workers that reported to this master
_cpu_at_start: float | None = None
_cpu_at_stop: float | None = None


@lru_cache(maxsize=1)
def target() -> Target:
    path = os.environ.get("PBXCHECK_TARGET")
    if not path:
        raise RuntimeError("PBXCHECK_TARGET is not set: run scenarios through `pbxcheck load`")
    return load_target(path)


def ssl_context_factory():  # type: ignore[no-untyped-def]
    import gevent.ssl

    t = target()
    if t.insecure:
        ctx = gevent.ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = gevent.ssl.CERT_NONE
        return ctx
    return gevent.ssl.create_default_context(cafile=t.ca_file)


def credentials() -> dict[str, str]:
    t = target()
    return {"login": t.login, "senha": t.senha, "token": t.token}


def unique_prefix(prefix: str) -> str:
    """What :func:`unique` values of this process start with (taken after Locust's --processes fork)."""
    return f"{prefix}-{RUN_ID}-{os.getpid()}-"


def unique(prefix: str) -> str:
    """A value unique to this run and this process, for finding our own rows afterwards."""
    return f"{unique_prefix(prefix)}{next(sequence)}"


# --- options (master -> workers) -----------------------------------------------------------------


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--pbx-rate", type=float, default=0.0, help="open model: requests/s (0: closed model)")
    parser.add_argument("--pbx-ramp", type=float, default=0.0, help="open model: seconds to reach the rate")
    parser.add_argument("--pbx-duration", type=float, default=0.0, help="open model: seconds of schedule")
    parser.add_argument("--pbx-think", type=float, default=0.0, help="closed model: mean think time, s")
    parser.add_argument("--pbx-max-rate", type=float, default=0.0, help="closed model: requests/s cap")
    parser.add_argument("--pbx-weights", type=str, default="", help="action=weight,... (mixed profiles)")
    parser.add_argument("--pbx-destinations", type=str, default="", help="FIRST-LAST test number range")
    parser.add_argument(
        "--pbx-origins", type=str, default="", help="click-to-call origins: a,b,... (registered agents)"
    )
    parser.add_argument("--pbx-out", type=str, default="", help="where the master writes its measurements")


def options() -> Any:
    return _env.parsed_options


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    global _env
    _env = environment


# --- the open model's schedule --------------------------------------------------------------------


def workers() -> int:
    """How many processes share the rate: the master's --expect-workers on a worker, else 1."""
    if isinstance(_env.runner, WorkerRunner):
        return max(1, int(getattr(options(), "expect_workers", 1) or 1))
    return 1


def pacer() -> Pacer:
    """This process's share of the schedule, started on first use."""
    global _pacer
    if _pacer is None:
        o = options()
        schedule = Schedule(o.pbx_rate / workers(), o.pbx_ramp, o.pbx_duration)
        _pacer = Pacer(schedule, time.perf_counter() + 0.05)
        recorder.asked_window += schedule.due(o.pbx_duration) - schedule.due(o.pbx_ramp)
        recorder.asked_total += schedule.total
    return _pacer


class Dispatcher:
    """Hands this process's due slots to its users. A user that finishes a request takes the next
    slot at once if it is already due (no park, no wake-up: at a high rate most are); otherwise it
    parks until one greenlet, waking about once a millisecond, hands it the slot as it comes due
    (no timer armed per request). Parked users are woken last-parked first, so the few users the
    rate needs stay hot (their greenlets and connections) while the rest of the pool sleeps."""

    TICK_S = 0.001
    EARLY_S = TICK_S / 2  # a slot this close to due is sent now, not a tick late

    BEGIN_WITHIN_S = 15.0  # the schedule starts at the latest this long after the first user

    def __init__(self) -> None:
        import gevent

        self._pacer: Pacer | None = None  # set when the schedule starts
        self.backlog = False  # the last slot taken waited because no user was free
        self.due: float | None = None  # the next slot not yet handed out; None: before or after the schedule
        self.parked: list[Any] = []  # greenlets waiting for a slot, the last parked last
        self.hub = gevent.get_hub()
        self.finished = False
        self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        import gevent

        run_callback = self.hub.loop.run_callback
        # The schedule starts once every user is spawned and has opened its connection: slots due
        # while the pool is still starting would all be late, a backlog of the generator's own making.
        give_up = time.perf_counter() + self.BEGIN_WITHIN_S
        while not (_spawned and not _warming) and time.perf_counter() < give_up:
            gevent.sleep(0.01)
        p = self._pacer = pacer()
        self.due = p.next()
        while self.due is not None:
            now = time.perf_counter()
            while self.parked and self.due is not None and self.due <= now + self.EARLY_S:
                slot, self.due = self.due, p.next()
                run_callback(self.parked.pop().switch, slot)
            if self.due is not None:
                # A tick at least (never a timer per slot: at a high rate a tick hands out several);
                # a slot already due with nobody parked waits for the next user to finish.
                gevent.sleep(max(self.TICK_S, self.due - now))
        self.finished = True
        while self.parked:  # the end: every parked user gets None
            run_callback(self.parked.pop().switch, None)

    @property
    def pacer(self) -> Pacer:
        """The schedule's pacer (there is one once a slot was taken)."""
        if self._pacer is None:
            raise RuntimeError("the open model's schedule has not started")
        return self._pacer

    @property
    def queue(self) -> Any:
        """Its ``qsize()`` is 1 after a slot taken when no user was free, else 0 (what the former
        queue-based dispatcher's callers test; :attr:`backlog` says it directly)."""
        return _Backlog(self)

    def take(self) -> float | None:
        """The next slot (a ``time.perf_counter()`` time), None once the schedule is over; blocks
        until one is due. :attr:`backlog` then says whether it waited because no user was free."""
        due = self.due
        if due is None and self.finished:
            self.backlog = False
            return None
        now = time.perf_counter()
        if due is not None and due <= now + self.EARLY_S:
            self.due = self.pacer.next()
            # late with nobody parked: every user was busy when it came due (not the generator's lag)
            self.backlog = now - due > LATE_S and not self.parked
            return due
        from gevent import getcurrent

        me = getcurrent()
        self.parked.append(me)
        try:
            slot: float | None = self.hub.switch()
        except BaseException:  # stopped while parked
            if me in self.parked:
                self.parked.remove(me)
            raise
        self.backlog = False
        return slot


class _Backlog:
    def __init__(self, d: Dispatcher) -> None:
        self.d = d

    def qsize(self) -> int:
        return int(self.d.backlog)


_dispatcher: Dispatcher | None = None


def dispatcher() -> Dispatcher:
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = Dispatcher()
    return _dispatcher


_spawned = False  # Locust spawned every user (of every worker)
_warming = 0  # users of this process still opening their connection (PbxUser._warm_up)


@events.spawning_complete.add_listener
def _spawning_complete(**_: Any) -> None:
    global _spawned
    _spawned = True


@contextlib.contextmanager
def warming_up() -> Iterator[None]:
    """Around a user's warm-up: the open model's schedule waits for every one of them."""
    global _warming
    _warming += 1
    try:
        yield
    finally:
        _warming -= 1


# --- measuring ------------------------------------------------------------------------------------


@events.test_start.add_listener
def _test_start(**_: Any) -> None:
    global _cpu_at_start
    _cpu_at_start = time.process_time()
    # Everything built so far (Locust, the users, their connections) out of the collector's sight,
    # and young-generation collections 70x rarer: full collections over hundreds of greenlets took
    # 30-60 ms, a stall that sent a burst of the open model's requests late (bench/RESULTS.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 1000)


@events.test_stop.add_listener
def _test_stop(**_: Any) -> None:
    global _cpu_at_stop
    _cpu_at_stop = time.process_time()


@events.request.add_listener
def _on_request(
    request_type: Any = None,
    name: Any = None,
    response_time: float = 0.0,
    response_length: Any = None,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
    response: Any = None,
    start_time: Any = None,
    url: Any = None,
    **_: Any,  # every argument Locust passes named above: no dict built per request
) -> None:
    intended = context.get("pbx_t0") if context else None
    latency = time.perf_counter() - intended if intended is not None else response_time / 1000.0
    recorder.record(latency, exception is None, time.time())


@events.report_to_master.add_listener
def _report(client_id: str, data: dict[str, Any]) -> None:
    data["pbx"] = recorder.snapshot(reset=True)


@events.worker_report.add_listener
def _worker_report(client_id: str, data: dict[str, Any]) -> None:
    _reporting.add(client_id)
    if "pbx" in data:
        recorder.merge(data["pbx"])


@events.quit.add_listener
def _quit(exit_code: int, **_: Any) -> None:
    if _env is None or isinstance(_env.runner, WorkerRunner) or not getattr(options(), "pbx_out", ""):
        return
    recorder.absorb_own()
    from locust import stats as lstats

    st = _env.runner.stats
    buf = io.StringIO()
    writer = lstats.StatsCSV(_env, lstats.PERCENTILES_TO_REPORT)
    w = csv.writer(buf)
    w.writerow(writer.requests_csv_columns)
    writer._requests_data_rows(w)
    total = st.total
    out = {
        "locust": {
            "requests": total.num_requests,
            "failures": total.num_failures,
            "start": total.start_time,
            "last": total.last_request_timestamp or total.start_time,
            "p50_ms": total.get_response_time_percentile(0.5),
            "p95_ms": total.get_response_time_percentile(0.95),
            "p99_ms": total.get_response_time_percentile(0.99),
            "max_ms": total.max_response_time,
            "entries": {f"{e.method} {e.name}": [e.num_requests, e.num_failures] for e in st.entries.values()},
            "errors": sorted(
                ([e.occurrences, f"{e.method} {e.name}: {e.error}"] for e in st.errors.values()), reverse=True
            )[:20],
            "stats_csv": buf.getvalue(),
        },
        "pbx": recorder.export(),
        "processes": len(_reporting) if isinstance(_env.runner, MasterRunner) else 1,
        # CPU seconds this process spent from the test's start to its stop (the generator's cost,
        # whatever else the machine runs, not the reports written after; a master's own only)
        "cpu_s": (_cpu_at_stop or time.process_time()) - _cpu_at_start if _cpu_at_start is not None else None,
        "exit_code": exit_code,
    }
    with open(options().pbx_out, "w") as f:
        json.dump(out, f)
