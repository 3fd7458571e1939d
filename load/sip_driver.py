"""The multiplexed SIP registration driver: one UDP socket and one sans-IO engine (``sip.engine``,
``lazy_responses=True``) serve every registration of a Locust process, as SIPp's one socket does.

One greenlet reads the socket in batches (non-blocking ``recv`` until EAGAIN or ``BATCH``
datagrams, then one wait for readability on a reused watcher: no gevent Timeout per message) and
feeds ``engine.receive``; what the batch's answers started (the next REGISTERs) goes out at the
batch's end, back to back (a datagram into a registrar that went idle pays its wake-up in the
sender's system call; in a burst only the first does). A second greenlet sleeps until
``engine.next_deadline()`` (at least ``TICK_MIN_S``) and calls ``engine.timer_fired`` (a send whose
first retransmission would come before that wake-up wakes it sooner).
Each extension is a :class:`Binding`, a callback state machine for one registration at a time::

    fresh:   sent REGISTER -> 401 -> sent REGISTER with Authorization -> 200 -> done(None)
    refresh: sent REGISTER with the next nc -> 200 -> done(None)   (a 401: one fresh round as above)

Every SIP rule (retransmission over UDP, Timers E/F/K, response matching) stays in the engine; the
driver only carries bytes and timer firings, and hands a transaction's final response to its binding.
UDP only: over TCP the locustfile keeps its per-user connection (``sip.sync.BlockingEndpoint``).
"""

from __future__ import annotations

import _socket
import time
from collections.abc import Callable
from typing import Any

from pbxcheck.sip.digest import Challenge, build_authorization
from pbxcheck.sip.engine import ClientHandle, ClientTimedOut, Engine, Event, IncomingResponse
from pbxcheck.sip.flow import Flow
from pbxcheck.sip.ids import new_call_id, new_tag
from pbxcheck.sip.message import Request, Response
from pbxcheck.sip.register import register_maker

__all__ = ["Binding", "Multiplexer", "RegistrationFailed", "authorization", "challenge_of", "register_options"]

Done = Callable[[Exception | None], None]

# Datagrams read per turn: at saturation the socket is never empty (each answer sends the next
# request), and a reader that drained it to EAGAIN would starve every other greenlet (Locust's
# time limit and stats, the open model's dispatcher) for seconds; 64 is ~4 ms of work, and the
# burst of sends at its end is the bench's 64 registrations in flight (16: ~10 % more CPU each).
BATCH = 64
GIVE_UP_EVERY_S = 1.0  # the timer greenlet's longest sleep: transactions past the caller's bound are given up
# Its shortest: under load the engine's deadlines are the Timer E of every transaction in flight
# (T1 after each send, a new one every few hundred µs), nearly all cancelled by their answer, and
# every send and receive already runs the timers due. Waking for each cost one loop wake-up per
# registration (~20 µs here) to fire nothing; a datagram really lost is resent at most this late.
TICK_MIN_S = 0.02


class RegistrationFailed(Exception):
    """One registration that did not end in 200 (its message names the step, never a nonce)."""


def register_options(local: tuple[str, int], transport: str, expires: int) -> dict[str, Any]:
    """``make_register``'s options constant for one extension on one local address, made once (the
    Request-URI, address of record and Contact are its defaults). RFC 3261 §10.2.4: one Call-ID and
    From tag for every REGISTER to this registrar, CSeq up."""
    return {
        "sent_by": local,
        "transport": transport.upper(),
        "call_id": new_call_id(),
        "from_tag": new_tag(),
        "expires": expires,
    }


def challenge_of(resp: Response) -> Challenge:
    """The digest challenge of a REGISTER's answer, or RegistrationFailed naming what came instead."""
    if resp.status != 401:
        raise RegistrationFailed(f"REGISTER answered {resp.status}, expected 401 or 200")
    value = resp.headers.get("WWW-Authenticate")
    if value is None:
        raise RegistrationFailed("401 without WWW-Authenticate")
    return Challenge.parse(value)


def authorization(challenge: Challenge, number: str, password: str, uri: str, nc: int) -> str:
    """The Authorization value (fresh: nc 1 on a new nonce; refresh: the next nc on the nonce in use)."""
    return str(build_authorization(challenge, number, password, "REGISTER", uri, nc=nc))


class Multiplexer:
    """One connected UDP socket and one engine for every :class:`Binding` of this process.
    ``answer_timeout``: the caller's bound on one transaction (the engine's Timer F is 64*T1)."""

    def __init__(self, remote: tuple[str, int], *, answer_timeout: float) -> None:
        import gevent
        import gevent.event

        # the C-level socket, not gevent's: a non-blocking recv/send is one system call, and the
        # one wait for readability is done on the hub below
        self.sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect(remote)  # the kernel drops datagrams from anyone else
        host, port = self.sock.getsockname()
        self.local = (str(host), int(port))
        self.engine = Engine(lazy_responses=True)
        self.flow = Flow("UDP", self.local, remote, self._send)
        self.answer_timeout = answer_timeout
        self.pending: dict[ClientHandle, Binding] = {}  # transactions in flight -> who waits
        self.clock = time.monotonic
        self._hub = gevent.get_hub()
        self._kick = gevent.event.Event()  # wakes the timer greenlet before _wake_at
        self._wake_at = 0.0
        self._reading = False  # inside the reader's batch
        self._greenlets = [gevent.spawn(self._read), gevent.spawn(self._tick)]

    def send(self, binding: Binding, req: Request) -> None:
        """Start a client transaction for ``binding`` (its final response comes to ``on_final``)."""
        now = self.clock()
        binding.sent_at = now
        self.pending[self.engine.send_request(req, self.flow, now)] = binding
        if not self._reading:  # the reader sends what its batch started at the batch's end
            self._flush()
        if now + self.engine.t1 < self._wake_at:  # its Timer E (T1, the shortest) is due before then
            self._kick.set()

    def close(self) -> None:
        for g in self._greenlets:
            g.kill(block=False)
        self.sock.close()

    def _send(self, data: bytes) -> None:
        try:
            self.sock.send(data)
        except OSError:  # a full buffer, an ICMP error: as good as a lost datagram (Timer E resends)
            pass

    def _flush(self) -> None:
        for data, flow in self.engine.data_to_send():
            flow.send(data)

    def _read(self) -> None:
        recv, receive, flow, clock = self.sock.recv, self.engine.receive, self.flow, self.clock
        watcher = self._hub.loop.io(self.sock.fileno(), 1)
        wait = self._hub.wait
        batch = range(BATCH)
        while True:
            self._reading = True
            try:
                for _ in batch:
                    events = receive(recv(65535), flow, clock())
                    if events:
                        self._dispatch(events)
            except BlockingIOError:
                pass
            except ConnectionRefusedError:  # an ICMP port unreachable: as good as no answer
                pass
            finally:
                self._reading = False
            self._flush()
            wait(watcher)  # at once if more is queued, after the hub ran what else is due

    def _tick(self) -> None:
        give_up_at = self.clock() + GIVE_UP_EVERY_S
        engine, kick = self.engine, self._kick
        while True:
            now = self.clock()
            deadline = engine.next_deadline()
            wait = GIVE_UP_EVERY_S if deadline is None else min(max(deadline - now, TICK_MIN_S), GIVE_UP_EVERY_S)
            self._wake_at = now + wait
            kick.wait(wait)
            kick.clear()
            now = self.clock()
            events = engine.timer_fired(now)
            if events:
                self._dispatch(events)
            if now >= give_up_at:
                give_up_at = now + GIVE_UP_EVERY_S
                self._give_up(now - self.answer_timeout)
            self._flush()

    def _give_up(self, sent_before: float) -> None:
        late = [h for h, b in self.pending.items() if b.sent_at < sent_before]
        for handle in late:
            self.engine.forget(handle)
            self.pending.pop(handle).failed(f"no final answer to REGISTER within {self.answer_timeout:g} s")

    def _dispatch(self, events: list[Event]) -> None:
        pending = self.pending
        for event in events:
            kind = type(event)
            if kind is IncomingResponse:
                assert isinstance(event, IncomingResponse)
                if event.response.status >= 200:
                    binding = pending.pop(event.handle, None)
                    if binding is not None:
                        binding.on_final(event.response)
            elif kind is ClientTimedOut:
                assert isinstance(event, ClientTimedOut)
                binding = pending.pop(event.handle, None)
                if binding is not None:
                    binding.failed(f"no final answer to REGISTER (Timer {event.timer})")
            # requests from the registrar (an OPTIONS), strays, unparseable bytes: nobody waits


class Binding:
    """One extension's registrations over the multiplexer, one at a time; ``start(done)`` sends the
    first REGISTER and returns at once, ``done(None)`` or ``done(RegistrationFailed)`` comes later
    from the reader greenlet. ``refresh``: answer each later REGISTER with the first 401's challenge
    and the next nonce count (nc), as a phone refreshing its binding does."""

    __slots__ = (
        "mux", "number", "password", "domain", "uri", "make", "refresh", "cseq",
        "challenge", "offered", "nc", "stage", "done", "sent_at",
    )  # fmt: skip

    ASKING, AUTHORISING, REFRESHING = 0, 1, 2

    def __init__(
        self, mux: Multiplexer, number: str, password: str, domain: str, *, expires: int, refresh: bool
    ) -> None:
        self.mux = mux
        self.number, self.password, self.domain = number, password, domain
        self.uri = f"sip:{domain}"
        self.make = register_maker(domain, number, **register_options(mux.local, "udp", expires))
        self.refresh = refresh
        self.cseq = 0
        self.challenge: Challenge | None = None  # refresh: the nonce in use
        self.offered: Challenge | None = None  # the challenge this registration is answering
        self.nc = 0
        self.stage = self.ASKING
        self.done: Done | None = None
        self.sent_at = 0.0

    def start(self, done: Done) -> None:
        self.done = done
        if self.refresh and self.challenge is not None:
            self.nc += 1
            self.stage = self.REFRESHING
            self._register(self._authorization(self.challenge))
        else:
            self.stage = self.ASKING
            self._register(None)

    def on_final(self, resp: Response) -> None:
        """The final response to this binding's REGISTER (called by the multiplexer)."""
        try:
            self._step(resp)
        except RegistrationFailed as e:
            self._end(e.with_traceback(None))  # no frames kept alive by the stats' error table
        except Exception as e:  # a malformed answer (the lazy parse's SipParseError, a bad challenge)
            self._end(RegistrationFailed(f"answer not understood ({type(e).__name__})"))

    def failed(self, why: str) -> None:
        self._end(RegistrationFailed(why))

    def _step(self, resp: Response) -> None:
        status, stage = resp.status, self.stage
        if stage == self.AUTHORISING:
            if status != 200:
                raise RegistrationFailed(f"authenticated REGISTER answered {status}, expected 200")
            if self.refresh:
                self.challenge = self.offered
            self._end(None)
            return
        if stage == self.REFRESHING:
            if status == 200:
                self._end(None)
                return
            self.challenge = None  # stale or refused: one fresh round below
        if status != 401:
            raise RegistrationFailed(f"REGISTER answered {status}, expected 401 or 200")
        self.offered = challenge = challenge_of(resp)
        self.nc = 1
        self.stage = self.AUTHORISING
        self._register(self._authorization(challenge))

    def _authorization(self, challenge: Challenge) -> str:
        return authorization(challenge, self.number, self.password, self.uri, self.nc)

    def _register(self, authorization: str | None) -> None:
        self.cseq += 1
        self.mux.send(self, self.make(self.cseq, authorization))

    def _end(self, exc: Exception | None) -> None:
        done, self.done, self.offered = self.done, None, None
        if done is not None:
            done(exc)
