"""The asyncio runner (``sip.aio``) over the engine, fed bytes by hand (a Flow whose send appends to a
list), on a virtual-time loop: RFC 3261 timer behaviour through the runner, without real sleeps."""

from __future__ import annotations

import asyncio

import pytest
from fake_loop import run  # tests/unit/sip_ua is on sys.path (pytest's prepend import mode)

from pbxcheck.sip.aio import SipEndpoint, SipTimeout
from pbxcheck.sip.flow import Flow
from pbxcheck.sip.ids import new_branch
from pbxcheck.sip.message import Request, make_request, make_response, to_bytes
from pbxcheck.sip.samples import INVITE, REGISTER


class Wire(list[tuple[float, bytes]]):
    def lines(self, prefix: bytes) -> list[float]:
        return [t for t, d in self if d.startswith(prefix)]


def _flow(sent: Wire, transport: str = "UDP", port: int = 5060) -> Flow:
    def send(data: bytes) -> None:
        sent.append((asyncio.get_running_loop().time(), data))

    return Flow(transport, ("127.0.0.1", 7048), ("127.0.0.9", port), send)


def _invite() -> Request:
    return make_request(
        "INVITE",
        "sip:944511712@127.0.0.1",
        from_="<sip:6961@127.0.0.1>;tag=a",
        to="<sip:944511712@127.0.0.1>",
        call_id="c1",
        cseq=1,
        via=f"SIP/2.0/UDP 127.0.0.9:5060;branch={new_branch()}",
    )


def test_retransmitted_request_gets_the_same_answer_once_handled() -> None:
    async def scenario() -> None:
        sent, seen = Wire(), []
        ep = SipEndpoint(on_request=lambda r, f: seen.append(r))
        flow = _flow(sent)
        ep.receive(REGISTER, flow)
        ep.respond(seen[0], flow, make_response(seen[0], 401, to_tag="t1"))
        ep.receive(REGISTER, flow)  # the UDP retransmission
        assert len(seen) == 1 and len(sent) == 2 and sent[0][1] == sent[1][1]

    run(scenario())


def test_invite_without_answer_is_sent_7_times_then_times_out() -> None:
    async def scenario() -> None:
        sent = Wire()
        ep = SipEndpoint(on_request=lambda r, f: None)
        start = asyncio.get_running_loop().time()
        tx = ep.request(_invite(), _flow(sent))
        with pytest.raises(SipTimeout):
            await tx.wait(None)
        # RFC 3261 17.1.1.2: A = T1 doubling (no cap) until B = 64*T1 = 32 s
        assert [t - start for t in sent.lines(b"INVITE")] == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
        assert asyncio.get_running_loop().time() - start == pytest.approx(32.0)
        assert ep.engine.counts["client"] == 0

    run(scenario())


def test_register_after_timer_j_from_a_new_port_is_answered_there() -> None:
    async def scenario() -> None:
        sent_old, sent_new, seen = Wire(), Wire(), []
        ep = SipEndpoint(on_request=lambda r, f: seen.append((r, f)))
        old, new = _flow(sent_old), _flow(sent_new, port=5070)
        ep.receive(REGISTER, old)
        ep.respond(seen[0][0], old, make_response(seen[0][0], 200, to_tag="r"))
        await asyncio.sleep(45)  # past Timer J (64*T1 on UDP)
        ep.receive(REGISTER, new)
        assert len(seen) == 2 and seen[1][1] is new
        ep.respond(seen[1][0], new, make_response(seen[1][0], 200, to_tag="r"))
        assert len(sent_old) == 1 and len(sent_new) == 1

    run(scenario())


def test_invite_2xx_is_retransmitted_until_the_ack() -> None:
    async def scenario() -> None:
        sent, seen = Wire(), []
        ep = SipEndpoint(on_request=lambda r, f: seen.append(r))
        flow = _flow(sent)
        start = asyncio.get_running_loop().time()
        ep.receive(INVITE, flow)
        inv = seen[0]
        ep.respond(inv, flow, make_response(inv, 200, to_tag="t2"))
        await asyncio.sleep(4)
        assert [t - start for t in sent.lines(b"SIP/2.0 200")] == [0, 0.5, 1.5, 3.5]  # T1 doubling, 13.3.1.4
        ack = make_request(
            "ACK",
            inv.uri,
            from_=inv.headers.get("From") or "",
            to=f"{inv.headers.get('To')};tag=t2",
            call_id=inv.call_id,
            cseq=inv.cseq.number,
            via="SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKack",
        )
        assert ep.awaiting_ack(inv.call_id, inv.cseq.number)
        ep.receive(to_bytes(ack), flow)
        await asyncio.sleep(60)
        assert len(sent) == 4 and seen[-1].method == "ACK"
        assert not ep.awaiting_ack(inv.call_id, inv.cseq.number)

    run(scenario())


def test_client_transaction_matches_and_acks_a_non_2xx() -> None:
    async def scenario() -> None:
        sent = Wire()
        ep = SipEndpoint(on_request=lambda r, f: None)
        flow = _flow(sent)
        inv = _invite()
        tx = ep.request(inv, flow)
        ep.receive(to_bytes(make_response(inv, 401, to_tag="x")), flow)
        final = await tx.wait(1)
        assert final.status == 401
        ack = sent[-1][1]
        assert ack.startswith(b"ACK sip:944511712@127.0.0.1 ") and inv.branch and inv.branch.encode() in ack

    run(scenario())


def test_non_invite_times_out_after_e_capped_at_t2() -> None:
    async def scenario() -> None:
        ep = SipEndpoint(on_request=lambda r, f: None)
        req = make_request(
            "OPTIONS",
            "sip:x@127.0.0.1",
            from_="<sip:a@b>;tag=1",
            to="<sip:x@127.0.0.1>",
            call_id="c2",
            cseq=1,
            via="SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKopt1",
        )
        sent = Wire()
        tx = ep.request(req, _flow(sent))
        with pytest.raises(SipTimeout):
            await tx.wait(None)
        times = [t - sent[0][0] for t, _ in sent]
        assert [round(b - a, 6) for a, b in zip(times, times[1:], strict=False)] == [0.5, 1, 2, 4, 4, 4, 4, 4, 4, 4]

    run(scenario())


def test_provisional_goes_to_the_callback_and_wait_bounds_a_ringing_invite() -> None:
    async def scenario() -> None:
        sent, provisional = Wire(), []
        ep = SipEndpoint(on_request=lambda r, f: None)
        flow = _flow(sent)
        inv = _invite()
        tx = ep.request(inv, flow, on_provisional=provisional.append)
        ep.receive(to_bytes(make_response(inv, 180, to_tag="x")), flow)
        with pytest.raises(SipTimeout):
            await tx.wait(120)  # Proceeding has no RFC timer: the TU's own bound
        assert [r.status for r in provisional] == [180] and len(sent.lines(b"INVITE")) == 1
        ep.forget(tx)
        assert ep.engine.counts["client"] == 0

    run(scenario())
