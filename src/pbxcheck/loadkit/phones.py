"""The phones of `pbxcheck load click-to-call`: N user agents registered and auto-answering.

Run as its own process (``python -m pbxcheck.loadkit.phones``: asyncio, while Locust runs on gevent
beside it). Each agent registers one extension of the target file; every INVITE it gets is a ring,
recorded with the central's ``X-Clicktocall-Id`` (which click-to-call rang it), the number it shows
(``destino``), whether the agent's 200 was ACKed (answered); the agent hangs up after ``--hold``
seconds. Once every agent is registered it writes ``--ready``; on SIGTERM it lets the calls in
progress end (at most ``DRAIN_S``), unregisters and writes ``--out`` (JSON, no password in it).

:func:`judge` then holds the rings against the click-to-call IDs the load acknowledged: each
CHAMADA OK must ring its origin (rung), be answered there (answered), else it failed; every number
shown must lie in the destination range.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pbxcheck.errors import PbxcheckError
from pbxcheck.loadkit.destinations import in_range
from pbxcheck.signals import stop_tree
from pbxcheck.sip.ua import Call, CallFailed, CallState, UserAgent
from pbxcheck.sip_target import ua_config_for
from pbxcheck.target import load_target

C2C_HEADER = "X-Clicktocall-Id"
DRAIN_S = 5.0  # after SIGTERM: calls in progress get this long to end
SETTLE_S = 0.5  # after SIGTERM: the last acknowledged click-to-calls' INVITEs are still on the way
ANSWER_TIMEOUT_S = 5.0


@dataclass
class Ring:
    origin: str  # the agent's extension
    c2c_id: str  # the INVITE's X-Clicktocall-Id ("" if none)
    destino: str  # the number the call shows (From user)
    answered: bool = False  # our 200 was ACKed
    error: str = ""


class Phones:
    def __init__(self, target_path: str, numbers: list[str], transport: str, hold: float) -> None:
        self.target = load_target(target_path)
        self.numbers = numbers
        self.transport = transport
        self.hold = hold
        self.agents: list[UserAgent] = []
        self.rings: list[Ring] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.ringing: set[asyncio.Task[None]] = set()  # of them, the calls in progress

    async def start(self) -> None:
        for number in self.numbers:
            cfg = ua_config_for(self.target, number, transport=self.transport, auto_answer=0.02)
            ua = await UserAgent(cfg).start()
            self.agents.append(ua)
            reg = await ua.register()
            if reg.status != 200:
                raise PbxcheckError(f"extension {number} could not register: {reg.status} {reg.reason}")
            self._spawn(self._serve(ua))

    def _spawn(self, coro: Coroutine[Any, Any, None], *also: set[asyncio.Task[None]]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        for group in (self.tasks, *also):
            group.add(task)
            task.add_done_callback(group.discard)

    async def _serve(self, ua: UserAgent) -> None:
        while True:
            call = await ua.incoming.get()
            self._spawn(self._ring(ua, call), self.ringing)

    async def _ring(self, ua: UserAgent, call: Call) -> None:
        invite = call.invite
        ring = Ring(
            origin=ua.config.user,
            c2c_id=(invite.headers.get(C2C_HEADER) or "") if invite is not None else "",
            destino=call.remote_uri.sip_uri.user or "",
        )
        self.rings.append(ring)
        try:
            await call.wait_answered(ANSWER_TIMEOUT_S)
            ring.answered = True
            await asyncio.sleep(self.hold)
            if call.state is CallState.CONFIRMED:
                await call.hangup(timeout=2.0)
        except (CallFailed, PbxcheckError, OSError) as exc:
            ring.error = f"{type(exc).__name__}: {str(exc)[:120]}"
        finally:
            ua.calls.pop(call.call_id, None)  # a long run keeps no ended call

    async def drain(self) -> None:
        await asyncio.sleep(SETTLE_S)
        deadline = time.monotonic() + DRAIN_S
        while self.ringing and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        for ua in self.agents:
            try:
                await ua.close()
            except (PbxcheckError, OSError):
                pass  # best effort: the registrar's Expires cleans up


async def _main(a: argparse.Namespace) -> int:
    phones = Phones(a.target, a.extensions.split(","), a.transport, a.hold)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await asyncio.wait_for(phones.start(), 30)
        except (PbxcheckError, OSError, TimeoutError) as exc:
            print(f"phones: {exc or 'registration timed out'}", file=sys.stderr)
            return 2
        Path(a.ready).write_text(f"{len(phones.agents)}\n")
        await stop.wait()
        await phones.drain()
    finally:
        await phones.close()
    Path(a.out).write_text(json.dumps({"agents": phones.numbers, "rings": [asdict(r) for r in phones.rings]}))
    return 0


def judge(
    acked_ids: list[str], agents: list[str], rings: list[dict[str, Any]], first: str, last: str
) -> dict[str, Any]:
    """Each acknowledged click-to-call (by its ID; the origin is the ID's first part) against the
    rings the agents saw: rung, answered, failed (acknowledged but never rung or never answered)."""
    by_id = {r["c2c_id"]: r for r in rings if r["c2c_id"]}
    origins: dict[str, dict[str, int]] = {n: {"acknowledged": 0, "rung": 0, "answered": 0} for n in agents}
    rung = answered = 0
    failed: list[str] = []
    for cid in acked_ids:
        o = origins.setdefault(cid.split("_", 1)[0], {"acknowledged": 0, "rung": 0, "answered": 0})
        o["acknowledged"] += 1
        ring = by_id.get(cid)
        if ring is None:
            failed.append(f"{cid} (never rang)")
            continue
        rung += 1
        o["rung"] += 1
        if ring["answered"]:
            answered += 1
            o["answered"] += 1
        else:
            failed.append(f"{cid} ({ring['error'] or 'not answered'})")
    outside = [r["destino"] for r in rings if not in_range(r["destino"], first, last)]
    return {
        "agents": len(agents),
        "acknowledged": len(acked_ids),
        "rung": rung,
        "answered": answered,
        "failed": len(acked_ids) - answered,
        "rings": len(rings),
        "origins_never_rung": [n for n in agents if not origins[n]["rung"]],
        "failed_examples": failed[:5],
        "destinations_outside_range": len(outside),
        "outside_examples": outside[:5],
        "by_origin": origins,
    }


class PhonesError(PbxcheckError):
    """The phones did not come up (an extension could not register); one line with the reason."""


class PhonesProcess:
    """``with PhonesProcess(target_path, ["8101", ...], state_dir) as p: ...; rings = p.stop()``: the
    phones in their own process (and session), registered when ``__enter__`` returns."""

    def __init__(self, target_path: str, numbers: list[str], state_dir: Path, *, hold: float = 0.2) -> None:
        self.numbers = numbers
        self.ready = state_dir / "phones.ready"
        self.out = state_dir / "phones.json"
        self.log = state_dir / "phones.log"
        self.cmd = [
            sys.executable,
            "-m",
            "pbxcheck.loadkit.phones",
            "--target",
            target_path,
            "--extensions",
            ",".join(numbers),
            "--hold",
            str(hold),
            "--ready",
            str(self.ready),
            "--out",
            str(self.out),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PhonesProcess:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + 45
        while not self.ready.is_file():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                tail = self.log.read_text(errors="replace").strip().splitlines()
                raise PhonesError(tail[-1] if tail else f"the phones exited with code {self.proc.returncode}")
            time.sleep(0.05)
        return self

    def stop(self) -> list[dict[str, Any]]:
        """SIGTERM: the calls in progress end, the agents unregister; every ring they saw."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=SETTLE_S + DRAIN_S + 20)
        except subprocess.TimeoutExpired:
            self.__exit__()
        try:
            rings: list[dict[str, Any]] = json.loads(self.out.read_text())["rings"]
        except (OSError, ValueError, KeyError) as exc:
            raise PhonesError(f"the phones wrote no result ({type(exc).__name__})") from None
        return rings

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_tree(self.proc, first=signal.SIGTERM, grace=10.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pbxcheck.loadkit.phones", description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--extensions", required=True, help="comma-separated numbers of the target file's extensions")
    ap.add_argument("--transport", default="UDP")
    ap.add_argument("--hold", type=float, default=0.2, help="seconds an answered call stays up")
    ap.add_argument("--ready", required=True, help="written once every agent is registered")
    ap.add_argument("--out", required=True)
    return asyncio.run(_main(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
