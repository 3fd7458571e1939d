"""The two third-party peers checked against each other before either checks our code: baresip (a real
phone) registers with our Kamailio config over UDP and TCP, is refused with a wrong password, and two
baresip phones call each other through Kamailio. Also Kamailio's leak switch, with raw bytes."""

from __future__ import annotations

import secrets
import socket
import time

import pytest

from pbxcheck.peers import PeerError, require
from pbxcheck.peers.kamailio import KamailioProcess

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(30)]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_registers_with_kamailio(phone, transport):
    p = phone("2001", transport=transport)
    ev = p.wait_registered(timeout=8)
    assert ev.type == "REGISTER_OK"
    assert p.registered
    assert p.command("reginfo")  # the control channel answers commands too


def test_baresip_wrong_password_is_refused(phone):
    p = phone("2002", password="not-the-password")
    with pytest.raises(PeerError, match="failed to register: 401"):
        p.wait_registered(timeout=8)
    fails = [e for e in p.events if e.type == "REGISTER_FAIL"]
    assert fails and fails[0].param.startswith("401"), p.events
    assert not p.registered


@pytest.mark.parametrize(("caller_tp", "callee_tp"), [("udp", "tcp"), ("tcp", "udp")])
def test_two_baresip_phones_call_through_kamailio(phone, kamailio, caller_tp, callee_tp):
    callee = phone("2002", transport=callee_tp, auto_answer=True)
    caller = phone("5545", transport=caller_tp)
    callee.wait_registered(8)
    caller.wait_registered(8)

    caller.dial(f"sip:2002@{kamailio.host}:{kamailio.port}")
    incoming = callee.wait_incoming_call(8)
    assert incoming.peer and "5545" in incoming.peer
    out = caller.wait_established(8)
    callee.wait_established(8, call_id=incoming.call_id)
    assert out.call_id == incoming.call_id  # baresip's call id is the SIP Call-ID

    caller.hangup()
    assert caller.wait_closed(8).call_id == out.call_id
    closed = callee.wait_closed(8, call_id=incoming.call_id)
    assert closed.param and "peer" in closed.param  # the BYE came from the far end


def test_manual_answer_and_callee_hangs_up(phone, kamailio):
    callee = phone("2001", auto_answer=False)
    caller = phone("2002")
    callee.wait_registered(8)
    caller.wait_registered(8)
    caller.dial(kamailio.aor("2001"))
    assert callee.wait_incoming_call(8).type == "CALL_INCOMING"  # manual mode: baresip announces it
    caller.wait_event("CALL_RINGING", 8)
    time.sleep(0.2)
    callee.answer()
    caller.wait_established(8)
    callee.wait_established(8)
    callee.hangup()
    callee.wait_closed(8)
    assert "peer" in (caller.wait_closed(8).param or "")


def _register_status(kam: KamailioProcess, user: str) -> str:
    """Status line Kamailio gives a first, credential-less REGISTER for ``user`` (raw bytes, no parser)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((kam.host, 0))
        s.settimeout(3)
        lport = s.getsockname()[1]
        msg = (
            f"REGISTER sip:{kam.host}:{kam.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {kam.host}:{lport};branch=z9hG4bK-{secrets.token_hex(6)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{kam.host}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{user}@{kam.host}>\r\n"
            f"Call-ID: {secrets.token_hex(8)}\r\nCSeq: 1 REGISTER\r\n"
            f"Contact: <sip:{user}@{kam.host}:{lport}>\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n"
        )
        s.sendto(msg.encode(), (kam.host, kam.port))
        return s.recv(65535).split(b"\r\n", 1)[0].decode()


def test_kamailio_unknown_user_is_challenged_like_a_known_one(kamailio):
    assert _register_status(kamailio, "2001").startswith("SIP/2.0 401")
    assert _register_status(kamailio, "9" + secrets.token_hex(3)).startswith("SIP/2.0 401")


def test_kamailio_leak_switch_answers_404_for_unknown_users():
    require("kamailio")
    with KamailioProcess({"2001": "pw-2001"}, leak_extensions=True) as kam:
        assert _register_status(kam, "2001").startswith("SIP/2.0 401")
        assert _register_status(kam, "9" + secrets.token_hex(3)).startswith("SIP/2.0 404")


def test_unregistered_phone_is_not_found_then_registers_again(phone, kamailio):
    callee = phone("2002", transport="tcp", auto_answer=True)
    caller = phone("2001")
    callee.wait_registered(8)
    caller.wait_registered(8)
    callee.unregister()
    callee.wait_event("UNREGISTERING", 8)
    time.sleep(0.3)  # baresip sends the Expires-0 REGISTER after announcing it
    caller.dial(kamailio.aor("2002"))
    assert (caller.wait_closed(8).param or "").startswith("404")

    callee.register()
    callee.wait_registered(8)
    caller.dial(kamailio.aor("2002"))
    caller.wait_established(8)
    caller.hangup()
    callee.wait_closed(8)
