"""uas_precheck beyond the RFC 4475 files: order of checks, exemptions, options."""

from __future__ import annotations

from pbxcheck.sip import samples
from pbxcheck.sip.errors import BadStartLine
from pbxcheck.sip.message import Request
from pbxcheck.sip.parser import parse_message
from pbxcheck.sip.validate import reject_unparseable, uas_precheck


def _invite(**changes: str) -> Request:
    m = parse_message(samples.INVITE)
    assert isinstance(m, Request)
    h = m.headers
    for name, value in changes.items():
        name = name.replace("_", "-")
        h = h.without(name) if value == "" else h.with_(name, value)
    return Request(m.method, m.uri, h, m.body)


def test_document_messages_pass() -> None:
    for data in (samples.REGISTER, samples.INVITE, samples.INVITE_AUTH, samples.WS_REGISTER):
        m = parse_message(data)
        assert isinstance(m, Request) and uas_precheck(m) is None


def test_require_supported_and_ack_exemption() -> None:
    assert uas_precheck(_invite(Require="replaces")) is None
    r = uas_precheck(_invite(Require="100rel, foo"), supported=("foo",))
    assert r is not None and r.status == 420 and r.headers == (("Unsupported", "100rel"),)
    ack = _invite(Require="100rel", CSeq="14544 ACK")
    assert uas_precheck(Request("ACK", ack.uri, ack.headers)) is None  # RFC 3261 8.2.2.3: not for ACK


def test_accept_wildcards_and_body_types() -> None:
    assert uas_precheck(_invite(Accept="application/*")) is None
    assert uas_precheck(_invite(Accept="*/*, text/html")) is None
    r = uas_precheck(_invite(Accept="text/html"))
    assert r is not None and r.status == 406
    assert uas_precheck(_invite(Content_Type="text/plain"), accept=("text/plain",)) is None
    r = uas_precheck(_invite(Content_Encoding="gzip"))
    assert r is not None and r.status == 415 and r.why == "Content-Encoding"


def test_max_forwards_and_missing_via() -> None:
    r = uas_precheck(_invite(Max_Forwards="0"))
    assert r is not None and (r.status, r.reason) == (483, "Too Many Hops")
    assert uas_precheck(_invite(Max_Forwards="")) is None  # RFC 2543 peers omit it
    r = uas_precheck(_invite(Via=""))
    assert r is not None and r.status == 400 and r.why == "missing Via"


def test_reject_unparseable_needs_a_request_with_via() -> None:
    err = BadStartLine("x", "y")
    assert reject_unparseable(b"garbage", err) is None
    assert reject_unparseable(b"OPTIONS sip:a SIP/2.0\r\nTo: <sip:a>\r\n\r\n", err) is None
    out = reject_unparseable(
        b"\r\nOPTIONS sip:a SIP/2.0\r\nv: SIP/2.0/UDP h\r\nFoo: \xff\r\n\r\n", BadStartLine("bad \x01", "")
    )
    assert out is not None and out.startswith(b"SIP/2.0 400 Bad Request (bad ?)\r\nVia: SIP/2.0/UDP h\r\n")
