"""The lenient scanner: compact names, folding, framing shared with the parser, and never a raise."""

from __future__ import annotations

import random
from pathlib import Path

from pbxcheck.sip.errors import SipParseError
from pbxcheck.sip.scan import scan, split_head
from pbxcheck.sip.validate import reject_unparseable

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "rfc4475"


def test_compact_names_folding_and_accessors() -> None:
    raw = scan(
        b"\r\n\r\nSIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\ni: abc@x\r\n"
        b"Subject: one\r\n  two\r\nCSeq: 7 INVITE\r\nc: application/sdp\r\nbroken line\r\n"
        b"Via: SIP/2.0/UDP b\r\n\r\nv=0\r\n"
    )
    assert raw.is_response and raw.status == 180 and raw.reason == "Ringing" and raw.method is None
    assert raw.headers_all("Via") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b"]
    assert raw.header("call-id") == raw.header("i") == "abc@x" == raw.call_id
    assert raw.header("Subject") == "one two"  # RFC 3261 7.3.1: folding is one SP
    assert raw.cseq_method == "INVITE" and raw.header("Content-Type") == "application/sdp"
    assert raw.body == b"v=0\r\n" and raw.complete


def test_request_line_and_cut_message() -> None:
    raw = scan(b"REGISTER sip:pbx SIP/2.0\nVia: SIP/2.0/UDP a\nTo: <sip:1@pbx>")
    assert raw.method == "REGISTER" and raw.uri == "sip:pbx" and not raw.complete
    assert raw.header("To") == "<sip:1@pbx>"


def test_never_raises_on_any_bytes() -> None:
    rng = random.Random(4475)
    alphabet = b'\r\n:; \t<>"\xff\x00abcSIP/2.0v'
    for _ in range(2000):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(60)))
        scan(data)
    for path in FIXTURES.glob("*.dat"):
        raw = scan(path.read_bytes())
        assert raw.start_line, path.name


def test_parser_and_scanner_agree_on_framing() -> None:
    assert split_head(b"\r\nA\r\nB: c\r\n\r\nbody") == (2, 9, 13)
    assert split_head(b"A\nB: c\n\nbody") == (0, 6, 8)
    assert split_head(b"A\r\nB: c\r\n") is None


def test_reject_unparseable_reads_through_the_scanner() -> None:
    data = (
        b"INVITE sip:x SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK9\r\n f: <sip:a@b>;tag=1\r\nf: <sip:a@b>;tag=1\r\n"
        b"t: <sip:x@y>\r\ni: cid\r\nCSeq: 1 INVITE\r\nContent-Length: 99\r\n\r\n"
    )
    out = reject_unparseable(data, SipParseError("Content-Length longer than the body"))
    assert out is not None
    assert out.startswith(b"SIP/2.0 400 Bad Request (Content-Length longer than the body)\r\n")
    assert b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK9" in out and b"Call-ID: cid" in out
