"""`pbxcheck load sip-register` on the one engine: short bounded runs against the embedded reference
central, in both modes and over TCP once; every registration a 200, none failed (no speed asserted:
bench/bench_sip_load.py measures the generator's cost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, mode: str, transport: str, pacing: list[str] | None = None, driver: str = "multiplex") -> dict:
    env = {**os.environ, "PBXCHECK_SIP_MODE": mode, "PBXCHECK_SIP_TRANSPORT": transport, "PBXCHECK_SIP_DRIVER": driver}
    pacing = pacing or ["--users", "2", "--spawn-rate", "2", "--run-time", "5s", "--think-time", "0.01"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pbxcheck",
            "load",
            "sip-register",
            *pacing,
            "--reports",
            str(tmp_path / "reports"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path.mkdir(parents=True, exist_ok=True) or tmp_path,
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    return json.loads((tmp_path / "reports" / "load" / "sip-register.result.json").read_text())


@pytest.mark.parametrize(
    ("mode", "transport", "name"),
    [
        ("fresh", "udp", "SIP REGISTER (digest)"),
        ("refresh", "udp", "SIP REGISTER (refresh nc)"),
        ("fresh", "tcp", "SIP REGISTER (digest)"),
    ],
)
def test_sip_register_mode_registers_with_no_failure(tmp_path: Path, mode: str, transport: str, name: str) -> None:
    res = _run(tmp_path, mode, transport)
    assert res["requests"] > 0
    assert res["failures"] == 0, res["failures_by_message"]
    assert res["locust"]["by_name"] == {name: [res["requests"], 0]}
    assert res["generator"]["cpu_s"] is not None  # the figure bench_sip_load.py reads


def test_an_unknown_mode_is_refused_before_any_registration(tmp_path: Path) -> None:
    env = {**os.environ, "PBXCHECK_SIP_MODE": "sometimes"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pbxcheck",
            "load",
            "sip-register",
            "--users",
            "1",
            "--run-time",
            "2s",
            "--reports",
            str(tmp_path / "reports"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "PBXCHECK_SIP_MODE" in proc.stdout + proc.stderr


def test_the_closed_model_chains_registrations_and_the_open_model_paces_them(tmp_path: Path) -> None:
    """The multiplexed driver's two ways of running: from its callback (closed, no think time) and
    one registration per slot (open model)."""
    closed = _run(tmp_path / "closed", "fresh", "udp", ["--users", "4", "--spawn-rate", "4", "--think-time", "0"])
    assert closed["requests"] > 0
    assert closed["failures"] == 0, closed["failures_by_message"]
    opened = _run(tmp_path / "open", "fresh", "udp", ["--rate", "40", "--run-time", "3s"])
    assert opened["failures"] == 0, opened["failures_by_message"]
    assert opened["locust"]["by_name"] == {"SIP REGISTER (digest)": [opened["requests"], 0]}
    assert 80 <= opened["requests"] <= 130  # 40/s for 3 s, give or take the ramp-free schedule's edges


def test_the_per_user_driver_still_registers(tmp_path: Path) -> None:
    res = _run(tmp_path, "fresh", "udp", driver="per-user")
    assert res["requests"] > 0
    assert res["failures"] == 0, res["failures_by_message"]


# --- the multiplexed driver in-process, against a registrar made here ---------------------------------


class _Registrar:
    """A UDP registrar on loopback (a gevent greenlet): 401 with a fresh nonce, then 200 for valid
    digest credentials, 403 otherwise; ``silent`` answers nothing."""

    def __init__(self, password: str, *, silent: bool = False) -> None:
        import gevent
        from gevent import socket as gsocket

        self.password, self.silent = password, silent
        self.sock = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = self.sock.getsockname()
        self.seen: list[tuple[str, str]] = []  # (nonce, nc) of each authorised REGISTER
        self.nonces = 0
        self.greenlet = gevent.spawn(self._serve)

    def _serve(self) -> None:
        from pbxcheck.sip.digest import Challenge, Credentials, verify
        from pbxcheck.sip.message import Request, make_response, to_bytes
        from pbxcheck.sip.parser import parse_message

        while True:
            data, peer = self.sock.recvfrom(65535)
            if self.silent:
                continue
            req = parse_message(data)
            assert isinstance(req, Request)
            auth = req.headers.get("Authorization")
            if auth is None:
                self.nonces += 1
                challenge = Challenge(realm="test", nonce=f"n{self.nonces}")
                resp = make_response(req, 401, headers=[("WWW-Authenticate", str(challenge))])
            else:
                creds = Credentials.parse(auth)
                self.seen.append((creds.nonce, creds.nc or ""))
                ok = verify(creds, self.password, "REGISTER")
                resp = make_response(req, 200 if ok else 403, to_tag="t")
            self.sock.sendto(to_bytes(resp), peer)

    def close(self) -> None:
        self.greenlet.kill()
        self.sock.close()


def _registrations(
    password: str, count: int, *, refresh: bool = False, silent: bool = False, timeout: float = 8.0
) -> tuple[list[str | None], list[tuple[str, str]]]:
    """``count`` registrations of one binding, one after another: each outcome (None or the failure's
    message) and the (nonce, nc) of every authorised REGISTER the registrar saw."""
    import gevent.event

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "load"))
    from sip_driver import Binding, Multiplexer

    registrar = _Registrar("s3cret", silent=silent)
    mux = Multiplexer(registrar.addr, answer_timeout=timeout)
    try:
        binding = Binding(mux, "6001", password, "127.0.0.1", expires=60, refresh=refresh)
        outcomes: list[str | None] = []
        for _ in range(count):
            done = gevent.event.AsyncResult()
            binding.start(done.set)
            exc = done.get(timeout=timeout + 3)
            outcomes.append(None if exc is None else str(exc))
        return outcomes, registrar.seen
    finally:
        mux.close()
        registrar.close()


@pytest.mark.parametrize(
    ("refresh", "seen"),
    [
        (False, [("n1", "00000001"), ("n2", "00000001"), ("n3", "00000001")]),  # a new nonce every time
        (True, [("n1", "00000001"), ("n1", "00000002"), ("n1", "00000003")]),  # the next nc on the first
    ],
)
def test_the_multiplexed_driver_registers_fresh_or_refreshing(refresh: bool, seen: list[tuple[str, str]]) -> None:
    assert _registrations("s3cret", 3, refresh=refresh) == ([None, None, None], seen)


@pytest.mark.parametrize(
    ("password", "silent", "failure"),
    [
        ("wrong", False, "authenticated REGISTER answered 403, expected 200"),
        ("s3cret", True, "no final answer to REGISTER within 0.5 s"),
    ],
)
def test_a_failed_registration_says_why_and_the_next_one_still_runs(password: str, silent: bool, failure: str) -> None:
    outcomes, _ = _registrations(password, 2, silent=silent, timeout=0.5)
    assert outcomes == [failure, failure]
