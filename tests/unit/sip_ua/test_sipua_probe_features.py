"""What the probes read off a user agent: every answer of a call (``Call.responses``, grouped per
request by ``Call.answers_to``), the calls it received (``calls_in``), the first answer of a
registration (``RegisterResult.first``), what a registrar granted (None when it said nothing) and every
new request reaching a port before its agents answer it (``UaPort.on_message``). Two agents whose ports
are wired to each other in memory (no socket), one calling the other directly (no registrar)."""

from __future__ import annotations

import asyncio

from pbxcheck.sip.dialog import Dialog
from pbxcheck.sip.flow import Flow
from pbxcheck.sip.headers import NameAddr
from pbxcheck.sip.ladder import MessageLog
from pbxcheck.sip.message import Request, make_response
from pbxcheck.sip.register import make_register
from pbxcheck.sip.ua import Call, RegisterResult, UaConfig, UaPort, UserAgent

A, B = ("127.0.0.1", 5061), ("127.0.0.1", 5062)


async def _two_agents() -> tuple[UserAgent, UserAgent]:
    """Port a at A and port b at B, each flow's bytes delivered to the other port (as if over UDP)."""
    a, b = UaPort("UDP", MessageLog()), UaPort("UDP", MessageLog())
    loop = asyncio.get_running_loop()
    a.flow = Flow("UDP", A, B, lambda data: loop.call_soon(b.endpoint.receive, data, b.flow))
    b.flow = Flow("UDP", B, A, lambda data: loop.call_soon(a.endpoint.receive, data, a.flow))
    caller = await UserAgent(UaConfig("2001", "pw", server=B, timeout=2.0), a).start()
    callee = await UserAgent(UaConfig("2002", "pw", auto_answer=0.01, early_media=True, timeout=2.0), b).start()
    return caller, callee


def test_call_keeps_every_answer_and_the_port_shows_each_new_request() -> None:
    async def main() -> None:
        caller, callee = await _two_agents()
        seen: list[Request] = []
        assert callee.port is not None
        callee.port.on_message = lambda req, flow: seen.append(req)
        try:
            call = await caller.call("2002", timeout=3.0)
            assert [r.status for r in call.responses] == [183, 200]  # 183 with SDP (early media), then 200
            assert call.responses[0].body and call.responses[1].body
            assert await call.hangup(timeout=2.0) == 200
            assert [(r.status, r.cseq.method) for r in call.responses[2:]] == [(200, "BYE")]
            assert [r.method for r in seen] == ["INVITE", "ACK", "BYE"]  # the ACK of the 2xx too
            assert call.answers_to("INVITE") == call.answers_to("INVITE", 0) == call.responses[:2]
            assert call.answers_to("BYE") == call.responses[2:] and call.answers_to("INFO") == []
            assert [c.call_id for c in callee.calls_in()] == [call.call_id] and caller.calls_in() == []
        finally:
            await caller.close()
            await callee.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def _register(cseq: int) -> Request:
    return make_register("127.0.0.1", "2001", sent_by=A, call_id="c1", from_tag="t1", cseq=cseq)


def test_answers_are_grouped_per_request_and_the_first_registration_answer_is_the_challenge() -> None:
    aor = NameAddr.parse("<sip:2001@127.0.0.1>")
    call = Call(
        UserAgent(UaConfig("2001", "pw")),
        Dialog.outgoing(call_id="c1", local_uri=aor, local_tag="t1", remote_uri=aor),
        "out",
    )
    first, second = _register(5), _register(6)  # two requests of one sequence: CSeq 5, then 6
    challenge, trying, ok = make_response(first, 401), make_response(second, 100), make_response(second, 200)
    call.responses = [challenge, trying, ok]
    assert call.answers_to("REGISTER", 0) == [challenge]
    assert call.answers_to("REGISTER") == call.answers_to("REGISTER", 1) == [trying, ok]
    assert call.answers_to("REGISTER", 2) == call.answers_to("REGISTER", -3) == call.answers_to("BYE") == []
    assert RegisterResult(200, "OK", ok, 90, 2, (challenge,)).first is challenge
    assert RegisterResult(200, "OK", ok, 90, 1).first is ok


def test_what_a_registrar_granted_is_none_when_it_said_nothing() -> None:
    async def main() -> None:
        caller, callee = await _two_agents()
        try:
            req = _register(1)
            assert caller._granted_expires(make_response(req, 200)) is None  # not what we asked for
            assert caller._granted_expires(make_response(req, 200, headers=[("Expires", "60")])) == 60
            bound = [("Contact", f"{caller.contact()};expires=30"), ("Expires", "60")]
            assert caller._granted_expires(make_response(req, 200, headers=bound)) == 30
        finally:
            await caller.close()
            await callee.close()

    asyncio.run(asyncio.wait_for(main(), 10))
