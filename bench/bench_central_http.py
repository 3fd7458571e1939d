"""HTTP benchmark of the reference central: inserts/s over HTTPS on one core with nothing lost, and
the time of statusdiscador on a 100,000-contact campaign.

    /work/venv/bin/python bench/bench_central_http.py [--duration 15] [--connections 64] [--contacts 100000]

1. The central runs as a subprocess pinned to CPU 0 (``taskset -c 0``), on a database file.
2. ``wrk`` (Debian package ``wrk``), pinned to CPU 1, posts unique inserts into the disposable
   campaign over keep-alive HTTPS connections for ``--duration`` seconds (after a 2 s warm-up into
   another campaign); bench/insert.lua counts the ``["Status","OK"]`` answers.
3. statusdiscador then lists the campaign: every acknowledged insert must be there (lost = 0).
4. The campaign is topped up to ``--contacts`` rows (written with the central's own row builder,
   the central stopped), the central restarted on the same file, and statusdiscador timed
   ``--repeat`` times: request sent to last byte received, body not parsed (the parse is the
   client's cost, reported apart).

Loopback only, bounded in time and count. Exits 1 if an acknowledged insert is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from pbxcheck.central.handlers import build_contact
from pbxcheck.central.process import CentralProcess
from pbxcheck.central.store import Store
from pbxcheck.client import ApiClient, ssl_context
from pbxcheck.target import Target

LUA = Path(__file__).with_name("insert.lua")

# The same stack with nothing behind it (uvicorn + httptools + uvloop, TLS, one Starlette route
# answering ["Status","OK"] after reading the body): the ceiling the central is compared with.
BARE_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def api(request):
    await request.body()
    return Response(b'["Status","OK"]', media_type="application/json")
uvicorn.run(Starlette(routes=[Route("/api.php", api, methods=["POST"])]), host="127.0.0.1", port=int(sys.argv[1]),
            ssl_certfile=sys.argv[2], ssl_keyfile=sys.argv[3], http="httptools", loop="uvloop",
            log_level="warning", access_log=False)
"""


def wrk(t: Target, campaign: str, duration: float, connections: int, threads: int, cpu: int) -> dict[str, float]:
    env = dict(os.environ, BENCH_LOGIN=t.login, BENCH_SENHA=t.senha, BENCH_TOKEN=t.token, BENCH_CAMPAIGN=campaign)
    cmd = [
        "taskset",
        "-c",
        str(cpu),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        t.api_endpoint,
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    m = re.search(r"BENCH_RESULT ok=(\d+) other=(\d+) p50_us=(\d+) p99_us=(\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if not m or not rps:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    return {
        "ok": int(m[1]),
        "other": int(m[2]),
        "p50_ms": int(m[3]) / 1000,
        "p99_ms": int(m[4]) / 1000,
        "rps": float(rps[1]),
        "socket_errors": errors[1] if errors else "none",
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def baseline(t: Target, state: Path, args: argparse.Namespace) -> tuple[dict[str, float], float]:
    """wrk against BARE_APP under the same pinning: (wrk figures, server CPU seconds)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(args.server_cpu),
            sys.executable,
            "-c",
            BARE_APP,
            str(port),
            str(state / "server.pem"),
            str(state / "server.key"),
        ]
    )
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        bare = Target(**{**t.__dict__, "api_url": f"https://127.0.0.1:{port}"})
        wrk(bare, "0", 2, args.connections, args.threads, args.client_cpu)
        cpu0 = cpu_seconds(proc.pid)
        r = wrk(bare, "0", args.duration, args.connections, args.threads, args.client_cpu)
        return r, cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(10)


def count_bench_rows(t: Target, campaign: str) -> int:
    with ApiClient(t, timeout=120) as api:
        rows = api.call("statusdiscador", idcampanha=campaign).value
    return sum(1 for r in rows if r["cliente"].startswith("BENCH "))


def top_up(db: str, campaign: str, total: int) -> int:
    store = Store(db)
    camp = store.campaign(campaign)
    assert camp is not None
    have = store.count_contacts(campaign)
    now = time.time()
    with store.tx():
        for i in range(have, total):
            cols, extra = build_contact(
                camp.nome,
                {
                    "cliente": f"LISTING {i}",
                    "ddd1": "11",
                    "tel1": f"3{i:07d}",
                    "cidade": "SÃO PAULO",
                    "endereco": "RUA DAS FLORES 123",
                    "gen1": "bench",
                    "conta": "CONTA",
                },
                now,
                {"status": "AGUARDANDO", "tentativas": "0"},
            )
            store.insert_contact(camp, cols, extra, None)
    n = store.count_contacts(campaign)
    store.close()
    return n


def time_listing(t: Target, campaign: str, repeat: int) -> dict[str, float]:
    body = {"acao": "statusdiscador", "login": t.login, "senha": t.senha, "token": t.token, "idcampanha": campaign}
    times, size = [], 0
    with httpx.Client(verify=ssl_context(t), timeout=60) as client:
        client.post(t.api_endpoint, json={**body, "idcampanha": "583"})  # connection and TLS set up
        for _ in range(repeat):
            started = time.perf_counter()
            with client.stream("POST", t.api_endpoint, json=body) as resp:
                size = sum(len(chunk) for chunk in resp.iter_raw())
            times.append(time.perf_counter() - started)
        raw = client.post(t.api_endpoint, json=body).content
    started = time.perf_counter()
    n = len(json.loads(raw))
    parse = time.perf_counter() - started
    curl = None
    if shutil.which("curl"):
        out = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{time_total}",
                "--cacert",
                str(t.ca_file),
                "-H",
                "Content-Type: application/json",
                "-d",
                json.dumps(body),
                t.api_endpoint,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        curl = float(out.stdout) if out.returncode == 0 else None
    return {
        "median_s": statistics.median(times),
        "best_s": min(times),
        "worst_s": max(times),
        "mb": size / 1e6,
        "records": n,
        "client_parse_s": parse,
        "curl_s": curl or float("nan"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    print(f"load average before: {os.getloadavg()[0]:.2f}  cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="bench-central-") as d:
        db = str(Path(d) / "central.sqlite3")
        central = CentralProcess(state_dir=Path(d) / "a", db=db, pin_cpu=args.server_cpu)
        with central as t:
            assert central.proc is not None
            campaign = t.disposable_campaign
            with ApiClient(t) as api:
                api.call("deletediscador", idcampanha=campaign)
            wrk(t, "583", 2, args.connections, args.threads, args.client_cpu)  # warm-up, not counted
            cpu0 = cpu_seconds(central.proc.pid)
            r = wrk(t, campaign, args.duration, args.connections, args.threads, args.client_cpu)
            cpu = cpu_seconds(central.proc.pid) - cpu0
            time.sleep(0.5)
            listed = count_bench_rows(t, campaign)
        bare, bare_cpu = baseline(t, Path(d) / "a", args)
        lost = r["ok"] - listed
        print(
            f"inserts: {r['rps']:.0f} req/s over HTTPS, central on CPU {args.server_cpu}, wrk on CPU {args.client_cpu},"
            f" {args.connections} connections, {args.duration:g} s"
        )
        print(f"  acknowledged OK: {r['ok']}  other answers: {r['other']}  socket errors: {r['socket_errors']}")
        print(
            f"  central CPU time: {cpu:.2f} s for {args.duration:g} s of wall time ({cpu / args.duration:.0%} of one core);"
            f" {(r['ok'] + r['other']) / cpu:.0f} requests per CPU-second"
        )
        print(f"  latency p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
        print(
            f"  baseline, bare Starlette app on the same stack and pinning: {bare['rps']:.0f} req/s,"
            f" {bare_cpu / args.duration:.0%} of one core, {(bare['ok'] + bare['other']) / bare_cpu:.0f} requests per"
            f" CPU-second; the central does {r['rps'] / bare['rps']:.0%} of the baseline's rate"
        )
        print(
            f"  listed afterwards: {listed}  lost: {max(lost, 0)}  (listed but not acknowledged: {max(-lost, 0)},"
            " requests in flight when wrk stopped)"
        )
        n = top_up(db, campaign, args.contacts)
        with CentralProcess(state_dir=Path(d) / "b", db=db, pin_cpu=args.server_cpu) as t:
            lt = time_listing(t, campaign, args.repeat)
        print(
            f"statusdiscador of {lt['records']} contacts ({n} in the table), {lt['mb']:.1f} MB:"
            f" median {lt['median_s']:.3f} s, best {lt['best_s']:.3f} s, worst {lt['worst_s']:.3f} s"
            f" (request to last byte, httpx); curl {lt['curl_s']:.3f} s; client JSON parse {lt['client_parse_s']:.3f} s"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 1 if lost > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
