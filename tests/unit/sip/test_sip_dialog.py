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
    ok = make_response(
        inv,
        200,
        to_tag="srv1",
        headers=[
            ("Record-Route", "<sip:p1.example;lr>, <sip:p2.example;lr>"),
            ("Contact", "<sip:944511712@203.0.113.9:7048>"),
        ],
    )
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
    ringing = make_response(
        inv,
        183,
        to_tag="srv1",
        headers=[("Record-Route", "<sip:early.example;lr>"), ("Contact", "<sip:x@198.51.100.1>")],
    )
    d = Dialog.uac(inv, ringing)
    assert d.state == "early" and d.route_set == ("<sip:early.example;lr>",)
    ok = make_response(
        inv,
        200,
        to_tag="srv1",
        headers=[("Record-Route", "<sip:a;lr>, <sip:b;lr>"), ("Contact", "<sip:x@198.51.100.2>")],
    )
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
    assert (
        d.route_set == ("<sip:edge.example;lr>",) and d.remote_target == "sip:6961@192.168.15.121:60185;transport=udp"
    )
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
    ok = make_response(
        inv,
        200,
        to_tag="t",
        headers=[
            ("Record-Route", "<sip:loose.example;lr>, <sip:strict.example>"),
            ("Contact", "<sip:target@203.0.113.7>"),
        ],
    )
    d = Dialog.uac(inv, ok)
    _, bye = d.make_request_in_dialog("BYE", via=VIA)
    assert bye.uri == "sip:strict.example"
    assert bye.headers.get_all("Route") == ["<sip:loose.example;lr>", "<sip:target@203.0.113.7>"]


def test_incoming_requests_update_remote_seq_and_target() -> None:
    inv = _invite()
    d = Dialog.uas(inv, make_response(inv, 200, to_tag="me"))
    reinv = Request(
        "INVITE", "sip:me", inv.headers.with_("CSeq", "14545 INVITE").with_("Contact", "<sip:moved@192.0.2.50>")
    )
    d2 = d.on_request(reinv)
    assert d2.remote_seq == 14545 and d2.remote_target == "sip:moved@192.0.2.50"
    ack = Request("ACK", "sip:me", inv.headers.with_("CSeq", "14545 ACK"))
    assert d2.on_request(ack) is d2
    with pytest.raises(TransactionError, match="500"):
        d2.on_request(reinv)
    assert not d.matches(Request("BYE", "sip:x"))  # no headers: not ours, no exception


def test_outgoing_dialog_builds_its_invite_and_follows_the_responses() -> None:
    from pbxcheck.sip.dialog import DialogState
    from pbxcheck.sip.headers import NameAddr

    me, them = NameAddr.parse("<sip:2001@pbx.example>"), NameAddr.parse("<sip:2002@pbx.example>")
    d = Dialog.outgoing(
        call_id="c1",
        local_uri=me,
        local_tag="lt",
        remote_uri=them,
        local_seq=9,
        local_contact="<sip:2001@10.0.0.1:5060>",
    )
    assert d.state is DialogState.INITIAL and d.remote_tag == ""
    d, inv = d.make_request_in_dialog("INVITE", via=VIA, body=b"v=0\r\n", content_type="application/sdp")
    assert (inv.uri, inv.cseq, inv.to.tag, inv.from_.tag) == ("sip:2002@pbx.example", (10, "INVITE"), None, "lt")
    assert inv.headers.get("Contact") == "<sip:2001@10.0.0.1:5060>" and inv.content_type == "application/sdp"
    d, retry = d.make_request_in_dialog("INVITE", via=VIA)  # after a 401: same Call-ID and tag, next CSeq
    assert retry.cseq == (11, "INVITE") and retry.call_id == "c1" and d.state is DialogState.INITIAL
    assert d.on_response(make_response(retry, 100)) is d
    early = d.on_response(make_response(retry, 180, to_tag="rt", headers=[("Contact", "<sip:2002@10.0.0.2>")]))
    assert early.state is DialogState.EARLY and early.remote_tag == "rt" and early.remote_target == "sip:2002@10.0.0.2"
    ok = make_response(
        retry,
        200,
        to_tag="rt",
        headers=[("Contact", "<sip:2002@10.0.0.3>"), ("Record-Route", "<sip:a;lr>, <sip:b;lr>")],
    )
    up = early.on_response(ok)
    assert up.state is DialogState.CONFIRMED and up.route_set == ("<sip:b;lr>", "<sip:a;lr>")
    up, ack = up.make_request_in_dialog("ACK", via=VIA)
    assert ack.cseq == (11, "ACK") and ack.uri == "sip:2002@10.0.0.3" and ack.to.tag == "rt"
    up, bye = up.make_request_in_dialog("BYE", via=VIA)
    assert bye.cseq == (12, "BYE") and bye.headers.get("Contact") is None
    assert up.on_response(make_response(bye, 481)).state is DialogState.TERMINATED
    assert up.on_response(make_response(bye, 200)).state is DialogState.CONFIRMED
    assert d.on_response(make_response(retry, 486, to_tag="rt")).state is DialogState.TERMINATED
    assert d.on_response(ok).state is DialogState.CONFIRMED  # a 2xx without a 1xx before it


def test_incoming_dialog_early_until_our_2xx() -> None:
    from pbxcheck.sip.dialog import DialogState

    inv = _invite()
    d = Dialog.incoming(inv, "me", local_contact="<sip:6961@10.1.1.1>")
    assert d.state is DialogState.EARLY and d.state == "early" and d.id == (inv.call_id, "me", inv.from_.tag)
    assert d.confirm().state is DialogState.CONFIRMED and d.confirm().confirm() == d.confirm()
    assert d.terminate().state is DialogState.TERMINATED
    d2, reinv = d.confirm().make_request_in_dialog("INVITE", via=VIA)
    assert reinv.headers.get("Contact") == "<sip:6961@10.1.1.1>" and d2.invite_seq == 1
    assert Dialog.uas(inv, make_response(inv, 180, to_tag="me")).state is DialogState.EARLY
