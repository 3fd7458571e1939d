"""SDP: the document's offer (with its garbled line), offer/answer per RFC 3264, round trips."""

from __future__ import annotations

import pytest

from pbxcheck.contract import RTP_PORT_RANGE
from pbxcheck.sip import samples
from pbxcheck.sip.errors import SdpError
from pbxcheck.sip.parser import parse_message
from pbxcheck.sip.sdp import Connection, make_answer, make_offer, parse_sdp, with_version


def test_document_offer_parses_and_reports_the_garbled_line() -> None:
    s = parse_sdp(parse_message(samples.INVITE).body)
    assert s.origin.sess_id == "3818509910" and s.name == "Intelbras"
    assert s.connection == Connection("IN", "IP4", "192.168.15.121")
    a = s.audio
    assert (a.port, a.proto, a.payloads) == (6000, "RTP/AVP", (18, 0, 8, 101))
    assert {pt: m.encoding for pt, m in a.rtpmaps.items()} == {18: "G729", 0: "PCMU", 8: "PCMA", 101: "telephone-event"}
    assert a.fmtp == {18: "annexb=no", 101: "0-15"} and a.telephone_event == 101 and a.direction == "sendrecv"
    assert a.ptime is None  # "aptime:20" is not an attribute
    assert s.anomalies == ("line 13: 'aptime:20' is not <type>=<value>; ignored",)
    # the second INVITE of the document: "a=time:20" is an unknown attribute, kept silently
    s2 = parse_sdp(parse_message(samples.INVITE_AUTH).body)
    assert s2.anomalies == () and s2.audio.ptime == 20


def test_answer_picks_first_offered_supported_codec_and_echoes_telephone_event() -> None:
    offer = parse_sdp(parse_message(samples.INVITE).body)
    ans = make_answer(offer, ip="203.0.113.5", rtp_port=10000)
    a = ans.audio
    assert a.payloads == (18, 101) and a.fmtp[18] == "annexb=no" and a.telephone_event == 101
    assert RTP_PORT_RANGE[0] <= a.port <= RTP_PORT_RANGE[1]
    assert ans.connection == Connection("IN", "IP4", "203.0.113.5")
    # our preference order does not override the offer's order (RFC 3264 6.1)
    assert make_answer(offer, (8, 0), ip="1.2.3.4", rtp_port=10000).audio.payloads == (0, 101)
    with pytest.raises(SdpError, match="no common codec"):
        make_answer(offer, (3,), ip="1.2.3.4", rtp_port=10000)


def test_answer_direction_rejected_streams_and_dynamic_payloads() -> None:
    offer = parse_sdp(
        "v=0\r\no=x 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        "m=video 5000 RTP/AVP 31\r\nm=audio 6000 RTP/AVP 96 97\r\na=rtpmap:96 opus/48000/2\r\n"
        "a=rtpmap:97 PCMA/8000\r\na=sendonly\r\nm=audio 7000 RTP/AVP 0\r\n"
    )
    ans = make_answer(offer, ip="10.0.0.9", rtp_port=12000)
    assert [(m.media, m.port) for m in ans.media] == [("video", 0), ("audio", 12000), ("audio", 0)]
    assert ans.media[1].payloads == (97,) and ans.media[1].direction == "recvonly"
    assert parse_sdp(ans.to_bytes()) == ans


def test_offer_defaults_round_trip() -> None:
    offer = make_offer("192.0.2.1", 10500)
    assert offer.audio.payloads == (18, 0, 8, 3, 101) and offer.audio.ptime == 20
    assert parse_sdp(offer.to_bytes()) == offer
    assert with_version(offer, 2).origin.sess_version == "2"
    v6 = make_offer("2001:db8::1", 10500, codecs=(0,), telephone_event=None, direction="inactive")
    assert v6.connection == Connection("IN", "IP6", "2001:db8::1") and v6.audio.direction == "inactive"


@pytest.mark.parametrize(
    "body, match",
    [
        ("o=x 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\n", "without v="),
        ("v=0\r\no=x 1 1 IN IP4 h\r\ns=-\r\n", "without m="),
        ("v=0\r\no=x 1\r\n", "6 fields"),
        ("v=0\r\no=x 1 1 IN IP4 h\r\nc=IN IP4\r\nm=audio 1 RTP/AVP 0\r\n", "c="),
        ("v=0\r\no=x 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n", "m="),
        ("v=0\r\no=x 1 1 IN IP4 h\r\nm=audio 99999 RTP/AVP 0\r\n", "port"),
        ("v=x\r\n", "v="),
    ],
)
def test_sdp_errors(body: str, match: str) -> None:
    with pytest.raises(SdpError, match=match):
        parse_sdp(body)


def test_unknown_line_types_are_kept_and_reported() -> None:
    s = parse_sdp("v=0\r\no=x 1 1 IN IP4 h\r\ns=-\r\nb=AS:64\r\nq=what\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n")
    assert ("b", "AS:64") in s.other and s.anomalies == ("line 5: unknown type 'q'; kept",)
    with pytest.raises(SdpError):
        _ = parse_sdp("v=0\r\no=x 1 1 IN IP4 h\r\nm=video 1 RTP/AVP 31\r\n").audio
