"""HTTP load generator benchmark (issue 11): pbxcheck's scenarios vs a bare Locust POST loop, and the
open model's rate keeping, against a canned nginx target; then the reference-central run.

    .venv/bin/python bench/bench_load_http.py [--seconds 15] [--users 32] [--central-seconds 60] [--central-rate 1000]
    .venv/bin/python bench/bench_load_http.py --sweep-only [--seconds 15]

1. Debian ``nginx`` starts on 127.0.0.1 (one worker, pinned to CPU 1) with a config answering
   ``POST /api.php`` like the central: ``["Status","OK"]`` to an insert and, told apart by the
   body's length (nginx does not read the body to answer), the fixed JSON a clicktocall,
   statusdiscador (a 2-record listing) or statusramais gets, so every answer passes the scenarios'
   full validation.
2. On CPU 0 (``taskset -c 0``), one Locust process each, same duration: a bare ``FastHttpUser`` loop
   posting one fixed insert body with no check, and each HTTP scenario (closed model, no think time,
   the same users, every answer validated), in pairs run back to back (bare then scenario, scenario
   then bare). Ratio = scenario req/s / its neighbouring bare loop's (target >= 0.9).
3. The open model (dialer-insert, ``--rate``) at 50, 70, 80 and 90 % of the bare loop's ceiling (a
   bare run just before each step: achieved rate within 1 % of the asked one up to 80 %, requests
   sent >10 ms late counted per step) and at 130 % (it must say it could not keep up). ``--sweep-only``: this sweep
   alone (no closed-model pairs, no central).
4. The reference central (pinned to CPU 1, the generator to CPU 0): a ``--central-seconds`` open-model
   dialer-insert at ``--central-rate`` inserts/s; every acknowledged insert must be listed (lost 0).

Loopback only, bounded in time and count. Prints a markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from pbxcheck.contract import RAMAL_FIELDS

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CREDS = {"login": "bench", "senha": "bench-senha-0000", "token": "0123456789abcdef0123456789abcdef"}
CAMPAIGN = "900"
ORIGINS = ("2001", "2002")
DESTINATION = "1120000000"  # the loopback default range: 10 digits
C2C = '["Status","CHAMADA OK","ID","2001_20261129120000_1"]'
LISTING = json.dumps(
    [{"id": "1", "status": "AGUARDANDO", "cuje": "x"}, {"id": "2", "status": "CONCLUIDO", "cuje": "y"}],
    separators=(",", ":"),
)
RAMAIS = json.dumps([{f: ("2001" if f == "Ramal" else "") for f in RAMAL_FIELDS}], separators=(",", ":"))
BARE = textwrap.dedent("""
    import gc, json, os, time
    from locust import events, task
    from locust.contrib.fasthttp import FastHttpUser

    _t = {}

    @events.init.add_listener
    def _init(environment, **_):
        _t["env"] = environment

    @events.test_start.add_listener
    def _start(**_):
        _t["cpu"] = time.process_time()
        gc.collect(); gc.freeze(); gc.set_threshold(50_000, 20, 1000)  # as load/common.py: same footing

    @events.test_stop.add_listener
    def _stop(**_):
        _t["cpu_stop"] = time.process_time()  # as load/common.py: the run's CPU, not the reports'

    @events.quit.add_listener
    def _quit(**_):
        total = _t["env"].runner.stats.total
        with open(os.environ["BARE_OUT"], "w") as f:
            json.dump({"cpu_s": _t["cpu_stop"] - _t["cpu"], "requests": total.num_requests}, f)

    BODY = json.dumps({"acao": "insert", "idcampanha": "900", "login": "bench", "senha": "bench-senha-0000",
                       "token": "0123456789abcdef0123456789abcdef", "idcrm": "load-bench-1-1",
                       "cliente": "CARGA load-bench-1-1", "cpf": "52998224725", "ddd1": "11", "tel1": "20000000"})

    class Bare(FastHttpUser):
        @task
        def post(self):
            self.client.post("/api.php", data=BODY, headers={"Content-Type": "application/json"})
""")


def loadavg() -> str:
    """The 1-minute load average now: the machine is shared, every figure says how busy it was."""
    return Path("/proc/loadavg").read_text().split()[0]


def body_length(body: dict[str, str]) -> int:
    return len(json.dumps(body).encode())  # as load/pbxuser.py sends it (json.dumps, default separators)


def nginx_conf(tmp: Path, port: int) -> str:
    ramais = body_length({"acao": "statusramais", **CREDS})
    listing = body_length({"acao": "statusdiscador", "idcampanha": CAMPAIGN, **CREDS})
    c2c = body_length({"acao": "clicktocall", **CREDS, "origem": ORIGINS[0], "destino": DESTINATION})
    assert len({ramais, listing, c2c}) == 3, "two acoes' bodies have one length: nginx could not tell them apart"
    return textwrap.dedent(f"""
        worker_processes 1;
        daemon off;
        pid {tmp}/nginx.pid;
        error_log {tmp}/nginx.err warn;
        events {{ worker_connections 4096; }}
        http {{
            access_log off;
            client_body_temp_path {tmp}/body;
            map $content_length $answer {{
                {ramais} '{RAMAIS}';
                {listing} '{LISTING}';
                {c2c} '{C2C}';
                default '["Status","OK"]';
            }}
            server {{
                listen 127.0.0.1:{port};
                keepalive_requests 1000000;
                location = /api.php {{ default_type application/json; return 200 $answer; }}
            }}
        }}
    """)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def target_file(tmp: Path, port: int) -> Path:
    p = tmp / "nginx-target.toml"
    p.write_text(
        textwrap.dedent(f'''
        name = "canned nginx"
        [api]
        url = "http://127.0.0.1:{port}"
        plain_url = "http://127.0.0.1:{port}"
        [credentials]
        login = "{CREDS["login"]}"
        senha = "{CREDS["senha"]}"
        token = "{CREDS["token"]}"
        [disposable]
        campaign = "{CAMPAIGN}"
        classe5_client = "teste"
        [[extensions]]
        number = "{ORIGINS[0]}"
        password = "not-used-here"
    ''')
    )
    return p


def bare_rps(tmp: Path, port: int, users: int, seconds: int) -> tuple[float, float]:
    """(req/s, CPU µs per request of the Locust process) of the bare loop."""
    f = tmp / "locustfile_bare.py"
    f.write_text(BARE)
    prefix = tmp / "bare"
    subprocess.run(
        [
            "taskset",
            "-c",
            "0",
            PY,
            "-m",
            "locust",
            "-f",
            str(f),
            "--headless",
            "--only-summary",
            "--host",
            f"http://127.0.0.1:{port}",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--csv",
            str(prefix),
        ],
        check=True,
        capture_output=True,
        timeout=seconds + 60,
        env={**os.environ, "BARE_OUT": str(tmp / "bare.json")},
    )
    with open(f"{prefix}_stats.csv") as fh:
        row = [r for r in csv.DictReader(fh) if r["Name"] == "Aggregated"][0]
    assert int(row["Failure Count"]) == 0, row
    cpu = json.loads((tmp / "bare.json").read_text())
    return float(row["Requests/s"]), cpu["cpu_s"] / cpu["requests"] * 1e6


def pbx_load(tmp: Path, args: list[str], seconds: int, cpu: str = "0") -> tuple[int, dict]:  # type: ignore[type-arg]
    reports = tmp / f"r{time.monotonic_ns()}"
    proc = subprocess.run(
        [
            "taskset",
            "-c",
            cpu,
            PY,
            "-m",
            "pbxcheck",
            "load",
            *args,
            "--run-time",
            f"{seconds}s",
            "--reports",
            str(reports),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 180,
    )
    scenario = args[0]
    path = reports / "load" / f"{scenario}.result.json"
    if not path.is_file():
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{scenario}: no result file (exit {proc.returncode})")
    return proc.returncode, json.loads(path.read_text())


def concurrent_rows(tmp: Path, port: int, common: list[str], a: argparse.Namespace) -> list[str]:
    """``--concurrent``: the bare loop and a scenario at the same time on CPU 0. The core's share is
    split between them whatever else runs, so their CPU per request (each process's own time over
    its own requests) meet the same interference; the req/s of the two are not comparable (the
    scenario's Locust starts about a second later and has the core alone at its end)."""
    from concurrent.futures import ThreadPoolExecutor

    rows = []
    for name in ("dialer-insert", "click-to-call", "status-polling", "mixed"):
        for _ in range(a.pairs):
            args = [name, *common, "--users", str(a.users), "--spawn-rate", str(a.users), "--think-time", "0"]
            with ThreadPoolExecutor(2) as pool:
                bare = pool.submit(bare_rps, tmp, port, a.users, a.seconds)
                scenario = pool.submit(pbx_load, tmp, args, a.seconds)
                b_us, res = bare.result()[1], scenario.result()[1]
            assert res["failures"] == 0, (name, res["failures_by_message"])
            us = res["generator"]["cpu_us_per_request"]
            rows.append(
                f"| {name}, concurrent with the bare loop on CPU 0 | {us:.0f} | {b_us:.0f} | **{b_us / us:.2f}** | {loadavg()} |"
            )
            print(rows[-1], flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--central-seconds", type=int, default=60)
    ap.add_argument("--central-rate", type=float, default=1000)
    ap.add_argument("--skip-central", action="store_true")
    ap.add_argument("--pairs", type=int, default=1, help="bare/scenario pairs per scenario (each pair two runs)")
    ap.add_argument(
        "--concurrent",
        action="store_true",
        help="each scenario at the same time as a bare loop on CPU 0 (CPU per request)",
    )
    ap.add_argument("--sweep-only", action="store_true", help="the open-model sweep only (a bare run before each step)")
    ap.add_argument(
        "--scenarios",
        default="dialer-insert,click-to-call,status-polling,mixed",
        help="the closed-model scenarios to pair with the bare loop (comma-separated)",
    )
    ap.add_argument(
        "--fractions",
        default="0.5,0.7,0.8,0.9,1.3",
        help="the open model's steps, as fractions of the bare ceiling (comma-separated; empty: none)",
    )
    a = ap.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as d:
        tmp = Path(d)
        (tmp / "body").mkdir()
        port = free_port()
        (tmp / "nginx.conf").write_text(nginx_conf(tmp, port))
        srv = subprocess.Popen(
            ["taskset", "-c", "1", nginx, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(0.5)
            if srv.poll() is not None:
                raise SystemExit(f"nginx did not start: {srv.stderr.read().decode() if srv.stderr else ''}")
            tfile = target_file(tmp, port)
            # nginx has no SIP side: click-to-call runs on the API alone (no phones to register)
            common = ["--target", str(tfile), "--no-cleanup", "--max-lost", "1000000000", "--agents", "0"]
            scen: dict[str, float] = {}
            # Pairs run back to back (bare, scenario, then scenario, bare): this machine's other load
            # drifts, and a ratio of neighbours is what stays comparable.
            bares: list[float] = []
            if a.concurrent:
                rows += concurrent_rows(tmp, port, common, a)
            for name in () if a.sweep_only or a.concurrent else [n for n in a.scenarios.split(",") if n]:
                ratios, rates, cpu_ratios, cpus = [], [], [], []
                for order in ("bare-first", "scenario-first") * a.pairs:
                    if order == "bare-first":
                        b, b_us = bare_rps(tmp, port, a.users, a.seconds)
                    # all users at once, as the bare loop's -r
                    args = [name, *common, "--users", str(a.users), "--spawn-rate", str(a.users), "--think-time", "0"]
                    code, res = pbx_load(tmp, args, a.seconds)
                    assert res["failures"] == 0, (name, res["failures_by_message"])
                    if order == "scenario-first":
                        b, b_us = bare_rps(tmp, port, a.users, a.seconds)
                    bares.append(b)
                    rates.append(res["locust"]["rps"])
                    ratios.append(rates[-1] / b)
                    us = res["generator"]["cpu_us_per_request"]
                    cpus.append((b_us, us))
                    cpu_ratios.append(b_us / us)
                    print(
                        f"{name} ({order}): {rates[-1]:.0f} req/s, bare {b:.0f}: {ratios[-1]:.2f}x; CPU "
                        f"{us:.0f} vs bare {b_us:.0f} µs/req: {cpu_ratios[-1]:.2f}x; load average {loadavg()}",
                        flush=True,
                    )
                scen[name] = sum(rates) / len(rates)
                n = len(rates)

                def each(values: list[float], fmt: str) -> str:
                    return " / ".join(format(v, fmt) for v in values)

                rows.append(
                    f"| {name}, closed model, full validation | {each(rates, ',.0f')} | {each(bares[-n:], ',.0f')} | "
                    f"{each(ratios, '.2f')} (median {statistics.median(ratios):.2f}) | "
                    f"{each([c[1] for c in cpus], '.0f')} | {each([c[0] for c in cpus], '.0f')} | "
                    f"**{each(cpu_ratios, '.2f')} (median {statistics.median(cpu_ratios):.2f})** | {loadavg()} |"
                )
            open_rows = []
            for frac in () if a.concurrent else [float(f) for f in a.fractions.split(",") if f]:
                # the ceiling measured just before each step: the machine's other load drifts within minutes
                own = bare_rps(tmp, port, a.users, a.seconds)[0]
                rate = round(own * frac)
                code, res = pbx_load(tmp, ["dialer-insert", *common, "--rate", str(rate)], a.seconds)
                g = res["generator"]
                said = "says saturated" if g["saturated"] else "kept up"
                open_rows.append(
                    f"| {frac:.0%} of {own:,.0f} | {rate:,} | {g['achieved_rate']:,.1f} | "
                    f"{g['cpu_us_per_request']:.0f} | "
                    f"{g['achieved_ratio']:.4f} | {g['late'] + g['backlog'] + g['unsent']:,} ({g['late_ratio']:.2%}) | "
                    f"{res['latency_ms']['p99']:.1f} | {said} (exit {code}) | {loadavg()} |"
                )
                print(open_rows[-1], flush=True)
        finally:
            srv.terminate()
            srv.wait(timeout=10)
        central_row = ""
        if not (a.skip_central or a.sweep_only or a.concurrent):
            code, res = pbx_load(
                tmp,
                [
                    "dialer-insert",
                    "--rate",
                    f"{a.central_rate:g}",
                    "--ramp",
                    "5s",
                    "--central-cpu",
                    "1",
                    "--max-late-ratio",
                    "1",
                ],
                a.central_seconds,
            )
            g, lost, lat = res["generator"], res["lost"], res["latency_ms"]
            central_row = (
                f"| {a.central_rate:,.0f}/s, {a.central_seconds} s (5 s ramp) | {res['requests']:,} | "
                f"{res['failures']} | {lost['acknowledged']:,} | **{lost['missing']}** | "
                f"{g['achieved_rate']:,.1f} | {g['late_ratio']:.2%} | {lat['p50']:.1f} / {lat['p99']:.1f} / "
                f"{lat['max']:.0f} | {code} | {loadavg()} |"
            )
            print(central_row, flush=True)
    if a.concurrent:
        print(
            "\n| generator | scenario CPU µs/req | bare CPU µs/req | x bare (CPU: bare µs / scenario µs) | load average |"
            "\n|---|---|---|---|---|"
        )
        print("\n".join(rows))
        return 0
    print(
        "\n| generator (one process, CPU 0) | scenario req/s (each run) | neighbouring bare loop req/s | x bare "
        "(req/s) | scenario CPU µs/req | bare CPU µs/req | x bare (CPU: bare µs / scenario µs) | load average |"
        "\n|---|---|---|---|---|---|---|---|"
    )
    print("\n".join(rows))
    print(
        "\n| open model, dialer-insert | asked/s | achieved/s (after ramp) | CPU µs/req | achieved/asked "
        "| sent >10 ms late (or never) | p99 ms (corrected) | verdict | load average |"
        "\n|---|---|---|---|---|---|---|---|---|"
    )
    print("\n".join(open_rows))
    if central_row:
        print(
            "\n| reference central, open-model dialer-insert | requests | failed | acknowledged | lost "
            "| achieved/s | late | p50 / p99 / max ms | exit | load average |\n|---|---|---|---|---|---|---|---|---|---|"
        )
        print(central_row)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
