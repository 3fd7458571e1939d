"""The HTTP user every API scenario is made of: paced (open model) or thinking (closed model), its
actions chosen by weight, each answer checked in full against the contract.

Open model (``--pbx-rate``): each task takes the next due slot of this process's schedule from the
dispatcher (common.Dispatcher), sends it at once, and the latency is measured from the slot (``context["pbx_t0"]``), so a request that
waited for a free user still counts its wait. Closed model: think time ``--pbx-think`` (uniform 0.5x
to 1.5x), capped at ``--pbx-max-rate`` requests/s over the process's users when one is set.

Each request goes straight to the geventhttpclient ``HTTPClient`` Locust's FastHttpUser holds for
the host (its connection pool, TLS context and timeouts), its answer read whole and judged, and is
then reported as one Locust request event, as FastHttpSession.request would: Locust's generic layer
(URL parsing, cookie jar, redirects, a response wrapper per request) cost a third of the generator's
CPU per request and served nothing here. A wrong answer, a bad status and a transport error
(refused, reset, TLS) alike are one failure line in Locust's table, never a traceback per request.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from common import (
    credentials,
    dispatcher,
    options,
    recorder,
    sequence,
    ssl_context_factory,
    target,
    unique_prefix,
    warming_up,
    workers,
)
from geventhttpclient.url import URL
from locust import task
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, FastHttpUser, LocustBadStatusCode
from locust.user.task import LOCUST_STATE_RUNNING

from pbxcheck.contract import CHAMADA_OK, ID, OK, RAMAL_FIELDS, STATUS
from pbxcheck.loadkit.destinations import LOOPBACK_DESTINATIONS

_HEADERS = {"Content-Type": "application/json"}
_OK = json.dumps([STATUS, OK], separators=(",", ":")).encode()
_C2C_ID = re.compile(r"^\d+_\d{14}_\d+$")
_C2C_RAW = re.compile(
    re.escape(json.dumps([STATUS, CHAMADA_OK, ID], separators=(",", ":"))[:-1].encode()) + rb',"\d+_\d{14}_\d+"\]'
)


def _destinations() -> tuple[int, int, int]:
    raw = options().pbx_destinations
    first, last = raw.split("-") if raw else LOOPBACK_DESTINATIONS
    return int(first), int(last), len(first)


class WrongAnswer(ConnectionError):
    """An HTTP answer that fails the contract's check (a ConnectionError, as Locust's own
    LocustBadStatusCode): one failure line per kind in Locust's table."""


_NO_CONTEXT: dict[str, Any] = {}  # the closed model's request context (read-only for listeners)


class PbxUser(FastHttpUser):
    abstract = True
    ssl_context_factory = staticmethod(ssl_context_factory)
    weights: dict[str, int] = {"insert": 1}  # action -> weight; --pbx-weights overrides
    connection_timeout = 10.0
    network_timeout = 10.0

    def on_start(self) -> None:
        o = options()
        weights = self.weights
        if o.pbx_weights:
            weights = {k: int(v) for k, v in (p.split("=") for p in o.pbx_weights.split(","))}
        g = math.gcd(*weights.values())
        self.actions: list[Callable[[float | None], None]] = [
            getattr(self, f"do_{name}") for name, w in weights.items() for _ in range(w // g)
        ]
        t = target()
        self.creds = credentials()
        self.campaign = t.disposable_campaign
        self.origins = o.pbx_origins.split(",") if o.pbx_origins else [e.number for e in t.extensions] or ["2001"]
        # Bodies as json.dumps writes them, the constant part serialised once: per request only the
        # few changing values are formatted in (they are digits and idcrms, nothing to escape).
        self._insert_head = json.dumps(
            {"acao": "insert", "idcampanha": self.campaign, **self.creds, "cpf": "52998224725"}
        )[:-1]
        c2c_head = json.dumps({"acao": "clicktocall", **self.creds})[:-1]
        self._next_c2c = _c2c_bodies(c2c_head, tuple(self.origins))
        self._next_phone = _phone_fields()
        self._idcrm_prefix = unique_prefix("load")  # in on_start: after Locust's --processes fork
        self._listing_body = json.dumps({"acao": "statusdiscador", "idcampanha": self.campaign, **self.creds})
        self._ramais_body = json.dumps({"acao": "statusramais", **self.creds})
        url = URL(f"{self.host}/api.php")
        self._url = str(url)
        self._uri: str = getattr(url, "quoted_uri", url.request_uri)  # as Locust's _urlopen sends it
        self._http = self.client.client.clientpool.get_client(url)  # the user's own pool: its connection
        self._fire = self.environment.events.request.fire
        self.open = o.pbx_rate > 0
        self._no_wait = not o.pbx_think and not o.pbx_max_rate  # closed, no think time: Locust's constant(0)
        self.done = False
        self._last_start = 0.0
        if self.open:
            with warming_up():
                self._warm_up()

    def _warm_up(self) -> None:
        """Open this user's connection (TCP, TLS) before the schedule starts, with a GET the central
        answers Requisicao Invalida to (no credentials, no effect), outside Locust's stats: a first
        second of handshakes would otherwise read as the target's latency."""
        try:
            self._http.request("GET", self._uri).read()  # read whole: the connection goes back to the pool
        except Exception:  # the measured requests will say what is wrong, once per kind
            pass

    # --- pacing -------------------------------------------------------------------------------

    def wait_time(self) -> float:
        if self._no_wait and not self.open:
            return 0.0
        if self.open:
            return 0.5 if self.done else 0.0
        o = options()
        wait = random.uniform(0.5, 1.5) * o.pbx_think if o.pbx_think else 0.0
        if o.pbx_max_rate:  # each process its share of max_rate, spread over its users
            users = max(1, self.environment.runner.user_count)
            wait = max(wait, users * workers() / o.pbx_max_rate - (time.perf_counter() - self._last_start))
        return wait

    @task
    def step(self) -> None:
        actions = self.actions
        one = actions[0] if len(actions) == 1 else None
        if not self.open:
            self._last_start = time.perf_counter()
            (one or random.choice(actions))(None)
            # no think time: request after request in this one task (Locust's per-task bookkeeping
            # and its sleep(0) once per run, not once per request) until a graceful stop
            while self._no_wait and self._state == LOCUST_STATE_RUNNING:
                (one or random.choice(actions))(None)
            return
        # Open model: slot after slot in one task until the schedule is over (Locust's per-task
        # bookkeeping and its sleep(0) once per run, not once per request).
        d = dispatcher()
        take, sent, perf_counter = d.take, recorder.sent, time.perf_counter
        intended = take()  # the first slot: the schedule has started once it comes
        if intended is None:
            self.done = True
            return
        start, ramp, duration = d.pacer.start, d.pacer.schedule.ramp, d.pacer.schedule.duration
        while True:
            now = perf_counter()
            rel = max(now, intended) - start  # a slot sent a fraction of a tick early counts at its time
            sent(now - intended, ramp <= rel < duration, backlog=d.backlog)
            (one or random.choice(actions))(intended)
            intended = take()
            if intended is None:
                self.done = True
                return

    # --- actions ------------------------------------------------------------------------------

    def _post(self, name: str, body: str, intended: float | None, check: Callable[[bytes], str | None]) -> bytes | None:
        """The answer when it passed ``check``, else None (a failure in Locust's table). One Locust
        request event either way, its response time from the send to the answer read whole (as
        FastHttpSession's); the open model's latency from ``intended`` is taken by common's listener."""
        raw, status = b"", 0
        exc: Exception | None = None
        started = time.perf_counter()
        try:
            resp = self._http.request("POST", self._uri, body=body, headers=_HEADERS)
            raw = resp.read()  # the whole answer: the connection returns to the pool
            status = resp.status_code
        except FAILURE_EXCEPTIONS as e:
            exc = e
        ms = (time.perf_counter() - started) * 1000.0
        if exc is None:
            if not 200 <= status < 300:
                exc = LocustBadStatusCode(self._url, code=status)
            else:
                try:
                    why = check(raw)
                except Exception as e:  # a malformed answer is a failure, not a dead user
                    why = f"answer not understood ({type(e).__name__}): {raw[:80]!r}"
                if why is not None:
                    exc = WrongAnswer(why)
        self._fire(
            request_type="POST",
            name=name,
            response_time=ms,
            response_length=len(raw),
            exception=exc,
            context=_NO_CONTEXT if intended is None else {"pbx_t0": intended},
        )
        return raw if exc is None else None

    def do_insert(self, intended: float | None) -> None:
        idcrm = f"{self._idcrm_prefix}{next(sequence)}"
        body = f'{self._insert_head}, "idcrm": "{idcrm}", "cliente": "CARGA {idcrm}", {self._next_phone()}}}'
        if self._post("insert", body, intended, _check_insert) is not None:
            recorder.acked.append(idcrm)

    def do_clicktocall(self, intended: float | None) -> None:
        raw = self._post("clicktocall", self._next_c2c(), intended, _check_c2c)
        if raw is not None:  # its ID: the phones' rings are matched against it (loadkit.phones)
            end = raw.rindex(b'"')  # the ID is the answer's last string (checked by _check_c2c)
            recorder.calls.append(raw[raw.rindex(b'"', 0, end) + 1 : end].decode())

    def do_statusdiscador(self, intended: float | None) -> None:
        self._post("statusdiscador", self._listing_body, intended, _check_listing)

    def do_statusramais(self, intended: float | None) -> None:
        self._post("statusramais", self._ramais_body, intended, _check_ramais)


_POOL = 4096  # random destinations drawn once per process; requests take them in turn


@lru_cache(maxsize=1)
def _numbers() -> tuple[str, ...]:
    first, last, width = _destinations()
    return tuple(str(first + int(random.random() * (last - first + 1))).zfill(width) for _ in range(_POOL))


@lru_cache(maxsize=1)
def _phone_fields() -> Callable[[], str]:
    """The next insert's ddd1/tel1 fields, from the process's pool of destinations."""
    return itertools.cycle([f'"ddd1": "{n[:2]}", "tel1": "{n[2:]}"' for n in _numbers()]).__next__


@lru_cache(maxsize=4)
def _c2c_bodies(head: str, origins: tuple[str, ...]) -> Callable[[], str]:
    """The next clicktocall body, built whole once: one ring of bodies per process, shared by its
    users, so the origins come in turn (with N origins every N click-to-calls ring each once; random
    picks would leave some unrung in a short run)."""
    numbers = _numbers()
    n = len(origins) * max(1, _POOL // len(origins))
    return itertools.cycle(
        [
            f'{head}, "origem": {json.dumps(origins[i % len(origins)])}, "destino": "{numbers[i % _POOL]}"}}'
            for i in range(n)
        ]
    ).__next__


def _check_insert(raw: bytes) -> str | None:
    if raw == _OK or json.loads(raw) == [STATUS, OK]:
        return None
    return f"answer {raw[:80]!r}"


def _check_c2c(raw: bytes) -> str | None:
    if _C2C_RAW.fullmatch(raw):  # the compact form, checked whole without a parse
        return None
    a = json.loads(raw)
    if isinstance(a, list) and len(a) == 4 and a[:2] == [STATUS, CHAMADA_OK] and _C2C_ID.match(str(a[3])):
        return None
    if isinstance(a, list) and len(a) == 4:  # the ID differs per call: one failure line per kind, not per call
        return f"answer {a[:3]!r} with an ID, expected {[STATUS, CHAMADA_OK, ID]!r}"
    return f"answer {raw[:80]!r}"


def _check_listing(raw: bytes) -> str | None:
    a = json.loads(raw)
    if isinstance(a, list) and all(isinstance(r, dict) and "status" in r and "cuje" in r for r in a):
        return None
    return f"not a statusdiscador listing: {raw[:80]!r}"


def _check_ramais(raw: bytes) -> str | None:
    a = json.loads(raw)
    if isinstance(a, list) and a and all(isinstance(r, dict) and all(f in r for f in RAMAL_FIELDS) for r in a):
        return None
    return f"not a statusramais answer: {raw[:80]!r}"
