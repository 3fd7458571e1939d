"""The message log and its ladder diagram (no network: entries are recorded by hand)."""

from __future__ import annotations

from pbxcheck.sip.ladder import IN, OUT, MessageLog, render_ladder
from pbxcheck.sip.samples import INVITE, REGISTER

UA = ("192.168.15.121", 5060)
CENTRAL = ("131.196.224.38", 7048)

RESP_401 = (
    b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\nCall-ID: abc\r\n"
    b"CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
)
RESP_183 = (
    b"SIP/2.0 183 Session Progress\r\nCall-ID: abc\r\nCSeq: 2 INVITE\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: 5\r\n\r\nv=0\r\n"
)


def clock_from(times: list[float]):
    it = iter(times)
    return lambda: next(it)


def test_labels_follow_the_documents_trace():
    log = MessageLog(clock=clock_from([100.0, 100.000764, 100.05]))
    log.record(OUT, "UDP", UA, CENTRAL, REGISTER)
    log.record(IN, "UDP", UA, CENTRAL, RESP_401)
    log.record(OUT, "UDP", UA, CENTRAL, INVITE)
    assert log.labels() == ["REGISTER", "401 Unauthorized [REGISTER]", "INVITE (SDP)"]
    assert log.labels(direction=IN) == ["401 Unauthorized [REGISTER]"]


def test_ladder_draws_arrows_with_time_and_delta():
    log = MessageLog(clock=clock_from([100.0, 100.000764]))
    log.record(OUT, "UDP", UA, CENTRAL, REGISTER)
    log.record(IN, "UDP", UA, CENTRAL, RESP_401)
    text = render_ladder(log, title="Call flow for abc")
    lines = text.splitlines()
    assert lines[0] == "Call flow for abc"
    assert "192.168.15.121:5060 (UDP)" in lines[1] and "131.196.224.38:7048" in lines[1]
    assert lines[2].rstrip().endswith(">|") and " REGISTER " in lines[2] and "+0.000000" in lines[2]
    assert "|<" in lines[3] and "401 Unauthorized" in lines[3] and "+0.000764" in lines[3]


def test_sdp_marker_and_call_filter():
    log = MessageLog()
    log.record(IN, "TCP", UA, CENTRAL, RESP_183)
    log.record(OUT, "TCP", UA, CENTRAL, REGISTER)
    assert log.labels("abc") == ["183 Session Progress (SDP) [INVITE]"]
    assert "(no messages)" in log.ladder("nothing-like-this")


def test_unparseable_bytes_are_still_logged():
    log = MessageLog()
    e = log.record(IN, "UDP", UA, CENTRAL, b"\x00\xffgarbage")
    assert e.call_id is None and e.label  # drawn, not raised


def test_log_is_bounded_and_redactable():
    log = MessageLog(limit=10)
    for _ in range(25):
        log.record(OUT, "UDP", UA, CENTRAL, REGISTER)
    assert len(log) <= 10 and log.dropped >= 15
    assert "XXX" in log.ladder(redactor=lambda s: s.replace("REGISTER", "XXX"))
