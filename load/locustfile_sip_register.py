"""SIP registration load: each Locust user is one extension registering with digest over UDP or TCP.

Two drivers (``$PBXCHECK_SIP_DRIVER``), both on the one SIP engine (``sip.engine``: retransmissions
over UDP, Timer F, response matching), REGISTERs from the core's one builder
(``sip.register.make_register``), Authorization from ``sip.digest``:

- ``multiplex`` (default, UDP only; ``sip_driver``): SIPp's architecture. One UDP socket and one
  engine serve every user of the process; one greenlet reads the socket in batches and hands each
  final response to its extension's callback state machine (``sip_driver.Binding``). In the closed
  model with no think time a registration's end starts the next one from that callback (no greenlet
  switch per registration); otherwise the user parks until its registration ends.
- ``per-user`` (and always over TCP): each user has its own connection and blocking runner
  (``sip.sync.BlockingEndpoint``), which gevent makes cooperative, and waits per message.

Each registration fires one Locust request event, so SIP shows in the same stats, thresholds and
result.json (the generator's CPU per registration included) as the HTTP scenarios.

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
From tag) is made once and handed to the builder as its options, a UDP socket is connected (the
kernel filters other senders), nothing is logged per message, and what the engine keeps alive is
frozen out of the collector's sight once a second.
"""

from __future__ import annotations

import gc
import itertools
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from common import dispatcher, options, recorder, target
from locust import User, events, task
from locust.user.task import LOCUST_STATE_RUNNING
from pbxuser import PbxUser
from sip_driver import Binding, Multiplexer, RegistrationFailed, authorization, challenge_of, register_options

from pbxcheck.sip.digest import Challenge
from pbxcheck.sip.drivers.blocking import BlockingTcp
from pbxcheck.sip.message import Response
from pbxcheck.sip.register import make_register
from pbxcheck.sip.sync import BlockingEndpoint

MODES = ("fresh", "refresh")
TRANSPORTS = ("udp", "tcp")
DRIVERS = ("multiplex", "per-user")
MODE = os.environ.get("PBXCHECK_SIP_MODE", "fresh").lower()
TRANSPORT = os.environ.get("PBXCHECK_SIP_TRANSPORT", "udp").lower()
DRIVER = os.environ.get("PBXCHECK_SIP_DRIVER", "multiplex").lower()
if MODE not in MODES:
    raise RuntimeError(f"PBXCHECK_SIP_MODE={MODE!r}: one of {', '.join(MODES)}")
if TRANSPORT not in TRANSPORTS:
    raise RuntimeError(f"PBXCHECK_SIP_TRANSPORT={TRANSPORT!r}: one of {', '.join(TRANSPORTS)}")
if DRIVER not in DRIVERS:
    raise RuntimeError(f"PBXCHECK_SIP_DRIVER={DRIVER!r}: one of {', '.join(DRIVERS)}")
MULTIPLEX = DRIVER == "multiplex" and TRANSPORT == "udp"  # the multiplexed driver is UDP-only

EXPIRES = 300  # the binding's asked lifetime (refresh mode re-registers long before it runs out)
ANSWER_TIMEOUT_S = 8.0  # the caller's bound on one transaction (the engine's Timer F is 32 s)
NAME = {"fresh": "REGISTER (digest)", "refresh": "REGISTER (refresh nc)"}[MODE]
NO_CONTEXT: dict[str, Any] = {}  # read only (common's listener): no dict per closed-model event

FREEZE_EVERY_S = 1.0

_users = itertools.count()
_freezer: Any = None
_mux: Multiplexer | None = None


def multiplexer(remote: tuple[str, int]) -> Multiplexer:
    """This process's one socket and engine, made by its first user."""
    global _mux
    if _mux is None:
        _mux = Multiplexer(remote, answer_timeout=ANSWER_TIMEOUT_S)
    return _mux


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


@events.quit.add_listener
def _close_multiplexer(**_: Any) -> None:
    global _mux
    if _mux is not None:
        _mux.close()
        _mux = None


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


class PerUserRegistration:
    """The per-user driver: one extension's own connection and blocking runner (TCP, or
    ``PBXCHECK_SIP_DRIVER=per-user``); ``attempt`` blocks for one registration."""

    def __init__(self, number: str, password: str, domain: str, remote: tuple[str, int]) -> None:
        self.number, self.password, self.domain, self.remote = number, password, domain, remote
        self.uri = f"sip:{domain}"
        self.cseq = 0
        self.challenge: Challenge | None = None  # refresh mode: the nonce in use and its count
        self.nc = 0
        self.sip: BlockingEndpoint | None = None
        self.conn: Any = None
        self.fixed: dict[str, Any] = {}

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _connect(self) -> BlockingEndpoint:
        """The connection, its engine and the builder's fixed options (once per connection: the
        Contact names the local port)."""
        conn = ConnectedUdp(self.remote) if TRANSPORT == "udp" else BlockingTcp(self.remote, timeout=ANSWER_TIMEOUT_S)
        self.conn = conn
        self.fixed = register_options(conn.local, TRANSPORT, EXPIRES)
        self.sip = BlockingEndpoint(conn, lazy_responses=True)
        return self.sip

    def _exchange(self, auth: str | None) -> Response:
        sip = self.sip or self._connect()
        self.cseq += 1
        req = make_register(self.domain, self.number, cseq=self.cseq, authorization=auth, **self.fixed)
        resp = sip.request(req, ANSWER_TIMEOUT_S)
        if resp is None:
            raise RegistrationFailed(f"no final answer to REGISTER within {ANSWER_TIMEOUT_S:g} s")
        return resp

    def register(self) -> None:
        """One registration: 200 or RegistrationFailed (ConnectionError over TCP)."""
        if MODE == "refresh" and self.challenge is not None:
            self.nc += 1
            resp = self._exchange(authorization(self.challenge, self.number, self.password, self.uri, self.nc))
            if resp.status == 200:
                return
            self.challenge = None  # stale or refused: one fresh round below
            first = resp
        else:
            first = self._exchange(None)
        challenge = challenge_of(first)
        self.nc = 1
        final = self._exchange(authorization(challenge, self.number, self.password, self.uri, self.nc))
        if final.status != 200:
            raise RegistrationFailed(f"authenticated REGISTER answered {final.status}, expected 200")
        if MODE == "refresh":
            self.challenge = challenge

    def attempt(self) -> Exception | None:
        """One registration; what went wrong, as a failed request for the stats (not a dead user)."""
        try:
            self.register()
        except (RegistrationFailed, OSError) as e:
            if isinstance(e, OSError):  # the connection is gone: a new one (and a new challenge) next time
                self.close()
                self.sip, self.challenge = None, None
            return e.with_traceback(None)  # no frame cycle for the frozen collector to miss
        except Exception as e:  # a malformed answer (the parser's SipParseError, a bad challenge)
            return RegistrationFailed(f"answer not understood ({type(e).__name__})")
        return None


class SipRegisterUser(User):
    # the HTTP users' pacing, as is (it reads open, done, _last_start; PbxUser is abstract, so
    # Locust does not run it from this file)
    wait_time = PbxUser.wait_time

    def on_start(self) -> None:
        import gevent

        t = target()
        if not t.extensions:
            raise RuntimeError("the target lists no [[extensions]] to register")
        ext = t.extensions[next(_users) % len(t.extensions)]
        remote = (t.sip_host, t.sip_udp_port if TRANSPORT == "udp" else t.sip_tcp_port)
        o = options()
        self.open = o.pbx_rate > 0
        self._no_wait = not o.pbx_think and not o.pbx_max_rate  # closed, no think time (PbxUser's flag)
        self._fire = self.environment.events.request.fire
        self.done = False
        self._last_start = 0.0
        self._hub = gevent.get_hub()
        self._waiter: Any = None  # the greenlet parked until its registration ends
        self._in_flight = False  # open model, multiplexed: a registration started and not ended
        self._started = 0.0
        self.binding: Binding | None = None
        self.per_user: PerUserRegistration | None = None
        if MULTIPLEX:
            self.binding = Binding(
                multiplexer(remote), ext.number, ext.password, t.sip_host, expires=EXPIRES, refresh=MODE == "refresh"
            )
        else:
            self.per_user = PerUserRegistration(ext.number, ext.password, t.sip_host, remote)

    def on_stop(self) -> None:
        if self.per_user is not None:
            self.per_user.close()

    @task
    def step(self) -> None:
        """Open model: slot after slot in this one task until the schedule is over; closed with no
        think time: registration after registration. Locust's per-task bookkeeping and its sleep(0)
        then come once per run, not once per registration (as ``PbxUser.step``)."""
        if not self.open:
            self._last_start = time.perf_counter()
            if self._no_wait and self.binding is not None:
                self._chain()
                return
            self._measured(None)
            while self._no_wait and self._state == LOCUST_STATE_RUNNING:  # a graceful stop ends it
                self._measured(None)
            return
        d = dispatcher()
        while (intended := d.take()) is not None:  # blocks until the slot is due; None: schedule over
            p, now = d.pacer, time.perf_counter()
            in_window = p.schedule.ramp <= max(now, intended) - p.start < p.schedule.duration
            recorder.sent(now - intended, in_window, backlog=d.backlog)
            if self.binding is None:
                self._measured(intended)
            else:
                self._start_open(intended)
        if self._in_flight:
            self._park_until(_nothing)  # the last registration's end
        self.done = True

    def _start_open(self, intended: float) -> None:
        """Open model, multiplexed: start this slot's registration and go back for the next slot;
        its end is reported from the reader greenlet (one greenlet switch per slot, not two). A
        user whose previous registration is still in flight waits for its end first."""
        assert self.binding is not None
        if self._in_flight:
            self._park_until(_nothing)
        self._in_flight = True
        started = time.perf_counter()
        self.binding.start(lambda exc: self._ended_open(started, intended, exc))

    def _ended_open(self, started: float, intended: float, exc: Exception | None) -> None:
        self._in_flight = False
        self._report(started, intended, exc)
        self._wake(None)

    def _park_until(self, start: Callable[[], object]) -> Any:
        """Park this user's greenlet as the waiter ``_wake`` resumes, call ``start`` (whose callback
        may wake it), and return what ``_wake`` passed; killed while parked, it stops waiting."""
        self._waiter = me = _current()
        try:
            start()
            return self._hub.switch()
        finally:
            if self._waiter is me:
                self._waiter = None

    def _measured(self, intended: float | None) -> None:
        """One registration, fired as one Locust request event (latency from ``intended`` if open)."""
        started = time.perf_counter()
        if self.per_user is not None:
            exc = self.per_user.attempt()
        else:
            binding = self.binding
            assert binding is not None
            exc = self._park_until(lambda: binding.start(self._wake))
        self._report(started, intended, exc)

    def _wake(self, exc: Exception | None) -> None:
        # from the reader greenlet: resume the parked user from the hub, never switch to it directly
        # (the reader would stay suspended mid-batch)
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._hub.loop.run_callback(waiter.switch, exc)

    def _chain(self) -> None:
        """Closed model, no think time, multiplexed: each registration's end starts the next from the
        reader greenlet; this greenlet only waits for the graceful stop (or is killed)."""
        binding = self.binding
        assert binding is not None
        self._started = time.perf_counter()
        # killed while parked: the chain ends with its registration (_chained finds no waiter)
        self._park_until(lambda: binding.start(self._chained))

    def _chained(self, exc: Exception | None) -> None:
        if self._waiter is None:  # the user was killed: nothing to report to
            return
        self._report(self._started, None, exc)
        if self._state == LOCUST_STATE_RUNNING:
            assert self.binding is not None
            self._started = time.perf_counter()
            self.binding.start(self._chained)
        else:
            self._wake(None)

    def _report(self, started: float, intended: float | None, exc: Exception | None) -> None:
        self._fire(
            request_type="SIP",
            name=NAME,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=exc,
            context={"pbx_t0": intended} if intended is not None else NO_CONTEXT,
        )


def _nothing() -> None:
    pass


def _current() -> Any:
    from gevent import getcurrent

    return getcurrent()
