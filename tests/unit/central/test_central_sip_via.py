"""The central's RFC 3581 / RFC 3261 §18.2.1 Via stamping (``central.sip.service.answered_as``)."""

from __future__ import annotations

from pbxcheck.central.sip.service import answer_vias, answered_as
from pbxcheck.sip.drivers.base import Flow
from pbxcheck.sip.message import make_response
from pbxcheck.sip.parser import parse_message


def _req(via: str) -> bytes:
    return (
        f"OPTIONS sip:7048@127.0.0.1 SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKprev\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:2001@127.0.0.1>;tag=a\r\nTo: <sip:7048@127.0.0.1>\r\n"
        "Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _flow(ip: str = "127.0.0.1", port: int = 40000) -> Flow:
    return Flow("UDP", ("127.0.0.1", 7048), (ip, port), lambda data: None)


def test_same_host_no_rport_is_left_alone():
    req = parse_message(_req("SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKa"))
    assert answered_as(req, _flow()) is req  # type: ignore[arg-type]


def test_empty_rport_gets_value_and_received_even_when_host_matches():
    req = parse_message(_req("SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKa"))
    out = answered_as(req, _flow(port=40001))  # type: ignore[arg-type]
    resp = make_response(out, 200, to_tag="t")
    vias = resp.headers.get_all("Via")
    assert len(vias) == 2 and vias[1] == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKprev"
    top = resp.top_via
    assert (top.branch, top.received, top.rport) == ("z9hG4bKa", "127.0.0.1", 40001)
    assert answered_as(req, _flow(port=40001)) is out  # type: ignore[arg-type]  # memoised


def test_name_or_other_ip_gets_received_and_a_given_rport_is_kept():
    for host in ("phone.example", "192.0.2.9"):
        req = parse_message(_req(f"SIP/2.0/UDP {host}:5060;rport=5060;branch=z9hG4bKa"))
        top = make_response(answered_as(req, _flow()), 200).top_via  # type: ignore[arg-type]
        assert (top.host, top.received, top.rport) == (host, "127.0.0.1", 5060)


def test_answer_vias_give_the_same_answer_as_answered_as_without_a_second_request():
    for via in (
        "SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKa",
        "SIP/2.0/UDP phone.example:5060;rport=5060;branch=z9hG4bKa",
        "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKa",
        "SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb",
    ):
        req = parse_message(_req(via))
        vias = answer_vias(req, _flow(port=40001))  # type: ignore[arg-type]
        direct = make_response(req, 200, to_tag="t", via=vias)
        assert direct.headers.items == make_response(answered_as(req, _flow(port=40001)), 200, to_tag="t").headers.items  # type: ignore[arg-type]
        assert (vias is None) == (via.endswith(":40000;branch=z9hG4bKa"))
