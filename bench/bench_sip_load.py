"""The SIP load generator's own CPU per authenticated registration, against SIPp's (issue 11).

    /work/main/.venv/bin/python bench/bench_sip_load.py --sipp /tmp/sippbuild/src/build/sipp
        [--seconds 15] [--rate 1000] [--saturate-users 64] [--runs 1] [--transport udp]
        [--driver multiplex|per-user] [--markdown]

Both generators run the same flow against the same Kamailio registrar (``pbxcheck.peers.kamailio``,
digest auth, MD5 qop=auth, a fresh nonce per 401) on loopback, in the same run, one after the other,
pinned to the same core (``taskset -c 1``) with every Kamailio process pinned to the other (CPU 0):

- SIPp (built from source for this comparison only; never a pbxcheck dependency) with
  ``bench/sipp_register.xml``: REGISTER, 401, REGISTER with ``[authentication]``, 200, extensions
  and passwords from an injection file, one UDP socket (``-t u1``) or one TCP connection (``-t t1``);
  its CPU is the process's user+system time from ``wait4`` (its start-up included: a few ms);
- ``pbxcheck load sip-register`` in fresh mode (``$PBXCHECK_SIP_MODE=fresh``), headless, one
  process, on the multiplexed driver (one socket and one engine for every registration; ``--driver
  per-user`` for the former socket and blocking runner per user, ``$PBXCHECK_SIP_DRIVER``); its CPU is ``generator.cpu_s`` of result.json (the Locust process's time from the test's
  start to its quit, Locust's imports and start-up excluded).

Two phases, each bounded (``--seconds``), each for both generators:

1. fixed rate ``--rate`` registrations/s: SIPp ``-r RATE -m RATE*SECONDS``, pbxcheck's open model
   ``--rate RATE --run-time SECONDS`` (one registration per slot; the dispatcher greenlet's 1 ms ticks
   are part of the generator's cost);
2. saturation (``--saturate-users`` registrations in flight, no think time): SIPp
   ``-r 100000 -l USERS``, pbxcheck's closed model ``--users USERS --think-time 0``; registrations/s
   and CPU per registration (here the generator's core, or Kamailio's, is the limit).

Printed per phase: registrations, failures, registrations/s, CPU µs per registration for each, and
the ratio pbxcheck/SIPp (the issue's target: at most 2.0 in fresh mode, with 0 failures). Only
127.0.0.1 is ever loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pbxcheck.peers.kamailio import KamailioProcess  # noqa: E402

KAMAILIO_CPU = "0"
LOAD_CPU = "1"
SCENARIO = ROOT / "bench" / "sipp_register.xml"


@dataclass
class Figures:
    who: str
    registrations: int
    failures: int
    seconds: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.registrations / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.registrations * 1e6 if self.registrations else float("nan")


def pin_group(pgid: int, cpu: str) -> None:
    """Every process of a process group (Kamailio forks its workers) onto ``cpu``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # field 5, pgrp
            subprocess.run(["taskset", "-a", "-p", "-c", cpu, entry], check=False, capture_output=True)


def run_sipp(
    sipp: str,
    kam: KamailioProcess,
    work: Path,
    transport: str,
    *,
    rate: float,
    calls: int,
    limit: int,
    timeout: float,
    until_timeout: bool = False,
) -> Figures:
    csv = work / "users.csv"
    csv.write_text(
        "SEQUENTIAL\n" + "".join(f"{n};[authentication username={n} password={p}]\n" for n, p in kam.users.items())
    )
    for old in work.glob("sipp_register_*"):
        old.unlink()
    cmd = [
        "taskset",
        "-c",
        LOAD_CPU,
        sipp,
        f"{kam.host}:{kam.port}",
        "-sf",
        str(SCENARIO),
        "-inf",
        str(csv),
        "-i",
        "127.0.0.1",
        "-t",
        "u1" if transport == "udp" else "t1",
        "-r",
        f"{rate:g}",
        "-m",
        str(calls),
        "-l",
        str(limit),
        "-nostdin",
        "-trace_stat",
        "-trace_err",
        "-timeout",
        f"{timeout:g}",
        "-timeout_error",
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, _, usage = os.wait4(proc.pid, 0)  # taskset execs sipp: same pid, and wait4 gives its rusage
    wall = time.perf_counter() - started
    stat = next(work.glob("sipp_register_*_.csv"))
    rows = stat.read_text().splitlines()
    last = dict(zip(rows[0].split(";"), rows[-1].split(";"), strict=False))
    ok, failed = int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"])
    # at a fixed rate every call must end in success; a saturation run is ended by -timeout with
    # calls in flight (not failures)
    missing = 0 if until_timeout else max(0, calls - ok - failed)
    return Figures("SIPp", ok, failed + missing, wall, usage.ru_utime + usage.ru_stime)


def run_pbxcheck(
    tpath: Path, work: Path, transport: str, mode: str, args: list[str], seconds: int, driver: str = "multiplex"
) -> Figures:
    reports = work / "reports"
    env = {**os.environ, "PBXCHECK_SIP_MODE": mode, "PBXCHECK_SIP_TRANSPORT": transport, "PBXCHECK_SIP_DRIVER": driver}
    cmd = [
        "taskset",
        "-c",
        LOAD_CPU,
        sys.executable,
        "-m",
        "pbxcheck",
        "load",
        "sip-register",
        "--target",
        str(tpath),
        "--run-time",
        f"{seconds}s",
        "--reports",
        str(reports),
        *args,
    ]
    proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, timeout=seconds + 180)
    result = reports / "load" / "sip-register.result.json"
    if not result.is_file():
        raise RuntimeError(f"pbxcheck load exited {proc.returncode} without a result:\n{proc.stdout}\n{proc.stderr}")
    res = json.loads(result.read_text())
    gen = res["generator"]
    span = res["settings"]["run_time_s"] if res["model"] == "open" else res["requests"] / res["locust"]["rps"]
    for message in res["failures_by_message"][:3]:
        print(f"    pbxcheck failure: {message}")
    who = f"pbxcheck {mode}" if driver == "multiplex" else f"pbxcheck {mode} {driver}"
    return Figures(who, res["requests"], res["failures"], span, gen["cpu_s"])


def show(phase: str, sipp: Figures, pbx: Figures, rows: list[str]) -> None:
    ratio = pbx.cpu_us / sipp.cpu_us
    for f in (sipp, pbx):
        print(
            f"  {phase:<22} {f.who:<18} {f.registrations:>7} reg  {f.failures:>4} failed  {f.rate:8.0f} reg/s  "
            f"{f.cpu_us:7.1f} µs CPU/reg"
        )
    print(f"  {phase:<22} ratio pbxcheck/SIPp: {ratio:.2f}  (target <= 2.0)")
    rows.append(
        f"| {phase} | {sipp.registrations:,} / {sipp.failures} | {sipp.rate:,.0f} | {sipp.cpu_us:.0f} | "
        f"{pbx.registrations:,} / {pbx.failures} | {pbx.rate:,.0f} | {pbx.cpu_us:.0f} | **{ratio:.2f}** |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sipp", default=os.environ.get("SIPP", "/tmp/sippbuild/src/build/sipp"), help="SIPp binary")
    ap.add_argument("--seconds", type=int, default=15, help="each phase's length per generator")
    ap.add_argument("--rate", type=float, default=1000.0, help="fixed-rate phase, registrations/s (0: skip)")
    ap.add_argument("--saturate-users", type=int, default=64, help="saturation phase: in flight (0: skip)")
    ap.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    ap.add_argument("--mode", choices=("fresh", "refresh"), default="fresh", help="pbxcheck's mode")
    ap.add_argument(
        "--driver",
        choices=("multiplex", "per-user"),
        default="multiplex",
        help="pbxcheck's SIP driver ($PBXCHECK_SIP_DRIVER; TCP is always per-user)",
    )
    ap.add_argument("--extensions", type=int, default=200)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="also print a table for bench/RESULTS.md")
    a = ap.parse_args()
    if not Path(a.sipp).is_file():
        print(f"no SIPp at {a.sipp}: build it from source (see bench/RESULTS.md) or pass --sipp", file=sys.stderr)
        return 2
    users = {str(6000 + i): secrets.token_hex(6) for i in range(a.extensions)}
    rows: list[str] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-sip-load-") as tmp, KamailioProcess(users) as kam:
        work = Path(tmp)
        assert kam.proc is not None
        pin_group(kam.proc.pid, KAMAILIO_CPU)
        tpath = work / "target.toml"
        kam.write_target(tpath, name="kamailio-bench")
        print(
            f"kamailio on {kam.host}:{kam.port} (CPU {KAMAILIO_CPU}), generators on CPU {LOAD_CPU}, "
            f"{a.transport.upper()}, {a.extensions} extensions, pbxcheck mode {a.mode}, {a.seconds} s per phase"
        )
        for run in range(1, a.runs + 1):
            if a.rate:
                s = run_sipp(
                    a.sipp,
                    kam,
                    work,
                    a.transport,
                    rate=a.rate,
                    calls=int(a.rate * a.seconds),
                    limit=max(100, int(a.rate)),
                    timeout=a.seconds + 30,
                )
                p = run_pbxcheck(tpath, work, a.transport, a.mode, ["--rate", f"{a.rate:g}"], a.seconds, a.driver)
                show(f"run {run}: {a.rate:g}/s", s, p, rows)
                failures += s.failures + p.failures
            if a.saturate_users:
                n = a.saturate_users
                s = run_sipp(
                    a.sipp,
                    kam,
                    work,
                    a.transport,
                    rate=100000,
                    calls=50000 * a.seconds,  # above what SIPp reaches here (~20,000/s): it runs until -timeout
                    limit=n,
                    timeout=a.seconds,
                    until_timeout=True,
                )
                p = run_pbxcheck(
                    tpath,
                    work,
                    a.transport,
                    a.mode,
                    ["--users", str(n), "--spawn-rate", str(n), "--think-time", "0"],
                    a.seconds,
                    a.driver,
                )
                show(f"run {run}: saturated, {n} in flight", s, p, rows)
                failures += s.failures + p.failures
    if a.markdown:
        print(
            "\n| phase | SIPp reg / failed | SIPp reg/s | SIPp µs CPU/reg | pbxcheck reg / failed | "
            "pbxcheck reg/s | pbxcheck µs CPU/reg | ratio |"
        )
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
