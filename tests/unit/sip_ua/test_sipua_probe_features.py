"""What the probes read off a user agent: every answer of a call (``Call.responses``) and every new
request reaching a port before its agents answer it (``UaPort.on_message``). Two agents on loopback
UDP, one calling the other directly (no registrar)."""

from __future__ import annotations

import asyncio

from pbxcheck.sip.message import Request
from pbxcheck.sip.ua import UaConfig, UserAgent


async def _two_agents() -> tuple[UserAgent, UserAgent]:
    callee = await UserAgent(UaConfig("2002", "pw", auto_answer=0.01, early_media=True, timeout=2.0)).start()
    assert callee.port is not None
    caller = await UserAgent(UaConfig("2001", "pw", server=callee.port.local, timeout=2.0)).start()
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
