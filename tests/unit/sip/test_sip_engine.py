"""The engine against the RFC 3261 tables, on a fake clock (EnginePair): retransmission counts and
intervals, Timer D/J, the 2xx-until-ACK rule, matching, and nothing left behind."""

from __future__ import annotations

import pytest
from engine_pair import EnginePair  # tests/unit/sip is on sys.path (rootdir conftest-less import mode)

from pbxcheck.sip.engine import (
    AckTimedOut,
    ClientTimedOut,
    Engine,
    IncomingRequest,
    IncomingResponse,
    StrayResponse,
    Unparseable,
)
from pbxcheck.sip.flow import Flow
from pbxcheck.sip.ids import new_branch
from pbxcheck.sip.message import Request, make_request, make_response, to_bytes
from pbxcheck.sip.transaction import State

T1 = 0.5


def _request(
    pair: EnginePair, method: str = "INVITE", *, cseq: int = 1, call_id: str = "cid-1", branch: str | None = None
) -> Request:
    host, port = pair.a_addr
    return make_request(
        method,
        "sip:2002@pbx.example",
        from_="<sip:2001@pbx.example>;tag=ft",
        to="<sip:2002@pbx.example>",
        call_id=call_id,
        cseq=cseq,
        via=f"SIP/2.0/{pair.transport} {host}:{port};branch={branch or new_branch()}",
        contact=f"<sip:2001@{host}:{port}>",
    )


def _times(sent: list) -> list[float]:
    return [s.time for s in sent]


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def test_invite_unanswered_on_udp_is_sent_7_times_in_64_t1_then_times_out() -> None:
    pair = EnginePair()
    pair.drop = lambda s: s.sender == "a"  # the server never hears it
    inv = _request(pair)
    handle = pair.a.send_request(inv, pair.a_flow, pair.now)
    pair.flush()
    pair.advance(64 * T1 + 10)
    # RFC 3261 17.1.1.2: Timer A doubles without cap (0.5, 1, 2, 4, 8, 16) until Timer B (64*T1)
    assert _times(pair.sent("a", "INVITE")) == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert pair.take("a") == [ClientTimedOut(handle, "B")]
    assert pair.a.client_state(handle) is None and pair.a.next_deadline() is None


def test_non_invite_retransmits_e_doubling_capped_at_t2_until_f() -> None:
    pair = EnginePair()
    pair.drop = lambda s: s.sender == "a"
    handle = pair.a.send_request(_request(pair, "OPTIONS"), pair.a_flow, pair.now)
    pair.flush()
    pair.advance(64 * T1 + 10)
    times = _times(pair.sent("a", "OPTIONS"))
    gaps = _gaps(times)
    assert gaps == [0.5, 1, 2, 4, 4, 4, 4, 4, 4, 4]  # 17.1.2.2: min(2*E, T2)
    assert pair.take("a") == [ClientTimedOut(handle, "F")]


def test_non_invite_after_provisional_retransmits_at_t2() -> None:
    pair = EnginePair()
    handle = pair.a.send_request(_request(pair, "OPTIONS"), pair.a_flow, pair.now)
    pair.flush()
    (new,) = pair.take("b")
    assert isinstance(new, IncomingRequest)
    pair.b.send_response(new.request, make_response(new.request, 100), new.flow, pair.now)
    pair.flush()
    pair.drop = lambda s: s.sender == "a"
    pair.advance(10)
    times = _times(pair.sent("a", "OPTIONS"))
    assert _gaps(times) == [0.5, 4, 4]  # Proceeding: E fires at T2
    assert pair.a.client_state(handle) is State.PROCEEDING


def test_invite_stops_retransmitting_after_a_provisional() -> None:
    pair = EnginePair()
    handle = pair.a.send_request(_request(pair), pair.a_flow, pair.now)
    pair.flush()
    (new,) = pair.take("b")
    pair.b.send_response(new.request, make_response(new.request, 180, to_tag="tt"), new.flow, pair.now)
    pair.flush()
    pair.advance(60)
    assert len(pair.sent("a", "INVITE")) == 1
    assert [type(e) for e in pair.take("a")] == [IncomingResponse]
    assert pair.a.client_state(handle) is State.PROCEEDING  # the TU's own timer bounds the ringing


@pytest.mark.parametrize("transport, lingers", [("UDP", 32.0), ("TCP", 0.0)])
def test_timer_d_is_32s_on_udp_and_zero_on_tcp(transport: str, lingers: float) -> None:
    pair = EnginePair(transport=transport)
    handle = pair.a.send_request(_request(pair), pair.a_flow, pair.now)
    pair.flush()
    (new,) = pair.take("b")
    pair.b.send_response(new.request, make_response(new.request, 486, to_tag="tt"), new.flow, pair.now)
    pair.flush()
    assert [e.response.status for e in pair.take("a") if isinstance(e, IncomingResponse)] == [486]
    assert len(pair.sent("a", "ACK")) == 1  # 17.1.1.3: the transaction ACKs the non-2xx itself
    if lingers:
        assert pair.a.client_state(handle) is State.COMPLETED
        pair.advance(lingers - 0.01)
        assert pair.a.client_state(handle) is State.COMPLETED
        pair.advance(0.02)
    assert pair.a.client_state(handle) is None  # Timer D over (at once on a reliable transport)


def test_retransmitted_non_2xx_is_acked_again_not_passed_up() -> None:
    pair = EnginePair()
    pair.a.send_request(_request(pair), pair.a_flow, pair.now)
    pair.flush()
    (new,) = pair.take("b")
    pair.drop = lambda s: s.sender == "a" and s.line.startswith("ACK")  # the server misses the ACK
    pair.b.send_response(new.request, make_response(new.request, 486, to_tag="tt"), new.flow, pair.now)
    pair.flush()
    pair.advance(T1 + 0.01)  # Timer G: the 486 again
    assert len(pair.sent("b", "SIP/2.0 486")) == 2
    assert len(pair.sent("a", "ACK")) == 2
    assert [e.response.status for e in pair.take("a") if isinstance(e, IncomingResponse)] == [486]
    pair.drop = lambda s: False
    pair.advance(2)
    assert len(pair.sent("b", "SIP/2.0 486")) == 3  # G doubled to 1 s, then the ACK came
    pair.advance(60)
    assert len(pair.sent("b", "SIP/2.0 486")) == 3
    assert pair.b.counts["server"] == 0


def test_register_resent_after_timer_j_from_a_new_port_is_a_new_transaction() -> None:
    pair = EnginePair()
    reg = to_bytes(_request(pair, "REGISTER", branch="z9hG4bKsame"))
    old_port = Flow("UDP", pair.b_addr, ("10.0.0.1", 5060), lambda d: None)
    new_port = Flow("UDP", pair.b_addr, ("10.0.0.1", 5070), lambda d: None)
    (first,) = pair.b.receive(reg, old_port, 0.0)
    assert isinstance(first, IncomingRequest)
    pair.b.send_response(first.request, make_response(first.request, 200, to_tag="r"), old_port, 0.0)
    assert [f.remote for _, f in pair.b.data_to_send()] == [("10.0.0.1", 5060)]
    # within Timer J (64*T1 on UDP) a retransmission is absorbed: the same answer again
    assert pair.b.receive(reg, old_port, 10.0) == []
    assert [f.remote for _, f in pair.b.data_to_send()] == [("10.0.0.1", 5060)]
    # 45 s later (past Timer J), from a new port, with no timer_fired call in between: the expired
    # transaction is pruned before the lookup, so this is a new request, answered to the new port
    (again,) = pair.b.receive(reg, new_port, 45.0)
    assert isinstance(again, IncomingRequest) and again.flow is new_port
    pair.b.send_response(again.request, make_response(again.request, 200, to_tag="r"), new_port, 45.0)
    assert [f.remote for _, f in pair.b.data_to_send()] == [("10.0.0.1", 5070)]


def test_timer_j_is_zero_on_tcp() -> None:
    pair = EnginePair(transport="TCP")
    reg = to_bytes(_request(pair, "REGISTER", branch="z9hG4bKsame"))
    (first,) = pair.b.receive(reg, pair.b_flow, 0.0)
    pair.b.send_response(first.request, make_response(first.request, 200, to_tag="r"), pair.b_flow, 0.0)
    assert pair.b.counts["server"] == 0 and pair.b.next_deadline() is None


def test_2xx_is_retransmitted_until_the_ack() -> None:
    pair = EnginePair()
    pair.a.send_request(_request(pair), pair.a_flow, pair.now)
    pair.flush()
    (new,) = pair.take("b")
    ok = make_response(new.request, 200, to_tag="tt", headers=[("Contact", "<sip:2002@10.0.0.2:7048>")])
    pair.b.send_response(new.request, ok, new.flow, pair.now)
    pair.flush()
    (resp,) = pair.take("a")
    assert isinstance(resp, IncomingResponse) and resp.response.status == 200
    pair.advance(3.6)  # the UAC's TU is slow to ACK: 13.3.1.4 retransmits at 0.5, 1.5, 3.5
    assert _times(pair.sent("b", "SIP/2.0 200")) == [0, 0.5, 1.5, 3.5]
    assert all(isinstance(e, StrayResponse) for e in pair.take("a"))  # no ACK of ours yet to resend
    assert pair.b.awaiting_ack("cid-1", 1)
    ack = make_request(
        "ACK",
        "sip:2002@10.0.0.2:7048",
        from_="<sip:2001@pbx.example>;tag=ft",
        to="<sip:2002@pbx.example>;tag=tt",
        call_id="cid-1",
        cseq=1,
        via=f"SIP/2.0/UDP 10.0.0.1:5060;branch={new_branch()}",
    )
    pair.a.send_ack(ack, pair.a_flow, pair.now)
    pair.flush()
    assert [type(e) for e in pair.take("b")] == [IncomingRequest]  # the ACK goes up to the TU
    assert not pair.b.awaiting_ack("cid-1", 1)
    pair.advance(60)
    assert len(pair.sent("b", "SIP/2.0 200")) == 4
    assert pair.b.counts == {"client": 0, "server": 0, "ack_waits": 0, "acks_sent": 0}
    assert pair.a.counts["acks_sent"] == 0  # forgotten after 64*T1


def test_2xx_without_ack_gives_up_after_64_t1_and_tells_the_tu() -> None:
    pair = EnginePair(transport="TCP")  # 13.3.1.4: retransmitted whatever the transport
    pair.drop = lambda s: s.sender == "b" and s.time > 0
    pair.a.send_request(_request(pair), pair.a_flow, pair.now)
    pair.flush()
    (new,) = pair.take("b")
    pair.b.send_response(new.request, make_response(new.request, 200, to_tag="tt"), new.flow, pair.now)
    pair.flush()
    pair.advance(64 * T1 + 1)
    times = _times(pair.sent("b", "SIP/2.0 200"))
    assert _gaps(times) == [0.5, 1, 2, 4, 4, 4, 4, 4, 4, 4]  # T1 doubling to T2
    assert [type(e) for e in pair.take("b")] == [AckTimedOut]
    assert not pair.b.awaiting_ack("cid-1", 1)


def test_retransmitted_2xx_is_re_acked_from_the_uac_core() -> None:
    pair = EnginePair()
    pair.a.send_request(_request(pair), pair.a_flow, pair.now)
    pair.flush()
    (new,) = pair.take("b")
    pair.b.send_response(new.request, make_response(new.request, 200, to_tag="tt"), new.flow, pair.now)
    pair.drop = lambda s: s.sender == "a" and s.line.startswith("ACK") and s.time == 0  # first ACK lost
    pair.flush()
    ack = make_request(
        "ACK",
        "sip:2002@10.0.0.2",
        from_="<sip:2001@pbx.example>;tag=ft",
        to="<sip:2002@pbx.example>;tag=tt",
        call_id="cid-1",
        cseq=1,
        via=f"SIP/2.0/UDP 10.0.0.1:5060;branch={new_branch()}",
    )
    pair.a.send_ack(ack, pair.a_flow, pair.now)
    pair.flush()
    pair.advance(1.6)
    assert len(pair.sent("a", "ACK")) == 2  # the 2xx at 0.5 s got the ACK again
    assert not pair.b.awaiting_ack("cid-1", 1)
    assert [type(e) for e in pair.take("a")] == [IncomingResponse]


def test_retransmitted_invite_during_2xx_wait_gets_the_2xx_not_the_tu() -> None:
    pair = EnginePair()
    inv = to_bytes(_request(pair, branch="z9hG4bKinv"))
    (new,) = pair.b.receive(inv, pair.b_flow, 0.0)
    pair.b.send_response(new.request, make_response(new.request, 200, to_tag="tt"), pair.b_flow, 0.0)
    pair.b.data_to_send()
    assert pair.b.receive(inv, pair.b_flow, 0.1) == []
    assert [d.split(b"\r\n", 1)[0] for d, _ in pair.b.data_to_send()] == [b"SIP/2.0 200 OK"]


def test_cancel_is_its_own_transaction_and_the_invite_stays() -> None:
    from pbxcheck.sip.transaction import make_cancel

    pair = EnginePair()
    inv = _request(pair)
    pair.a.send_request(inv, pair.a_flow, pair.now)
    pair.flush()
    (new,) = pair.take("b")
    pair.b.send_response(new.request, make_response(new.request, 180, to_tag="tt"), new.flow, pair.now)
    pair.flush()
    pair.take("a")
    cancel_handle = pair.a.send_request(make_cancel(inv), pair.a_flow, pair.now)
    pair.flush()
    (cancel,) = pair.take("b")
    assert isinstance(cancel, IncomingRequest) and cancel.request.method == "CANCEL"
    pair.b.send_response(cancel.request, make_response(cancel.request, 200), cancel.flow, pair.now)
    pair.b.send_response(new.request, make_response(new.request, 487, to_tag="tt"), new.flow, pair.now)
    pair.flush()
    got = pair.take("a")
    assert [(e.handle is cancel_handle, e.response.status) for e in got if isinstance(e, IncomingResponse)] == [
        (True, 200),
        (False, 487),
    ]
    pair.advance(64 * T1)
    assert pair.a.counts == pair.b.counts == {"client": 0, "server": 0, "ack_waits": 0, "acks_sent": 0}


def test_unparseable_and_keepalive() -> None:
    eng = Engine()
    flow = Flow("UDP", ("10.0.0.2", 7048), ("10.0.0.1", 5060), lambda d: None)
    assert eng.receive(b"\r\n\r\n", flow, 0.0) == []
    (bad,) = eng.receive(b"INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n", flow, 0.0)
    assert isinstance(bad, Unparseable) and bad.flow is flow


def test_unanswered_request_is_forgotten_after_64_t1() -> None:
    pair = EnginePair()
    pair.b.receive(to_bytes(_request(pair, "OPTIONS")), pair.b_flow, 0.0)
    assert pair.b.counts["server"] == 1
    pair.b.timer_fired(64 * T1)
    assert pair.b.counts["server"] == 0 and pair.b.next_deadline() is None
