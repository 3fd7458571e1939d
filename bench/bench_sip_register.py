"""Authenticated SIP registrations per second the reference central sustains over UDP, with 0 failures.

    /work/venv/bin/python bench/bench_sip_register.py            # defaults below, ~40 s in all

The central runs as a subprocess (``CentralProcess``) pinned to CPU 0 with ``taskset``; the load comes
from ``--procs`` client processes pinned to CPU 1, each owning ``--sockets`` UDP sockets. Every socket
registers one seeded extension once (401 challenge, then 200), then keeps exactly one authenticated
REGISTER in flight: the credentials of that challenge with the next nc (what a phone does on
refresh), so every request the central handles is a full digest check (nonce HMAC, nc replay table,
MD5 response) plus a binding update, answered 200. A request without its 200 within ``--timeout`` s,
or answered anything but 200, is a failure.

Two phases, both bounded:
1. saturation (closed loop, ``--sockets * --procs`` requests in flight) for ``--seconds``: the
   throughput ceiling, and the central's CPU time per registration (from /proc/<pid>/stat);
2. paced at ``--rate`` registrations/s (open loop, the rate split across the client processes) for
   ``--seconds``: the target the issue sets (2,000/s), which must show 0 failures.

Figures go to stdout (and, with ``--markdown``, as a table for bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import secrets
import select
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pbxcheck.central.process import CentralProcess  # noqa: E402
from pbxcheck.sip import digest  # noqa: E402
from pbxcheck.sip.drivers.craft import register_bytes  # noqa: E402
from pbxcheck.target import Target  # noqa: E402

CENTRAL_CPU = 0
LOAD_CPU = 1


@dataclass
class Account:
    ext: str
    password: str


class Client:
    """One UDP socket registering one extension over and over (one request in flight)."""

    def __init__(self, host: str, server: tuple[str, int], acct: Account, local_ip: str) -> None:
        self.host, self.server, self.acct = host, server, acct
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, 0))
        self.sock.setblocking(False)
        self.local = self.sock.getsockname()
        self.call_id = secrets.token_hex(10)
        self.cseq = 1
        self.nc = 0
        self.ch: digest.Challenge | None = None
        self.ha1 = ""
        self.ha2 = hashlib.md5(f"REGISTER:sip:{host}".encode()).hexdigest()
        self.sent_at = 0.0

    def first(self, timeout: float) -> None:
        """The initial 401 challenge (its nonce then serves every refresh)."""
        self.sock.setblocking(True)
        self.sock.settimeout(timeout)
        self.sock.sendto(register_bytes(self.host, self.acct.ext, self.local, self.call_id, self.cseq), self.server)
        data = self.sock.recv(65535)
        self.sock.setblocking(False)
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        if not head.startswith("SIP/2.0 401"):
            raise RuntimeError(f"expected a 401 challenge, got {head.splitlines()[0]!r}")
        value = next(
            line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("www-authenticate:")
        )
        self.ch = digest.Challenge.parse(value)
        self.ha1 = digest.compute_ha1("MD5", self.acct.ext, self.ch.realm, self.acct.password)

    def send(self) -> None:
        assert self.ch is not None
        self.cseq += 1
        self.nc += 1
        nc = f"{self.nc:08x}"
        cnonce = secrets.token_hex(4)
        uri = f"sip:{self.host}"
        resp = hashlib.md5(f"{self.ha1}:{self.ch.nonce}:{nc}:{cnonce}:auth:{self.ha2}".encode()).hexdigest()
        auth = (
            f'Digest username="{self.acct.ext}", realm="{self.ch.realm}", nonce="{self.ch.nonce}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, cnonce="{cnonce}", opaque="{self.ch.opaque}", qop=auth, nc={nc}'
        )
        self.sock.sendto(
            register_bytes(self.host, self.acct.ext, self.local, self.call_id, self.cseq, authorization=auth),
            self.server,
        )
        self.sent_at = time.monotonic()


def worker(
    idx: int,
    target_host: str,
    server: tuple[str, int],
    accounts: list[Account],
    sockets: int,
    seconds: float,
    rate: float | None,
    timeout: float,
    out: mp.Queue,
) -> None:  # type: ignore[type-arg]
    os.sched_setaffinity(0, {LOAD_CPU})
    local_ip = f"127.0.{10 + idx}.1"  # distinct source IPs: nonces are bound to them
    clients = [
        Client(target_host, server, accounts[(idx * sockets + i) % len(accounts)], local_ip) for i in range(sockets)
    ]
    for c in clients:
        c.first(timeout)
    by_fd = {c.sock.fileno(): c for c in clients}
    ep = select.epoll()
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    ok = fail = 0
    latencies: list[float] = []
    idle = list(clients)
    in_flight: set[Client] = set()
    start = time.monotonic()
    end = start + seconds
    next_send = start
    interval = 1.0 / rate if rate else 0.0

    def launch(c: Client) -> None:
        c.send()
        in_flight.add(c)

    if not rate:
        for c in idle:
            launch(c)
        idle.clear()
    while True:
        now = time.monotonic()
        if now >= end and not in_flight:
            break
        if now >= end + timeout:
            fail += len(in_flight)
            break
        if rate and now < end:
            while idle and next_send <= now:
                launch(idle.pop())
                next_send += interval
            if next_send < now - 1.0:
                next_send = now  # never burst to catch up more than a second of backlog
        # sleep until the next send is due, or (nothing idle to send on) until an answer frees a socket:
        # a client that spins steals the load CPU from the other client processes
        wait = min(0.01, max(0.0005, next_send - now)) if rate and idle else 0.01 if rate else 0.05
        for fd, _ in ep.poll(wait):
            c = by_fd[fd]
            while True:
                try:
                    data = c.sock.recv(65535)
                except BlockingIOError:
                    break
                if c not in in_flight:
                    continue  # a late answer to a request already counted as failed
                in_flight.discard(c)
                latencies.append(time.monotonic() - c.sent_at)
                if data.startswith(b"SIP/2.0 200"):
                    ok += 1
                else:
                    fail += 1
                if not rate and time.monotonic() < end:
                    launch(c)
                else:
                    idle.append(c)
        now = time.monotonic()
        for c in [c for c in in_flight if now - c.sent_at > timeout]:
            in_flight.discard(c)
            fail += 1
            if not rate and now < end:
                launch(c)
            else:
                idle.append(c)
    out.put((ok, fail, latencies))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(
    target: Target,
    accounts: list[Account],
    pid: int,
    *,
    procs: int,
    sockets: int,
    seconds: float,
    rate: float | None,
    timeout: float,
) -> dict[str, float]:
    server = (target.sip_host, target.sip_udp_port)
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    per_proc_rate = rate / procs if rate else None
    ps = [
        mp.Process(
            target=worker, args=(i, target.sip_host, server, accounts, sockets, seconds, per_proc_rate, timeout, q)
        )
        for i in range(procs)
    ]
    cpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    for p in ps:
        p.start()
    results = [q.get(timeout=seconds + 60) for _ in ps]
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0
    for p in ps:
        p.join(10)
    ok = sum(r[0] for r in results)
    fail = sum(r[1] for r in results)
    lat = sorted(x for r in results for x in r[2])
    p50 = lat[len(lat) // 2] * 1e3 if lat else 0.0
    p99 = lat[int(len(lat) * 0.99)] * 1e3 if lat else 0.0
    # the challenge round trips and process start-up are inside ``elapsed``; the rate is over the
    # measured window only
    return {
        "ok": ok,
        "fail": fail,
        "rate": ok / seconds,
        "cpu_us": cpu / max(ok, 1) * 1e6,
        "p50_ms": p50,
        "p99_ms": p99,
        "elapsed": elapsed,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--sockets", type=int, default=16, help="sockets per client process")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=2000.0, help="paced phase target, registrations/s")
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        print("needs 2 CPUs (central on one, load on the other)", file=sys.stderr)
        return 2
    with CentralProcess(pin_cpu=CENTRAL_CPU) as target:
        pid = _central_pid(target)
        accounts = [Account(e.number, e.password) for e in target.extensions if not e.classe5_client]
        sat = phase(
            target,
            accounts,
            pid,
            procs=args.procs,
            sockets=args.sockets,
            seconds=args.seconds,
            rate=None,
            timeout=args.timeout,
        )
        paced = phase(
            target,
            accounts,
            pid,
            procs=args.procs,
            sockets=args.sockets,
            seconds=args.seconds,
            rate=args.rate,
            timeout=args.timeout,
        )
    rows = [
        (f"saturation (closed loop, {args.procs * args.sockets} in flight)", sat),
        (f"paced at {args.rate:.0f}/s", paced),
    ]
    for name, r in rows:
        print(
            f"{name}: {r['rate']:.0f} reg/s, {r['ok']:.0f} ok, {r['fail']:.0f} failed, "
            f"central CPU {r['cpu_us']:.0f} µs/reg, latency p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms"
        )
    if args.markdown:
        print("\n| phase | reg/s | ok | failed | central CPU µs/reg | p50 ms | p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for name, r in rows:
            print(
                f"| {name} | {r['rate']:.0f} | {r['ok']:.0f} | {r['fail']:.0f} | {r['cpu_us']:.0f} | "
                f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
            )
    return 0 if paced["fail"] == 0 and sat["fail"] == 0 else 1


def _central_pid(target: Target) -> int:
    """The central's pid: the process listening on the SIP UDP port (CentralProcess runs it under
    taskset, which execs, so the Popen pid is the central's)."""
    port = target.sip_udp_port
    inode = None
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        parts = line.split()
        if int(parts[1].split(":")[1], 16) == port:
            inode = parts[9]
            break
    if inode is None:
        raise RuntimeError("central's UDP socket not found")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return int(pid)
        except OSError:
            continue
    raise RuntimeError("central's pid not found")


if __name__ == "__main__":
    sys.exit(main())
