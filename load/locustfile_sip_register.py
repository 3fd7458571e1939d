"""SIP registration load: each Locust user is one extension that registers with digest over UDP.

A custom User (not HTTP): it runs the sans-IO core over the blocking driver, which gevent makes
cooperative, and fires Locust request events itself, so SIP shows in the same stats, thresholds and
distributed runs as the HTTP scenarios.
"""

from __future__ import annotations

import itertools
import secrets
import time

from common import target
from locust import User, between, task

from pbxcheck.sip.digest import Challenge, build_authorization
from pbxcheck.sip.drivers.blocking import BlockingUdp
from pbxcheck.sip.message import Request, Response, make_request, to_bytes
from pbxcheck.sip.parser import parse_message

_users = itertools.count()


class SipRegisterUser(User):
    wait_time = between(0, 0.01)  # registration throughput is the point: barely any think time

    def on_start(self) -> None:
        t = target()
        if not t.extensions:
            raise RuntimeError("the target lists no [[extensions]] to register")
        self.ext = t.extensions[next(_users) % len(t.extensions)]
        self.domain = t.sip_host
        self.uri = f"sip:{t.sip_host}:{t.sip_udp_port}"
        self.sock = BlockingUdp((t.sip_host, t.sip_udp_port), timeout=2.0)
        self.call_id = secrets.token_hex(12)
        self.cseq = itertools.count(1)
        self.tag = secrets.token_hex(6)

    def on_stop(self) -> None:
        self.sock.close()

    def _request(self, auth: str | None) -> Request:
        host, port = self.sock.local
        aor = f"<sip:{self.ext.number}@{self.domain}>"
        headers = [("Expires", "60")] + ([("Authorization", auth)] if auth else [])
        return make_request(
            "REGISTER", self.uri, from_=f"{aor};tag={self.tag}", to=aor, call_id=self.call_id,
            cseq=next(self.cseq), via=f"SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bK{secrets.token_hex(8)}",
            contact=f"<sip:{self.ext.number}@{host}:{port}>", headers=headers)

    def _exchange(self, req: Request) -> Response | None:
        self.sock.send(to_bytes(req))
        while True:
            data = self.sock.recv()
            if data is None:
                return None
            msg = parse_message(data)
            if isinstance(msg, Response) and msg.cseq.number == req.cseq.number and msg.status >= 200:
                return msg

    @task
    def register(self) -> None:
        started = time.perf_counter()
        exc: Exception | None = None
        try:
            first = self._exchange(self._request(None))
            if first is None or first.status != 401:
                raise RuntimeError(f"expected 401, got {first.status if first else 'no answer'}")
            challenge = Challenge.parse(first.headers.get("WWW-Authenticate") or "")
            auth = build_authorization(challenge, self.ext.number, self.ext.password, "REGISTER", self.uri)
            final = self._exchange(self._request(str(auth)))
            if final is None or final.status != 200:
                raise RuntimeError(f"expected 200, got {final.status if final else 'no answer'}")
        except Exception as e:  # any failure is a failed request in the stats, not a dead user
            exc = e
        self.environment.events.request.fire(
            request_type="SIP", name="REGISTER (digest)", response_time=(time.perf_counter() - started) * 1000,
            response_length=0, exception=exc, context={})
