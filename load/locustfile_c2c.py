"""Concurrent click-to-call: users place clicktocall requests from the target's extensions."""

from __future__ import annotations

import json
import random
import re

from common import credentials, ssl_context_factory, target
from locust import task
from locust.contrib.fasthttp import FastHttpUser

from pbxcheck.contract import CHAMADA_OK, STATUS

_ID = re.compile(r"^\d+_\d{14}_\d+$")


class ClickToCallUser(FastHttpUser):
    ssl_context_factory = staticmethod(ssl_context_factory)
    host = target().api_url

    @task
    def clicktocall(self) -> None:
        origem = random.choice([e.number for e in target().extensions] or ["2001"])
        body = {"acao": "clicktocall", **credentials(), "origem": origem,
                "destino": f"4118{random.randint(0, 9999):04d}"}
        with self.client.post("/api.php", data=json.dumps(body), name="clicktocall",
                              headers={"Content-Type": "application/json"}, catch_response=True) as resp:
            try:
                answer = resp.json()
            except ValueError:
                answer = None
            if not (isinstance(answer, list) and answer[:2] == [STATUS, CHAMADA_OK]
                    and len(answer) == 4 and _ID.match(str(answer[3]))):
                resp.failure(f"answer {resp.text[:80]!r}")
