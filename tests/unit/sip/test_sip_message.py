"""Message model: Headers API, parsed properties, make_request/make_response, serialisation."""

from __future__ import annotations

import pytest

from pbxcheck.sip import samples
from pbxcheck.sip.errors import BadNameAddr, BadUri, BadVia, MissingHeader
from pbxcheck.sip.headers import AbsoluteUri, CSeq, NameAddr, SipUri, Via, parse_auth_params
from pbxcheck.sip.message import Headers, Request, Response, make_request, make_response, to_bytes
from pbxcheck.sip.parser import parse_message


def test_headers_canonical_names_and_compact_forms() -> None:
    h = Headers((("v", "SIP/2.0/UDP a"), ("call-id", "x"), ("CSEQ", "1 OPTIONS"), ("X-Foo", "1"), ("l", "0")))
    assert [n for n, _ in h] == ["Via", "Call-ID", "CSeq", "X-Foo", "Content-Length"]
    assert h.get("i") == "x" and h.get("CALL-ID") == "x" and h.get("x-foo") == "1"
    assert "Via" in h and "v" in h and "Route" not in h
    assert h.get("Route") is None and h.get("Route", "d") == "d"


def test_headers_get_all_splits_only_list_headers_outside_quotes_and_brackets() -> None:
    h = Headers(
        (
            ("Contact", '"Doe, J" <sip:a@b;x=1,2>;q=0.5, <sip:c@d>'),
            ("Contact", "sip:e@f"),
            ("Allow", "INVITE, ACK,BYE"),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("Authorization", 'Digest a="1", b="2"'),
        )
    )
    assert h.get_all("m") == ['"Doe, J" <sip:a@b;x=1,2>;q=0.5', "<sip:c@d>", "sip:e@f"]
    assert h.get_all("Allow") == ["INVITE", "ACK", "BYE"]
    assert h.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert h.get_all("Authorization") == ['Digest a="1", b="2"']


def test_headers_with_without_add() -> None:
    h = Headers((("Via", "1"), ("To", "t"), ("Via", "2")))
    assert h.with_("via", "3").items == (("Via", "3"), ("To", "t"))
    assert h.with_("Route", "<sip:r>").items[-1] == ("Route", "<sip:r>")
    assert h.without("v").items == (("To", "t"),)
    assert h.add("Via", "0", first=True).items[0] == ("Via", "0")
    assert h.add("Via", "9").items[-1] == ("Via", "9")
    assert h.items == (("Via", "1"), ("To", "t"), ("Via", "2"))  # unchanged: frozen


def test_sip_uri_parse_and_str() -> None:
    u = SipUri.parse("sip:alice:secret@Example.COM:5070;transport=TCP;lr?subject=hi&x=")
    assert (u.scheme, u.user, u.password, u.host, u.port) == ("sip", "alice", "secret", "Example.COM", 5070)
    assert u.params == (("transport", "TCP"), ("lr", None)) and u.transport == "tcp" and u.has_param("LR")
    assert u.headers == (("subject", "hi"), ("x", ""))
    assert str(u) == "sip:alice:secret@Example.COM:5070;transport=TCP;lr?subject=hi&x="
    assert SipUri.parse("SIPS:[2001:db8::1]:5061").host == "[2001:db8::1]"
    assert str(SipUri.parse("sip:h").with_params(lr=None, transport="udp")) == "sip:h;lr;transport=udp"
    for bad in ("sip:", "sip:a b@c", "sip:a@", "sip:h:99999", "sip:h;;", "http://x", "sip:a@b@c", "sip:h?x"):
        with pytest.raises(BadUri):
            SipUri.parse(bad)


def test_absolute_uri() -> None:
    assert AbsoluteUri.parse("tel:+5511999") == AbsoluteUri("tel", "+5511999")
    with pytest.raises(BadUri):
        AbsoluteUri.parse("<sip:a@b>")


@pytest.mark.parametrize(
    "text, display, uri, tag",
    [
        ('"A \\"B\\"" <sip:a@b>;tag=1', 'A "B"', "sip:a@b", "1"),
        ("Bob <sip:b@c;lr>;tag=x;foo", "Bob", "sip:b@c;lr", "x"),
        ("<sip:b@c>", None, "sip:b@c", None),
        ("sip:b@c;tag=9", None, "sip:b@c", "9"),
        ("caller<sip:caller@example.com>;tag=323", "caller", "sip:caller@example.com", "323"),
        ("tel:+551199", None, "tel:+551199", None),
        ('  "x"   < sip:a@b >  ; tag = 7', "x", "sip:a@b", "7"),
    ],
)
def test_name_addr(text: str, display: str | None, uri: str, tag: str | None) -> None:
    na = NameAddr.parse(text)
    assert (na.display, str(na.uri), na.tag) == (display, uri, tag)
    assert NameAddr.parse(str(na)) == na


@pytest.mark.parametrize(
    "text", ['"open <sip:a@b>', "Bell, Alex <sip:a@b>", "sip:a@b?x=y", "<sip:a@b", "<sip:a@b>;;", ""]
)
def test_name_addr_rejects(text: str) -> None:
    with pytest.raises(BadNameAddr):
        NameAddr.parse(text)


def test_via() -> None:
    v = Via.parse("SIP / 2.0 / udp  10.0.0.1 : 5060 ; branch = z9hG4bKabc;rport;received=1.2.3.4")
    assert (v.transport, v.host, v.port, v.branch, v.has_rport, v.rport, v.received) == (
        "UDP",
        "10.0.0.1",
        5060,
        "z9hG4bKabc",
        True,
        None,
        "1.2.3.4",
    )
    assert str(v) == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport;received=1.2.3.4"
    assert v.with_param("rport", "4000").rport == 4000
    assert v.rfc3261_branch and not Via.parse("SIP/2.0/UDP h;branch=z9hG4bK").rfc3261_branch
    v6 = Via.parse("SIP/2.0/TCP [2001:db8::9]:5060;branch=z9hG4bKx;received=2001:db8::1;rport=5060")
    assert (v6.host, v6.port, v6.received, v6.rport) == ("[2001:db8::9]", 5060, "2001:db8::1", 5060)
    for bad in ("SIP/2.0/UDP", "SIP/2.0 h", "SIP/2.0/UDP h;;", "SIP/2.0/UDP h:70000"):
        with pytest.raises(BadVia):
            Via.parse(bad)


def test_cseq_and_auth_params() -> None:
    assert CSeq.parse("  0009   INVITE ") == (9, "INVITE")
    n, m = CSeq.parse("1 REGISTER")
    assert (n, m) == (1, "REGISTER") and str(CSeq(2, "BYE")) == "2 BYE"
    scheme, p = parse_auth_params('Digest username="6961", realm="xhand", qop=auth, nc=00000001, uri=sip:a@b')
    assert scheme == "Digest" and p == {
        "username": "6961",
        "realm": "xhand",
        "qop": "auth",
        "nc": "00000001",
        "uri": "sip:a@b",
    }


def test_message_properties_from_document_register() -> None:
    m = parse_message(samples.REGISTER)
    assert isinstance(m, Request) and m.method == "REGISTER"
    assert m.sip_uri.host == "widecloud.intelbras.com.br" and m.sip_uri.port == 7048
    assert m.call_id == "pqCa151br258ne2EFAMi8VTicQXSwYp1O2J9"
    assert m.cseq == (57949, "REGISTER")
    assert m.branch == "z9hG4bKPjHbA6rc23vG1pyCdRRKXNzI0hJYMTWlmSp" and m.top_via.port == 32670
    assert m.from_.tag == "wzBPCjLkJpGUxEIEkwrQgUHg6wfnek0YhAxx" and m.to.tag is None
    assert m.expires == 90 and m.max_forwards == 70
    assert m.contact is not None and m.contact.sip_uri.port == 32670
    assert m.contact.param("+sip.instance") == "<urn:uuid:80:8f:e8:64:d3>"
    assert "SUBSCRIBE" in m.header_list("Allow")


def test_message_properties_from_document_invite() -> None:
    m = parse_message(samples.INVITE)
    assert isinstance(m, Request)
    assert m.from_.display == "RAMAL - 6961" and m.content_type == "application/sdp"
    assert m.body.startswith(b"v=0\r\n") and len(m.body) == int(m.headers.get("Content-Length") or 0)


def test_missing_header_properties() -> None:
    r = Request("OPTIONS", "sip:a@b")
    for attr in ("call_id", "cseq", "from_", "to", "top_via"):
        with pytest.raises(MissingHeader):
            getattr(r, attr)
    assert r.via == () and r.branch is None and r.contact is None and r.expires is None


def test_make_request_and_response_copy_rfc3261_8_2_6() -> None:
    req = make_request(
        "INVITE",
        SipUri.parse("sip:100@pbx"),
        from_=NameAddr(None, SipUri.parse("sip:200@pbx"), (("tag", "a"),)),
        to="<sip:100@pbx>",
        call_id="c1",
        cseq=7,
        via="SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKx;rport",
        contact="<sip:200@10.0.0.2:5062>",
        headers=[("Via", "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKy"), ("Timestamp", "54")],
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    assert [v.branch for v in req.via] == ["z9hG4bKx", "z9hG4bKy"]
    wire = to_bytes(req)
    assert wire.endswith(b"Content-Length: 5\r\n\r\nv=0\r\n")
    again = parse_message(wire)
    assert again.headers.without("Content-Length") == req.headers and again.body == req.body
    resp = make_response(req, 180, to_tag="xyz")
    assert isinstance(resp, Response) and resp.reason == "Ringing" and resp.provisional
    assert resp.headers.get_raw("Via") == req.headers.get_raw("Via")
    assert resp.to.tag == "xyz" and resp.from_ == req.from_ and resp.call_id == "c1" and resp.cseq == (7, "INVITE")
    assert "Timestamp" not in resp.headers and make_response(req, 100).headers.get("Timestamp") == "54"
    tagged = make_response(req, 200, to_tag="xyz")
    assert make_response(Request(req.method, req.uri, tagged.headers), 200, to_tag="other").to.tag == "xyz"
    assert make_response(req, 599).reason == "Unknown" and make_response(req, 404, "Nope").reason == "Nope"


@pytest.mark.parametrize("name", ["REGISTER", "INVITE", "INVITE_AUTH", "WS_REGISTER"])
def test_round_trip_document_examples(name: str) -> None:
    data = getattr(samples, name)
    m = parse_message(data)
    assert to_bytes(m) == data  # already canonical: byte-identical
    assert parse_message(to_bytes(m)) == m


def test_round_trip_normalises_compact_and_folded() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:x@y>\r\n ;tag=1\r\n"
        b"t: sip:a@b\r\ni: c\r\ncseq: 1\r\n\tOPTIONS\r\nl: 0\r\n\r\n"
    )
    m = parse_message(data)
    assert m.from_.tag == "1" and m.cseq == (1, "OPTIONS")
    out = to_bytes(m)
    assert b"\r\nFrom: <sip:x@y> ;tag=1\r\n" in out and b"\r\nCSeq: 1 OPTIONS\r\n" in out and b"Call-ID: c" in out
    assert parse_message(out) == m


def test_str_of_message_is_wire_text() -> None:
    m = parse_message(samples.REGISTER)
    assert str(m).startswith("REGISTER sip:widecloud")
