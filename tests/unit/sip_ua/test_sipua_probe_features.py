"""What the probes read off a user agent: every answer of a call (``Call.responses``) and every new
request reaching a port before its agents answer it (``UaPort.on_message``). Two agents whose ports
are wired to each other in memory (no socket), one calling the other directly (no registrar)."""

from __future__ import annotations

import asyncio

from pbxcheck.sip.flow import Flow
from pbxcheck.sip.ladder import MessageLog
from pbxcheck.sip.message import Request
from pbxcheck.sip.ua import UaConfig, UaPort, UserAgent

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
        finally:
            await caller.close()
            await callee.close()

    asyncio.run(asyncio.wait_for(main(), 10))
