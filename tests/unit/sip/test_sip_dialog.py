"""Dialogs (RFC 3261 12): creation on both sides, route sets, CSeq, in-dialog ACK/BYE."""

from __future__ import annotations

import pytest

from pbxcheck.sip import samples
from pbxcheck.sip.dialog import Dialog, new_tag
from pbxcheck.sip.errors import TransactionError
from pbxcheck.sip.message import Request, Response, make_response
from pbxcheck.sip.parser import parse_message

VIA = "SIP/2.0/UDP 192.168.15.121:5060;rport"


def _invite() -> Request:
    m = parse_message(samples.INVITE)
    assert isinstance(m, Request)
    return m


def test_uac_dialog_from_2xx_and_in_dialog_ack_bye() -> None:
    inv = _invite()
    ok = make_response(inv, 200, to_tag="srv1", headers=[
        ("Record-Route", "<sip:p1.example;lr>, <sip:p2.example;lr>"), ("Contact", "<sip:944511712@203.0.113.9:7048>")])
    d = Dialog.uac(inv, ok)
    assert d.id == (inv.call_id, "Uk8TfV1EBRsHU0fEDiZaoaFHzCtMuznZ", "srv1") and d.state == "confirmed"
    assert d.route_set == ("<sip:p2.example;lr>", "<sip:p1.example;lr>")  # reversed (12.1.2)
    assert d.remote_target == "sip:944511712@203.0.113.9:7048" and d.local_seq == 14544
    d2, ack = d.make_request_in_dialog("ACK", via=VIA)
    assert d2 == d  # ACK does not consume a CSeq number
    assert (ack.method, ack.uri, ack.cseq) == ("ACK", d.remote_target, (14544, "ACK"))
    assert ack.headers.get_all("Route") == list(d.route_set)
    assert ack.to.tag == "srv1" and ack.from_.tag == d.local_tag and ack.from_.display == "RAMAL - 6961"
    assert ack.branch is not None and ack.branch.startswith("z9hG4bK") and ack.branch != inv.branch
    d3, bye = d2.make_request_in_dialog("BYE", via=VIA)
    assert bye.cseq == (14545, "BYE") and d3.local_seq == 14545 and bye.branch != ack.branch
    reply = make_response(bye, 200)
    forked = Response(200, "OK", reply.headers.with_("To", str(bye.to.with_tag("other"))))
    assert d.matches(reply) and not d.matches(forked)
    assert "Contact" not in bye.headers
    d4, reinvite = d3.make_request_in_dialog("INVITE", via=VIA, body=b"v=0\r\n", content_type="application/sdp")
    assert reinvite.cseq == (14546, "INVITE") and d4.invite_seq == 14546 and reinvite.headers.get("Contact")
    assert d4.make_request_in_dialog("ACK", via=VIA)[1].cseq == (14546, "ACK")


def test_early_dialog_confirmed_by_2xx_recomputes_route_set() -> None:
    inv = _invite()
    ringing = make_response(inv, 183, to_tag="srv1", headers=[("Record-Route", "<sip:early.example;lr>"),
                                                               ("Contact", "<sip:x@198.51.100.1>")])
    d = Dialog.uac(inv, ringing)
    assert d.state == "early" and d.route_set == ("<sip:early.example;lr>",)
    ok = make_response(inv, 200, to_tag="srv1", headers=[("Record-Route", "<sip:a;lr>, <sip:b;lr>"),
                                                         ("Contact", "<sip:x@198.51.100.2>")])
    c = d.on_response(ok)
    assert c.state == "confirmed" and c.route_set == ("<sip:b;lr>", "<sip:a;lr>")
    assert c.remote_target == "sip:x@198.51.100.2"
    assert c.on_response(make_response(inv, 486)) is c
    with pytest.raises(TransactionError):
        Dialog.uac(inv, make_response(inv, 180))  # no To tag: no dialog
    with pytest.raises(TransactionError):
        Dialog.uac(inv, make_response(inv, 486, to_tag="t"))


def test_uas_dialog_and_bye_towards_the_caller() -> None:
    base = _invite()
    inv = Request("INVITE", base.uri, base.headers.add("Record-Route", "<sip:edge.example;lr>"), base.body)
    tag = new_tag()
    ok = make_response(inv, 200, to_tag=tag, headers=[("Contact", "<sip:944511712@10.1.1.1:7048>")])
    d = Dialog.uas(inv, ok)
    assert d.id == (inv.call_id, tag, inv.from_.tag) and d.remote_seq == 14544 and d.local_seq is None
    assert d.route_set == ("<sip:edge.example;lr>",) and d.remote_target == "sip:6961@192.168.15.121:60185;transport=udp"
    d2, bye = d.make_request_in_dialog("BYE", via="SIP/2.0/UDP 10.1.1.1:7048")
    assert bye.uri == d.remote_target and bye.cseq == (1, "BYE") and d2.local_seq == 1
    assert bye.from_.tag == tag and bye.to.tag == inv.from_.tag and bye.to.display == "RAMAL - 6961"
    from_peer = Request("BYE", "sip:x", bye.headers.with_("From", str(bye.to)).with_("To", str(bye.from_)))
    assert d.matches(from_peer) and not d.matches(bye)
    with pytest.raises(TransactionError):
        d.make_request_in_dialog("ACK", via=VIA)  # we sent no INVITE in this dialog
    with pytest.raises(TransactionError):
        Dialog.uas(inv, make_response(inv, 200))


def test_strict_route_first_hop() -> None:
    inv = _invite()
    ok = make_response(inv, 200, to_tag="t", headers=[("Record-Route", "<sip:loose.example;lr>, <sip:strict.example>"),
                                                      ("Contact", "<sip:target@203.0.113.7>")])
    d = Dialog.uac(inv, ok)
    _, bye = d.make_request_in_dialog("BYE", via=VIA)
    assert bye.uri == "sip:strict.example"
    assert bye.headers.get_all("Route") == ["<sip:loose.example;lr>", "<sip:target@203.0.113.7>"]


def test_incoming_requests_update_remote_seq_and_target() -> None:
    inv = _invite()
    d = Dialog.uas(inv, make_response(inv, 200, to_tag="me"))
    reinv = Request("INVITE", "sip:me", inv.headers.with_("CSeq", "14545 INVITE").with_("Contact", "<sip:moved@192.0.2.50>"))
    d2 = d.on_request(reinv)
    assert d2.remote_seq == 14545 and d2.remote_target == "sip:moved@192.0.2.50"
    ack = Request("ACK", "sip:me", inv.headers.with_("CSeq", "14545 ACK"))
    assert d2.on_request(ack) is d2
    with pytest.raises(TransactionError, match="500"):
        d2.on_request(reinv)
    assert not d.matches(Request("BYE", "sip:x"))  # no headers: not ours, no exception
