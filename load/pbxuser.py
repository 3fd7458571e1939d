"""The HTTP user every API scenario is made of: paced (open model) or thinking (closed model), its
actions chosen by weight, each answer checked in full against the contract.

Open model (``--pbx-rate``): each task takes the next due slot of this process's schedule from the
dispatcher (common.Dispatcher), sends it at once, and the latency is measured from the slot (``context["pbx_t0"]``), so a request that
waited for a free user still counts its wait. Closed model: think time ``--pbx-think`` (uniform 0.5x
to 1.5x), capped at ``--pbx-max-rate`` requests/s over the process's users when one is set.

A transport error (refused, reset, TLS) is one failure line in Locust's table, named by its type and
first line, never a traceback per request.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import time
from collections.abc import Callable
from typing import Any

from common import credentials, dispatcher, options, recorder, ssl_context_factory, target, unique, workers
from locust import task
from locust.contrib.fasthttp import FastHttpUser

from pbxcheck.contract import CHAMADA_OK, ID, OK, RAMAL_FIELDS, STATUS
from pbxcheck.loadkit.destinations import LOOPBACK_DESTINATIONS
from pbxcheck.loadkit.recorder import LATE_S

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


def transport_error(resp: Any) -> str | None:
    """One line for a request that got no HTTP answer (refused, reset, TLS), else None."""
    err = getattr(resp, "error", None)
    if err is None or getattr(resp, "status_code", None):
        return None
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text[:120]}"


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
        self.first, self.last, self.width = _destinations()
        # Bodies as json.dumps writes them, the constant part serialised once: per request only the
        # few changing values are formatted in (they are digits and idcrms, nothing to escape).
        self._insert_head = json.dumps(
            {"acao": "insert", "idcampanha": self.campaign, **self.creds, "cpf": "52998224725"}
        )[:-1]
        self._c2c_head = json.dumps({"acao": "clicktocall", **self.creds})[:-1]
        self._next_origin = _origin_cycle(self.origins)
        self._listing_body = json.dumps({"acao": "statusdiscador", "idcampanha": self.campaign, **self.creds})
        self._ramais_body = json.dumps({"acao": "statusramais", **self.creds})
        self.open = o.pbx_rate > 0
        self.done = False
        self._last_start = 0.0
        if self.open:
            self._warm_up()

    def _warm_up(self) -> None:
        """Open this user's connection (TCP, TLS) before the schedule starts, with a GET the central
        answers Requisicao Invalida to (no credentials, no effect), outside Locust's stats: a first
        second of handshakes would otherwise read as the target's latency."""
        try:
            resp = self.client.client.urlopen(f"{self.host}/api.php", method="GET")
            resp.read()
            resp.release()
        except Exception:  # the measured requests will say what is wrong, once per kind
            pass

    # --- pacing -------------------------------------------------------------------------------

    def wait_time(self) -> float:
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
        intended = None
        if self.open:
            d = dispatcher()
            p = d.pacer
            intended = d.take()
            if intended is None:
                self.done = True
                return
            now = time.perf_counter()
            # late, and more slots already queued: no user was free when this one came due
            delay = -1.0 if now - intended > LATE_S and d.queue.qsize() else 0.0
            rel = max(now, intended) - p.start  # a slot sent a fraction of a tick early counts at its time
            recorder.sent(now - intended, p.schedule.ramp <= rel < p.schedule.duration, backlog=delay < -LATE_S)
        self._last_start = time.perf_counter()
        actions = self.actions
        (actions[0] if len(actions) == 1 else random.choice(actions))(intended)

    # --- actions ------------------------------------------------------------------------------

    def _post(self, name: str, body: str, intended: float | None, check: Callable[[bytes], str | None]) -> bytes | None:
        """The answer when it passed ``check``, else None (a failure in Locust's table)."""
        ctx = {"pbx_t0": intended} if intended is not None else {}
        with self.client.post(
            "/api.php", data=body, name=name, headers=_HEADERS, catch_response=True, context=ctx
        ) as resp:
            why = transport_error(resp)
            if why is None:
                try:
                    why = check(resp.content or b"")
                except Exception as exc:  # a malformed answer is a failure, not a dead user
                    why = f"answer not understood ({type(exc).__name__}): {(resp.content or b'')[:80]!r}"
            if why is not None:
                resp.failure(why)
                return None
            resp.success()
            return resp.content or b""

    def number(self) -> str:
        return str(self.first + int(random.random() * (self.last - self.first + 1))).zfill(self.width)

    def do_insert(self, intended: float | None) -> None:
        idcrm = unique("load")
        number = self.number()
        body = (
            f'{self._insert_head}, "idcrm": "{idcrm}", "cliente": "CARGA {idcrm}", '
            f'"ddd1": "{number[:2]}", "tel1": "{number[2:]}"}}'
        )
        if self._post("insert", body, intended, _check_insert) is not None:
            recorder.acked.append(idcrm)

    def do_clicktocall(self, intended: float | None) -> None:
        body = f'{self._c2c_head}, "origem": {self._next_origin()}, "destino": "{self.number()}"}}'
        raw = self._post("clicktocall", body, intended, _check_c2c)
        if raw is not None:  # its ID: the phones' rings are matched against it (loadkit.phones)
            end = raw.rindex(b'"')  # the ID is the answer's last string (checked by _check_c2c)
            recorder.calls.append(raw[raw.rindex(b'"', 0, end) + 1 : end].decode())

    def do_statusdiscador(self, intended: float | None) -> None:
        self._post("statusdiscador", self._listing_body, intended, _check_listing)

    def do_statusramais(self, intended: float | None) -> None:
        self._post("statusramais", self._ramais_body, intended, _check_ramais)


_cycles: dict[tuple[str, ...], Callable[[], str]] = {}


def _origin_cycle(origins: list[str]) -> Callable[[], str]:
    """The next origin (JSON-quoted), in turn over this process's users: with N origins every N
    click-to-calls ring each once (random picks would leave some unrung in a short run)."""
    key = tuple(origins)
    if key not in _cycles:
        _cycles[key] = itertools.cycle([json.dumps(o) for o in origins]).__next__
    return _cycles[key]


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
