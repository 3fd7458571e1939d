"""Our user agent (``pbxcheck.sip.ua``) against a real Kamailio registrar with digest auth (issue 4's
"Done when"): it registers over UDP and TCP, is refused with a wrong password, and calls through
Kamailio — to a real phone (baresip), from a real phone, and to a second agent of ours."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from pbxcheck.peers import require
from pbxcheck.peers.baresip import BaresipPhone
from pbxcheck.peers.kamailio import KamailioProcess
from pbxcheck.sip.ua import UaConfig, UserAgent

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(30)]


def run(coro_fn: Callable[[], Awaitable[None]], timeout: float = 20.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro_fn(), timeout)

    asyncio.run(bounded())


def ua_config(kam: KamailioProcess, user: str, transport: str = "UDP", **kw: object) -> UaConfig:
    return UaConfig(
        user=user, password=kam.users[user], domain=kam.host, server=(kam.host, kam.port), transport=transport, **kw
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_ua_registers_with_kamailio(kamailio, transport):
    async def scenario() -> None:
        async with UserAgent(ua_config(kamailio, "2001", transport)) as ua:
            reg = await ua.register()
            assert reg.status == 200, (reg.status, reg.reason)
            assert [c.status for c in reg.challenges] == [401]  # Kamailio challenged, our answer passed
            assert reg.expires and reg.expires > 0
            again = await ua.register()  # refresh: credentials sent at once with the next nc
            assert again.status == 200
            assert (await ua.unregister()).status == 200

    run(scenario)


def test_ua_wrong_password_is_refused_by_kamailio(kamailio):
    async def scenario() -> None:
        cfg = ua_config(kamailio, "2002")
        cfg.password = "not-the-password"
        async with UserAgent(cfg) as ua:
            reg = await ua.register()
            assert reg.status == 401, (reg.status, reg.reason)

    run(scenario)


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_ua_calls_baresip_through_kamailio(kamailio, transport):
    require("baresip")
    with BaresipPhone(
        "2002", kamailio.users["2002"], kamailio.host, kamailio.port, transport=transport.lower(), auto_answer=True
    ) as phone:
        phone.wait_registered(8)

        async def scenario() -> None:
            async with UserAgent(ua_config(kamailio, "2001", transport)) as ua:
                assert (await ua.register()).status == 200
                call = await ua.call("2002", timeout=10)
                assert call.statuses[0] == 407  # Kamailio's proxy challenge, ACKed and answered
                assert call.statuses[-1] == 200
                assert b"m=audio" in call.remote_sdp
                incoming = await asyncio.to_thread(phone.wait_incoming_call, 5)
                assert incoming.call_id == call.call_id
                await asyncio.to_thread(phone.wait_established, 5, call.call_id)
                assert await call.hangup() == 200
                closed = await asyncio.to_thread(phone.wait_closed, 5, call.call_id)
                assert "peer" in (closed.param or "")

        run(scenario)


def test_baresip_calls_ua_through_kamailio(kamailio):
    require("baresip")
    with BaresipPhone("5545", kamailio.users["5545"], kamailio.host, kamailio.port, transport="tcp") as phone:
        phone.wait_registered(8)

        async def scenario() -> None:
            async with UserAgent(ua_config(kamailio, "2001", "UDP", auto_answer=0.1)) as ua:
                assert (await ua.register()).status == 200
                await asyncio.to_thread(phone.dial, kamailio.aor("2001"))
                call = await ua.next_incoming(5)
                await call.wait_answered(5)
                assert call.invite is not None and "5545" in str(call.invite.from_.uri)
                await asyncio.to_thread(phone.wait_established, 5)
                await asyncio.to_thread(phone.hangup)
                await call.wait_ended(5)
                assert call.end_reason == "remote BYE"

        run(scenario)


def test_ua_calls_ua_through_kamailio(kamailio):
    async def scenario() -> None:
        async with (
            UserAgent(ua_config(kamailio, "2001", "UDP")) as caller,
            UserAgent(ua_config(kamailio, "2002", "TCP", auto_answer=0.1)) as callee,
        ):
            assert (await caller.register()).status == 200
            assert (await callee.register()).status == 200
            call = await caller.call("2002", timeout=10)
            incoming = await callee.next_incoming(5)
            await incoming.wait_answered(3)
            assert incoming.call_id == call.call_id
            assert await call.hangup() == 200
            await incoming.wait_ended(5)

    run(scenario)
