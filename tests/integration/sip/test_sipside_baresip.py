"""A real phone against the reference central (issue 4, "Done when"): baresip registers over UDP and
over TCP, is rung by a click-to-call, answers, talks, hangs up; it also calls out through the central.
Skipped only outside CI when baresip is missing (``pbxcheck.peers.require``)."""

from __future__ import annotations

import time

import pytest
from sip_harness import SipCentral

from pbxcheck.client import ApiClient
from pbxcheck.peers import require
from pbxcheck.peers.baresip import BaresipPhone

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(60)]


def _ramal(api: ApiClient, ext: str) -> dict[str, str]:
    return next(r for r in api.call("statusramais").value if r["Ramal"] == ext)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_registers_and_is_rung_by_clicktocall(sip_central: SipCentral, transport: str):
    require("baresip")
    t = sip_central.target
    ext = t.extension("2001")
    port = t.sip_udp_port if transport == "udp" else t.sip_tcp_port
    with (
        BaresipPhone("2001", ext.password, t.sip_host, port, transport=transport, auto_answer=True) as phone,
        ApiClient(t) as api,
    ):
        phone.wait_registered(10)
        assert sip_central.registered("2001")
        assert _ramal(api, "2001")["Status"] == "Not in use"
        status, ok, _, c2c_id = api.call("clicktocall", origem="2001", destino="41187777").value
        assert (status, ok) == ("Status", "CHAMADA OK")
        phone.wait_incoming_call(10)  # C2C-2: the origin rings
        phone.wait_established(10)  # baresip answered (auto-answer): the central completes to destino
        deadline = time.monotonic() + 5
        while _ramal(api, "2001")["StatusCanal"] != "Up" and time.monotonic() < deadline:
            time.sleep(0.1)
        r = _ramal(api, "2001")
        assert (r["Status"], r["StatusCanal"], r["Direcao"], r["Callerid"]) == ("In use", "Up", "SAIDA", "41187777")
        time.sleep(1.0)
        phone.hangup()
        phone.wait_closed(10)
        deadline = time.monotonic() + 5
        rec = None
        while rec is None and time.monotonic() < deadline:
            rec = sip_central.call(lambda: sip_central.side.store.call_by_clicktocall(c2c_id))
            time.sleep(0.1)
        assert rec is not None and rec["statuschamada"] == "ANSWER" and int(rec["duracao"]) >= 1
        assert api.recording(rec["gravacao"]).status_code == 200
    # baresip unregisters when it quits
    deadline = time.monotonic() + 5
    while sip_central.registered("2001") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sip_central.registered("2001")


def test_baresip_calls_out_through_the_central(sip_central: SipCentral):
    require("baresip")
    t = sip_central.target
    ext = t.extension("5545")
    with BaresipPhone("5545", ext.password, t.sip_host, t.sip_udp_port, transport="udp") as phone:
        phone.wait_registered(10)
        phone.dial(f"sip:944511712@{t.sip_host}:{t.sip_udp_port}")  # 401, ACK, INVITE+auth, 100, 183, 200
        phone.wait_established(10)
        phone.hangup()
        phone.wait_closed(10)
