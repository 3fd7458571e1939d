"""Calls through the reference central's SIP side.

Clauses: SIP-INV-1 (401, ACK, INVITE+auth, 100, 183 SDP, 200 SDP, ACK; BYE 200), SIP-INV-2 (codec from
the offer, RTP port 10000-20000), SIP-NAT-1 (same IP and port collide, different IPs do not), C2C-2
(click-to-call rings the registered origin), RAM-2/RAM-3 (statusramais mirrors the live call, JSON1 from
DTMF, recording after hang-up).
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from sip_harness import SipCentral, run

from pbxcheck.client import ApiClient
from pbxcheck.contract import RTP_PORT_RANGE
from pbxcheck.sip import sdp
from pbxcheck.sip.ladder import IN, OUT, render_ladder
from pbxcheck.sip.ua import CallFailed, UaPort, UserAgent
from pbxcheck.sip_target import ua_config_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

OUTSIDE = "944511712"  # the document's dialled number


def answer_of(body: bytes) -> sdp.Media:
    return sdp.parse_sdp(body).audio


def test_invite_to_an_outside_number_follows_the_documents_flow(sip_central: SipCentral):
    async def scenario() -> None:
        async with UserAgent(ua_config_for(sip_central.target, "6961")) as ua:
            assert (await ua.register()).status == 200
            call = await ua.call(OUTSIDE, timeout=5)
            assert call.statuses == [401, 100, 183, 200], ua.log.ladder(call.call_id)
            await asyncio.sleep(0.1)
            assert await call.hangup() == 200
            labels = ua.log.labels(call.call_id)
            assert labels == [
                "INVITE (SDP)",
                "401 Unauthorized [INVITE]",
                "ACK",
                "INVITE (SDP)",
                "100 Trying [INVITE]",
                "183 Session Progress (SDP) [INVITE]",
                "200 OK (SDP) [INVITE]",
                "ACK",
                "BYE",
                "200 OK [BYE]",
            ], ua.log.ladder(call.call_id)
            m = answer_of(call.remote_sdp)
            assert m.payloads[0] == 18  # the first offered codec the central supports: G729
            assert m.telephone_event == 101
            assert RTP_PORT_RANGE[0] <= m.port <= RTP_PORT_RANGE[1]
            early = next(e for e in ua.log.for_call(call.call_id) if e.label.startswith("183"))
            assert answer_of(early.data.split(b"\r\n\r\n", 1)[1]).port == m.port
            await ua.unregister()

    run(scenario)


@pytest.mark.parametrize("offer,expected", [((3,), 3), ((8, 0), 8), ((0, 18), 0), ((9,), None)])
def test_answer_picks_from_the_offer(sip_central: SipCentral, offer: tuple[int, ...], expected: int | None):
    async def scenario() -> None:
        cfg = ua_config_for(sip_central.target, "5545", codecs=offer)
        async with UserAgent(cfg) as ua:
            assert (await ua.register()).status == 200
            call = ua.invite(OUTSIDE, ring_timeout=5)
            if expected is None:
                with pytest.raises(CallFailed):
                    await call.wait_answered(5)
                assert call.final is not None and call.final.status == 488
            else:
                await call.wait_answered(5)
                assert answer_of(call.remote_sdp).payloads[0] == expected
                await call.hangup()
            await ua.unregister()

    run(scenario)


def _ramais(api: ApiClient) -> dict[str, dict[str, Any]]:
    return {r["Ramal"]: r for r in api.call("statusramais").value}


def test_call_between_extensions_goes_through_the_b2bua(sip_central: SipCentral):
    t = sip_central.target
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with UserAgent(ua_config_for(t, "2001")) as a, UserAgent(ua_config_for(t, "2002", auto_answer=0.3)) as b:
            assert (await a.register()).status == 200 and (await b.register()).status == 200
            call = a.invite("2002")
            incoming = await b.next_incoming(5)
            assert incoming.remote_uri.sip_uri.user == "2001"  # the callee sees who calls
            await call.wait_answered(5)
            assert call.statuses[:2] == [401, 100] and call.statuses[-1] == 200, a.log.ladder(call.call_id)
            await incoming.wait_answered(5)
            assert await call.send_dtmf("123") == [200, 200, 200]
            await asyncio.sleep(1.1)
            with ApiClient(t) as api:
                seen.update(await asyncio.to_thread(_ramais, api))
            assert await incoming.hangup() == 200  # the callee hangs up: the caller gets a BYE
            await call.wait_ended(5)
            assert call.end_reason == "remote BYE"
            await a.unregister()
            await b.unregister()

    run(scenario)
    r1, r2 = seen["2001"], seen["2002"]
    assert (r1["Status"], r1["StatusCanal"], r1["Direcao"], r1["Callerid"]) == ("In use", "Up", "SAIDA", "2002")
    assert (r2["Status"], r2["StatusCanal"], r2["Direcao"], r2["Callerid"]) == ("In use", "Up", "ENTRADA", "2001")
    assert r1["IDCHAMADA"] == r2["IDCHAMADA"] and r1["GRAVACAO"] == r2["GRAVACAO"] and r1["GRAVACAO"]
    assert int(r1["Duracao"]) >= 1
    assert r1["JSON1"] == r2["JSON1"] == "123"  # DTMF digits typed during the call
    rec = sip_central.call(
        lambda: [r for r in sip_central.side.store.calls_since(time.time() - 60, 500) if r1["IDCHAMADA"] in r]
    )
    assert rec, "no call record written at hang-up"
    with ApiClient(t) as api:
        got = api.recording(r1["GRAVACAO"])
        assert got.status_code == 200 and len(got.content) > 0


def _same_port_on(ips: tuple[str, str]) -> int:
    """A UDP port number free on both loopback addresses."""
    for _ in range(50):
        s1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s1.bind((ips[0], 0))
        port = s1.getsockname()[1]
        s2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s2.bind((ips[1], port))
        except OSError:
            continue
        finally:
            s1.close()
            s2.close()
        return port
    raise RuntimeError("no common free port")


def test_nat_same_ip_and_port_collide_different_ips_do_not(sip_central: SipCentral):
    t = sip_central.target

    async def scenario() -> None:
        # one socket on 127.0.0.3 plays a NAT mapping shared by two devices (2001 then 2002)
        cfg_a = ua_config_for(t, "2001", local_host="127.0.0.3")
        cfg_b = ua_config_for(t, "2002", local_host="127.0.0.3")
        port = await UaPort.open(cfg_a)
        async with UserAgent(ua_config_for(t, "5545")) as caller:
            a = await UserAgent(cfg_a, port).start()
            b = await UserAgent(cfg_b, port).start()
            try:
                assert (await caller.register()).status == 200
                assert (await a.register()).status == 200
                assert (await b.register()).status == 200  # same IP:port: takes the flow over
                call = caller.invite("2001")
                got = await b.next_incoming(5)  # the call for 2001 reaches the later device
                assert got.invite is not None and got.invite.to.sip_uri.user == "2001"
                assert got.invite.sip_uri.user == "2002"
                assert a.incoming.empty()
                await call.wait_answered(5)
                await call.hangup()
                await a.unregister()
                await b.unregister()
            finally:
                await a.close()
                await b.close()
                await port.close()

            # different IPs, same port number: two flows, no collision
            p = _same_port_on(("127.0.0.3", "127.0.0.4"))
            async with (
                UserAgent(ua_config_for(t, "2001", local_host="127.0.0.3", local_port=p)) as a2,
                UserAgent(ua_config_for(t, "2002", local_host="127.0.0.4", local_port=p)) as b2,
            ):
                assert (await a2.register()).status == 200 and (await b2.register()).status == 200
                call = caller.invite("2001")
                got = await a2.next_incoming(5)
                assert got.invite is not None and got.invite.sip_uri.user == "2001"
                assert b2.incoming.empty()
                await call.wait_answered(5)
                await call.hangup()
                await a2.unregister()
                await b2.unregister()
            await caller.unregister()

    run(scenario, timeout=40)


def test_clicktocall_rings_the_registered_origin(sip_central: SipCentral):
    t = sip_central.target
    destino = "56453377"
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with UserAgent(ua_config_for(t, "2002", auto_answer=0.2)) as ua:
            assert (await ua.register()).status == 200
            with ApiClient(t) as api:
                answer = await asyncio.to_thread(api.call, "clicktocall", origem="2002", destino=destino)
                status, ok, key, c2c_id = answer.value
                assert (status, ok, key) == ("Status", "CHAMADA OK", "ID")
                seen["id"] = c2c_id
                call = await ua.next_incoming(5)  # C2C-2: the origin rings
                assert call.remote_uri.sip_uri.user == destino
                await call.wait_answered(5)
                await asyncio.sleep(0.6)  # the far end (destino) answers after 0.2 s
                seen.update(await asyncio.to_thread(_ramais, api))
                await call.send_dtmf("9")
                assert await call.hangup() == 200
            assert [e.label for e in ua.log.for_call(call.call_id) if e.direction == OUT][:2] == [
                "180 Ringing [INVITE]",
                "200 OK (SDP) [INVITE]",
            ]
            assert [e.label for e in ua.log.for_call(call.call_id) if e.direction == IN][:2] == ["INVITE (SDP)", "ACK"]
            await ua.unregister()

    run(scenario)
    r = seen["2002"]
    assert (r["Status"], r["StatusCanal"], r["Direcao"], r["Callerid"]) == ("In use", "Up", "SAIDA", destino)
    rec = sip_central.call(lambda: sip_central.side.store.call_by_clicktocall(seen["id"]))
    assert rec is not None and rec["statuschamada"] == "ANSWER" and rec["numero"] == destino
    assert rec["gravacao"] == r["GRAVACAO"]
    with ApiClient(t) as api:
        got = api.recording(rec["gravacao"])
        assert got.status_code == 200 and len(got.content) == int(rec["tamanho_gravacao"])


def test_password_never_reaches_the_log_or_the_pcap(sip_central: SipCentral, tmp_path):
    from pbxcheck.sip.drivers.craft import write_pcap

    ext = sip_central.target.extension("5545")

    async def scenario() -> None:
        cfg = ua_config_for(sip_central.target, "5545")
        assert ext.password not in repr(cfg)
        async with UserAgent(cfg) as ua:
            assert (await ua.register()).status == 200
            call = await ua.call(OUTSIDE, timeout=5)
            await call.hangup()
            text = ua.log.ladder(call.call_id) + render_ladder(ua.log, with_messages=True)
            assert "response=" in text  # digest responses may appear ...
            assert ext.password not in text  # ... the password never
            write_pcap(list(ua.log), tmp_path / "call.pcap")
            assert ext.password.encode() not in (tmp_path / "call.pcap").read_bytes()

    run(scenario)


@pytest.mark.parametrize("transport", ["TCP", "WS", "WSS"])
def test_callee_on_a_stream_transport_is_reached_on_its_connection(sip_central: SipCentral, transport: str):
    """A device registered over TCP or WebSocket (RFC 7118: its Contact host is ``*.invalid``) gets
    its INVITE on the very connection it registered on."""
    t = sip_central.target

    async def scenario() -> None:
        callee_ext = "7777" if transport.startswith("WS") else "2002"
        async with (
            UserAgent(ua_config_for(t, "2001")) as a,
            UserAgent(ua_config_for(t, callee_ext, transport=transport, auto_answer=0.1)) as b,
        ):
            assert (await a.register()).status == 200 and (await b.register()).status == 200
            call = await a.call(callee_ext, timeout=5)
            got = await b.next_incoming(5)
            assert got.invite_flow is not None and got.invite_flow.transport == transport
            await got.wait_answered(5)
            assert await call.hangup() == 200
            await got.wait_ended(5)

    run(scenario)


def test_b2bua_relays_a_rejection_and_a_cancel(sip_central: SipCentral):
    """The callee's 486 reaches the caller; a caller that gives up while the callee rings CANCELs,
    gets 487, and the callee's INVITE is CANCELled too. Nobody stays 'In use' afterwards."""
    t = sip_central.target

    async def scenario() -> None:
        async with UserAgent(ua_config_for(t, "2001")) as a, UserAgent(ua_config_for(t, "2002", auto_answer=None)) as b:
            assert (await a.register()).status == 200 and (await b.register()).status == 200
            call = a.invite("2002", ring_timeout=5)
            ringing = await b.next_incoming(5)
            await ringing.reject(486)
            with pytest.raises(CallFailed) as failed:
                await call.wait_answered(5)
            assert failed.value.status == 486

            call = a.invite("2002", ring_timeout=5)
            ringing = await b.next_incoming(5)
            await asyncio.sleep(0.2)
            assert await call.hangup() == 487  # CANCEL while ringing
            await ringing.wait_ended(5)
            assert ringing.end_reason == "remote CANCEL"

            with pytest.raises(CallFailed) as unreachable:  # an extension with no device registered
                await a.call("4001", timeout=5)
            assert unreachable.value.status == 480

    run(scenario)
    live = sip_central.call(lambda: [ch.ramal for ch in sip_central.side.live_channels()])
    assert live == []
