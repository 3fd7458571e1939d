"""The transaction-keeping endpoint, fed bytes by hand (a Flow whose send appends to a list)."""

from __future__ import annotations

import asyncio

from pbxcheck.sip.drivers.base import Flow
from pbxcheck.sip.endpoint import SipEndpoint, SipTimeout
from pbxcheck.sip.message import Request, make_request, make_response, to_bytes
from pbxcheck.sip.samples import INVITE, REGISTER


def _flow(sent: list[bytes], transport: str = "UDP") -> Flow:
    return Flow(transport, ("127.0.0.1", 7048), ("127.0.0.9", 5060), sent.append)


def test_retransmitted_request_gets_the_same_answer_once_handled():
    async def scenario() -> None:
        sent: list[bytes] = []
        seen: list[Request] = []
        ep = SipEndpoint(on_request=lambda r, f: seen.append(r))
        flow = _flow(sent)
        ep.receive(REGISTER, flow)
        ep.respond(seen[0], flow, make_response(seen[0], 401, to_tag="t1"))
        ep.receive(REGISTER, flow)  # the UDP retransmission
        assert len(seen) == 1 and len(sent) == 2 and sent[0] == sent[1]

    asyncio.run(scenario())


def test_invite_2xx_is_retransmitted_until_the_ack():
    async def scenario() -> None:
        sent: list[bytes] = []
        seen: list[Request] = []
        ep = SipEndpoint(on_request=lambda r, f: seen.append(r), t1=0.02)
        flow = _flow(sent)
        ep.receive(INVITE, flow)
        inv = seen[0]
        ep.respond(inv, flow, make_response(inv, 200, to_tag="t2"))
        await asyncio.sleep(0.1)
        assert len(sent) >= 3  # 200, then retransmissions at T1, 2*T1
        ack = make_request("ACK", inv.uri, from_=inv.headers.get("From") or "", to=f"{inv.headers.get('To')};tag=t2",
                           call_id=inv.call_id, cseq=inv.cseq.number, via="SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKack")
        ep.receive(to_bytes(ack), flow)
        n = len(sent)
        await asyncio.sleep(0.1)
        assert len(sent) == n and seen[-1].method == "ACK"

    asyncio.run(scenario())


def test_client_transaction_matches_and_acks_a_non_2xx():
    async def scenario() -> None:
        sent: list[bytes] = []
        ep = SipEndpoint(on_request=lambda r, f: None, t1=0.05)
        flow = _flow(sent)
        inv = make_request("INVITE", "sip:944511712@127.0.0.1", from_="<sip:6961@127.0.0.1>;tag=a", to="<sip:944511712@127.0.0.1>",
                           call_id="c1", cseq=1, via="SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKinv1")
        tx = ep.request(inv, flow)
        ep.receive(to_bytes(make_response(inv, 401, to_tag="x")), flow)
        final = await tx.wait(1)
        assert final.status == 401
        assert sent[-1].startswith(b"ACK sip:944511712@127.0.0.1 ") and b"branch=z9hG4bKinv1" in sent[-1]

    asyncio.run(scenario())


def test_client_transaction_times_out():
    async def scenario() -> None:
        ep = SipEndpoint(on_request=lambda r, f: None, t1=0.01)
        req = make_request("OPTIONS", "sip:x@127.0.0.1", from_="<sip:a@b>;tag=1", to="<sip:x@127.0.0.1>", call_id="c2",
                           cseq=1, via="SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKopt1")
        sent: list[bytes] = []
        tx = ep.request(req, _flow(sent))
        try:
            await tx.wait(2)
        except SipTimeout:
            pass
        else:
            raise AssertionError("no timeout")
        assert len(sent) > 3  # retransmitted on UDP before giving up

    asyncio.run(scenario())
