"""Dialer inserts: many users insert contacts into the target's disposable campaign.

`pbxcheck load dialer-insert` counts the campaign with statusdiscador before and after and fails the
run if any insert answered OK but is missing (nothing lost).
"""

from __future__ import annotations

import json

from common import credentials, ssl_context_factory, target, unique
from locust import task
from locust.contrib.fasthttp import FastHttpUser

from pbxcheck.contract import OK, STATUS


class DialerInsertUser(FastHttpUser):
    ssl_context_factory = staticmethod(ssl_context_factory)
    host = target().api_url

    @task
    def insert(self) -> None:
        body = {"acao": "insert", "idcampanha": target().disposable_campaign, **credentials(),
                "idcrm": unique("load"), "cliente": "CARGA TESTE", "cpf": "52998224725",
                "ddd1": "11", "tel1": "41187770"}
        with self.client.post("/api.php", data=json.dumps(body), name="insert",
                              headers={"Content-Type": "application/json"}, catch_response=True) as resp:
            try:
                ok = resp.json() == [STATUS, OK]
            except ValueError:
                ok = False
            if not ok:
                resp.failure(f"answer {resp.text[:80]!r}")
