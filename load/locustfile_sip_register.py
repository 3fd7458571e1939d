"""SIP registration load: each Locust user is one extension registering with digest over UDP or TCP.

A custom User (not HTTP) on the one SIP engine: its transactions run in ``sip.engine`` through the
blocking runner ``sip.sync.BlockingEndpoint`` (retransmissions over UDP, Timer F, response
matching), which gevent makes cooperative; its REGISTERs come from the core's one builder
(``sip.register.make_register``) and its Authorization from ``sip.digest``. Each registration fires
one Locust request event, so SIP shows in the same stats, thresholds and result.json (the
generator's CPU per registration included) as the HTTP scenarios.

Two modes (``$PBXCHECK_SIP_MODE``):

- ``fresh`` (default): every registration is REGISTER -> 401 -> REGISTER with Authorization -> 200,
  as SIPp's scenario does (bench/sipp_register.xml): the registrar checks a new nonce every time;
- ``refresh``: what a phone does between expiries: the challenge of the first 401 answers every
  later REGISTER with the next nonce count (nc), one exchange per registration; a 401 (the nonce
  went stale) is answered again with the new challenge inside the same registration.

``$PBXCHECK_SIP_TRANSPORT``: ``udp`` (default) or ``tcp`` (one connection per user, re-opened when
the server closes it). Pacing is the HTTP scenarios': the open model (``--rate``) takes slots from the
process's dispatcher and measures latency from each slot, the closed model thinks ``--think-time``
(uniform 0.5x-1.5x), capped by the target's ``[load] max_rate``.

Per-registration cost is kept low without leaving the engine (bench/bench_sip_load.py measures it
against SIPp): everything constant for a user (Request-URI, address of record, Contact, Call-ID,
From tag) is made once and handed to the builder as its options, a UDP user's
socket is connected (the kernel filters other senders), nothing is logged per message, and what the
engines keep alive is frozen out of the collector's sight once a second.
"""

from __future__ import annotations

import gc
import itertools
import os
import socket
import time
from typing import Any

from common import dispatcher, options, recorder, target
from locust import User, events, task
from locust.user.task import LOCUST_STATE_RUNNING
from pbxuser import PbxUser

from pbxcheck.sip.digest import Challenge, build_authorization
from pbxcheck.sip.drivers.blocking import BlockingTcp
from pbxcheck.sip.ids import new_call_id, new_tag
from pbxcheck.sip.message import Response
from pbxcheck.sip.register import make_register
from pbxcheck.sip.sync import BlockingEndpoint

MODES = ("fresh", "refresh")
TRANSPORTS = ("udp", "tcp")
MODE = os.environ.get("PBXCHECK_SIP_MODE", "fresh").lower()
TRANSPORT = os.environ.get("PBXCHECK_SIP_TRANSPORT", "udp").lower()
if MODE not in MODES:
    raise RuntimeError(f"PBXCHECK_SIP_MODE={MODE!r}: one of {', '.join(MODES)}")
if TRANSPORT not in TRANSPORTS:
    raise RuntimeError(f"PBXCHECK_SIP_TRANSPORT={TRANSPORT!r}: one of {', '.join(TRANSPORTS)}")

EXPIRES = 300  # the binding's asked lifetime (refresh mode re-registers long before it runs out)
ANSWER_TIMEOUT_S = 8.0  # the caller's bound on one transaction (the engine's Timer F is 32 s)
NAME = {"fresh": "REGISTER (digest)", "refresh": "REGISTER (refresh nc)"}[MODE]

FREEZE_EVERY_S = 1.0

_users = itertools.count()
_freezer: Any = None


@events.test_start.add_listener
def _freeze_periodically(**_: Any) -> None:
    """``gc.freeze()`` once a second, after common's at the test's start: the collector's full
    passes then never walk the transactions the engines keep for Timer K (5 s of them over UDP,
    ~50 µs of CPU per registration at saturation, bench/RESULTS.md). Frozen objects are still freed
    by reference counting; a registration leaves no cycle behind (a failure's traceback is cut)."""
    import gevent

    def loop() -> None:
        while True:
            gevent.sleep(FREEZE_EVERY_S)
            gc.freeze()

    global _freezer
    _freezer = gevent.spawn(loop)


@events.test_stop.add_listener
def _stop_freezing(**_: Any) -> None:
    if _freezer is not None:
        _freezer.kill(block=False)


class RegistrationFailed(Exception):
    """One registration that did not end in 200 (its message names the step, never a nonce)."""


class ConnectedUdp:
    """A UDP socket connected to the server: the kernel drops datagrams from anyone else, so a
    receive is one ``recv`` (``drivers.blocking.BlockingUdp`` compares every sender's address)."""

    transport = "UDP"

    def __init__(self, remote: tuple[str, int]) -> None:
        self.remote = remote
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(remote)
        name = self.sock.getsockname()
        self.local = (name[0], name[1])
        self._timeout: float | None = None

    def send(self, data: bytes) -> None:
        self.sock.send(data)

    def recv(self, timeout: float | None = None) -> bytes | None:
        if timeout != self._timeout:
            self.sock.settimeout(timeout)
            self._timeout = timeout
        try:
            return self.sock.recv(65535)
        except TimeoutError:
            return None
        except ConnectionRefusedError:  # an ICMP port unreachable: as good as no answer
            return None

    def close(self) -> None:
        self.sock.close()


class SipRegisterUser(User):
    # the HTTP users' pacing, as is (it reads open, done, _last_start; PbxUser is abstract, so
    # Locust does not run it from this file)
    wait_time = PbxUser.wait_time

    def on_start(self) -> None:
        t = target()
        if not t.extensions:
            raise RuntimeError("the target lists no [[extensions]] to register")
        ext = t.extensions[next(_users) % len(t.extensions)]
        self.number, self.password = ext.number, ext.password
        self.domain = t.sip_host
        self.remote = (t.sip_host, t.sip_udp_port if TRANSPORT == "udp" else t.sip_tcp_port)
        self.uri = f"sip:{self.domain}"
        o = options()
        self.open = o.pbx_rate > 0
        self._no_wait = not o.pbx_think and not o.pbx_max_rate  # closed, no think time (PbxUser's flag)
        self._fire = self.environment.events.request.fire
        self.done = False
        self._last_start = 0.0
        self.cseq = 0
        self.challenge: Challenge | None = None  # refresh mode: the nonce in use and its count
        self.nc = 0
        self.sip: BlockingEndpoint | None = None
        self.conn: Any = None

    def on_stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _connect(self) -> BlockingEndpoint:
        """This user's connection, its engine and the builder's fixed options (once per connection:
        the Contact names the local port)."""
        conn = ConnectedUdp(self.remote) if TRANSPORT == "udp" else BlockingTcp(self.remote, timeout=ANSWER_TIMEOUT_S)
        self.conn = conn
        sent_by = f"{conn.local[0]}:{conn.local[1]}"
        # RFC 3261 §10.2.4: one Call-ID and From tag for every REGISTER to this registrar, CSeq up
        self.fixed: dict[str, Any] = {
            "sent_by": sent_by,
            "transport": conn.transport,
            "call_id": new_call_id(),
            "from_tag": new_tag(),
            "uri": self.uri,
            "aor": f"<sip:{self.number}@{self.domain}>",
            "expires": EXPIRES,
            "contact": f"<sip:{self.number}@{sent_by};transport={TRANSPORT}>",
        }
        self.sip = BlockingEndpoint(conn, lazy_responses=True)
        return self.sip

    def _exchange(self, authorization: str | None) -> Response:
        sip = self.sip or self._connect()
        self.cseq += 1
        req = make_register(self.domain, self.number, cseq=self.cseq, authorization=authorization, **self.fixed)
        resp = sip.request(req, ANSWER_TIMEOUT_S)
        if resp is None:
            raise RegistrationFailed(f"no final answer to REGISTER within {ANSWER_TIMEOUT_S:g} s")
        return resp

    def _authorization(self, challenge: Challenge) -> str:
        # fresh: nc 1 on a new nonce every time; refresh: the next nc on the nonce in use
        return str(build_authorization(challenge, self.number, self.password, "REGISTER", self.uri, nc=self.nc))

    def _challenged(self, resp: Response) -> Challenge:
        if resp.status != 401:
            raise RegistrationFailed(f"REGISTER answered {resp.status}, expected 401 or 200")
        value = resp.headers.get("WWW-Authenticate")
        if value is None:
            raise RegistrationFailed("401 without WWW-Authenticate")
        return Challenge.parse(value)

    def register(self) -> None:
        """One registration: 200 or RegistrationFailed (ConnectionError over TCP)."""
        if MODE == "refresh" and self.challenge is not None:
            self.nc += 1
            resp = self._exchange(self._authorization(self.challenge))
            if resp.status == 200:
                return
            self.challenge = None  # stale or refused: one fresh round below
            first = resp
        else:
            first = self._exchange(None)
        challenge = self._challenged(first)
        self.nc = 1
        final = self._exchange(self._authorization(challenge))
        if final.status != 200:
            raise RegistrationFailed(f"authenticated REGISTER answered {final.status}, expected 200")
        if MODE == "refresh":
            self.challenge = challenge

    @task
    def step(self) -> None:
        """Open model: slot after slot in this one task until the schedule is over; closed with no
        think time: registration after registration. Locust's per-task bookkeeping and its sleep(0)
        then come once per run, not once per registration (as ``PbxUser.step``)."""
        if not self.open:
            self._last_start = time.perf_counter()
            self._measured(None)
            while self._no_wait and self._state == LOCUST_STATE_RUNNING:  # a graceful stop ends it
                self._measured(None)
            return
        d = dispatcher()
        while (intended := d.take()) is not None:  # blocks until the slot is due; None: schedule over
            p, now = d.pacer, time.perf_counter()
            in_window = p.schedule.ramp <= max(now, intended) - p.start < p.schedule.duration
            recorder.sent(now - intended, in_window, backlog=d.backlog)
            self._measured(intended)
        self.done = True

    def _measured(self, intended: float | None) -> None:
        """One registration, fired as one Locust request event (latency from ``intended`` if open)."""
        started = time.perf_counter()
        exc: Exception | None = None
        try:
            self.register()
        except (RegistrationFailed, OSError) as e:  # a failed request in the stats, not a dead user
            exc = e.with_traceback(None)  # no frame cycle for the frozen collector to miss
            if isinstance(e, OSError):  # the connection is gone: a new one (and a new challenge) next time
                self.on_stop()
                self.sip, self.challenge = None, None
        except Exception as e:  # a malformed answer (the parser's SipParseError, a bad challenge)
            exc = RegistrationFailed(f"answer not understood ({type(e).__name__})")
        self._fire(
            request_type="SIP",
            name=NAME,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=exc,
            context={"pbx_t0": intended} if intended is not None else {},
        )
