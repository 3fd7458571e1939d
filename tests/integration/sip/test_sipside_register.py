"""REGISTER against the reference central's SIP side: digest, Expires, nonces, ramal-web, classe5.

Clauses: SIP-REG-1 (401 then 200 over UDP, TCP, and WS/WSS), SIP-REG-2 (wrong password and unknown
extension answered alike), SIP-REG-3 (Expires honoured, 0 removes), SIP-SEC-1 (stale and replayed
nonces, nonces bound to the source IP), SIP-WS-1 (ramal-web only), C5-1 (blocked client: 403).
"""

from __future__ import annotations

import asyncio
import re
import secrets

import pytest
from sip_harness import SipCentral, run

from pbxcheck.client import ApiClient
from pbxcheck.sip import digest
from pbxcheck.sip.drivers.blocking import BlockingUdp
from pbxcheck.sip.drivers.craft import register_bytes
from pbxcheck.sip.message import Response
from pbxcheck.sip.parser import parse_message
from pbxcheck.sip.ua import UserAgent
from pbxcheck.sip_target import ua_config_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

NONCE = re.compile(r"^\d{10}/[0-9a-f]{40}$")  # Asterisk style <epoch>/<hex>


def challenge_of(resp: Response) -> digest.Challenge:
    value = resp.headers.get("WWW-Authenticate")
    assert value is not None, f"401 without WWW-Authenticate:\n{resp}"
    return digest.Challenge.parse(value)


@pytest.mark.parametrize("transport,ext", [("UDP", "2001"), ("TCP", "2001"), ("WS", "7777"), ("WSS", "7777")])
def test_register_challenge_then_200_refresh_and_unregister(sip_central: SipCentral, transport: str, ext: str):
    async def scenario() -> None:
        async with UserAgent(ua_config_for(sip_central.target, ext, transport=transport)) as ua:
            reg = await ua.register()
            assert reg.status == 200, ua.log.ladder()
            assert [c.status for c in reg.challenges] == [401]
            ch = challenge_of(reg.challenges[0])
            assert (ch.realm, ch.algorithm, ch.qop, ch.stale) == ("xhand", "MD5", ("auth",), False)
            assert ch.opaque and NONCE.match(ch.nonce), ch
            assert reg.expires == 90  # the document's device asks for 90 and gets it
            assert sip_central.registered(ext)
            again = await ua.register()  # refresh: credentials at once, next nc on the same nonce
            assert (again.status, again.attempts) == (200, 1)
            gone = await ua.unregister()
            assert gone.status == 200
            assert not sip_central.registered(ext)

    run(scenario)


def _final_register(sip_central: SipCentral, ext: str, password: str) -> tuple[Response, Response]:
    """(first challenge, answer to our credentials) for ``ext`` with ``password``."""

    async def scenario() -> tuple[Response, Response]:
        cfg = ua_config_for(sip_central.target, "2001")
        cfg.user, cfg.password = ext, password
        async with UserAgent(cfg) as ua:
            reg = await ua.register(max_challenges=1)
            return reg.challenges[0], reg.response

    return run(scenario)


def _shape(resp: Response) -> tuple[object, ...]:
    ch = challenge_of(resp)
    return (
        resp.status,
        resp.reason,
        [n for n, _ in resp.headers],
        ch.realm,
        ch.opaque,
        ch.algorithm,
        ch.qop,
        ch.stale,
        bool(NONCE.match(ch.nonce)),
        len(resp.body),
    )


def test_wrong_password_and_unknown_extension_get_the_same_401(sip_central: SipCentral):
    first_wrong, wrong = _final_register(sip_central, "2001", "not-the-password")
    first_unknown, unknown = _final_register(sip_central, "9999", "whatever")
    assert wrong.status == 401 and unknown.status == 401
    assert _shape(wrong) == _shape(unknown) == _shape(first_wrong) == _shape(first_unknown)
    assert not sip_central.registered("9999")


def test_expires_is_honoured_and_zero_removes(sip_central: SipCentral):
    async def scenario() -> None:
        async with UserAgent(ua_config_for(sip_central.target, "2002")) as ua:
            reg = await ua.register(expires=1)
            assert (reg.status, reg.expires) == (200, 1)
            assert sip_central.registered("2002")
            await asyncio.sleep(1.3)
            assert not sip_central.registered("2002"), "binding outlived its Expires"
            assert (await ua.register(expires=60)).expires == 60
            assert sip_central.registered("2002")
            assert (await ua.register(expires=0)).status == 200
            assert not sip_central.registered("2002")
            capped = await ua.register(expires=86400)
            assert capped.status == 200 and capped.expires == 3600  # the registrar caps, and says so
            await ua.unregister()

    run(scenario)


def test_stale_nonce_gets_stale_true_then_200(sip_central: SipCentral):
    async def scenario() -> None:
        async with UserAgent(ua_config_for(sip_central.target, "5545")) as ua:
            assert (await ua.register()).status == 200
            await asyncio.sleep(3.1)  # > the test central's nonce lifetime (2 s)
            again = await ua.register()
            assert again.status == 200, ua.log.ladder()
            assert [challenge_of(c).stale for c in again.challenges] == [True]
            await ua.unregister()

    run(scenario)


def test_replayed_authorization_and_foreign_ip_nonce_are_refused(sip_central: SipCentral):
    """A captured Authorization replayed (new branch, same nonce and nc) and a nonce used from
    another source IP never get 200 (SIP-SEC-1)."""
    t = sip_central.target
    ext = t.extension("6961")
    server = (t.sip_host, t.sip_udp_port)
    call_id = secrets.token_hex(8)
    with BlockingUdp(server, local=("127.0.0.1", 0)) as a, BlockingUdp(server, local=("127.0.0.3", 0)) as b:
        a.send(register_bytes(t.sip_host, "6961", a.local, call_id, 1, expires=60))
        ch = challenge_of(parse_message(a.recv() or b""))  # type: ignore[arg-type]
        uri = f"sip:{t.sip_host}"
        creds = str(digest.build_authorization(ch, "6961", ext.password, "REGISTER", uri, nc=1))
        a.send(register_bytes(t.sip_host, "6961", a.local, call_id, 2, authorization=creds, expires=60))
        ok = parse_message(a.recv() or b"")
        assert isinstance(ok, Response) and ok.status == 200
        a.send(
            register_bytes(t.sip_host, "6961", a.local, call_id, 3, authorization=creds, expires=60)
        )  # the same credentials again
        replay = parse_message(a.recv() or b"")
        assert isinstance(replay, Response) and replay.status == 401
        # the nonce was issued to 127.0.0.1: from 127.0.0.3 even fresh, correct credentials fail
        creds2 = str(digest.build_authorization(ch, "6961", ext.password, "REGISTER", uri, nc=2))
        b.send(register_bytes(t.sip_host, "6961", b.local, call_id, 4, authorization=creds2, expires=60))
        foreign = parse_message(b.recv() or b"")
        assert isinstance(foreign, Response) and foreign.status == 401
        assert not challenge_of(foreign).stale
        a.send(register_bytes(t.sip_host, "6961", a.local, call_id, 5, expires=0))
        a.recv()


def test_ws_register_needs_ramal_web(sip_central: SipCentral):
    async def scenario() -> None:
        for transport in ("WS", "WSS"):
            async with UserAgent(ua_config_for(sip_central.target, "2001", transport=transport)) as ua:
                reg = await ua.register()
                assert reg.status == 403, ua.log.ladder()
                assert [c.status for c in reg.challenges] == [401]  # refused only after authenticating
                assert not sip_central.registered("2001")

    run(scenario)


def test_blocked_classe5_client_gets_403_until_unblocked(sip_central: SipCentral):
    t = sip_central.target
    ext = next(e for e in t.extensions if e.classe5_client == t.disposable_classe5)

    async def register_and_call() -> tuple[int, int]:
        async with UserAgent(ua_config_for(t, ext.number)) as ua:
            reg = await ua.register()
            call = ua.invite("944511712", ring_timeout=5)
            try:
                await call.wait_answered(5)
            except Exception:
                pass
            status = call.final.status if call.final else 0
            if call.state == "confirmed":
                await call.hangup()
            if reg.status == 200:
                await ua.unregister()
            return reg.status, status

    with ApiClient(t) as api:
        assert api.call("bloqueioclasse5", logincliente=t.disposable_classe5, classe5acao="BLOQUEAR").value
        try:
            assert run(register_and_call) == (403, 403)
        finally:
            api.call("bloqueioclasse5", logincliente=t.disposable_classe5, classe5acao="DESBLOQUEAR")
        assert run(register_and_call) == (200, 200)


@pytest.mark.parametrize("sent_by", [("192.0.2.7", 5999), ("phone.invalid", 5999)])
def test_via_received_and_rport_filled_in(sip_central: SipCentral, sent_by: tuple[str, int]):
    """RFC 3581 §4 / RFC 3261 §18.2.1: a Via whose sent-by is not where the request came from (an
    address behind a NAT, or a name) with an empty ``rport`` is answered with ``received=<source IP>``
    and ``rport=<source port>`` in the top Via, and the answer goes to that source port."""
    t = sip_central.target
    with BlockingUdp((t.sip_host, t.sip_udp_port), local=("127.0.0.1", 0)) as a:
        a.send(register_bytes(t.sip_host, "2001", sent_by, secrets.token_hex(8), 1, expires=60))
        data = a.recv()  # arrives here, at the real source port, not at sent-by's 5999
        assert data is not None, "no answer at the request's source port"
        resp = parse_message(data)
        assert isinstance(resp, Response) and resp.status == 401, resp
        via = resp.top_via
        assert (via.host, via.port) == sent_by  # sent-by itself is left as the device wrote it
        assert via.received == "127.0.0.1", str(via)
        assert via.rport == a.local[1], str(via)


def test_via_received_only_when_no_rport(sip_central: SipCentral):
    """Without ``rport`` the central still adds ``received`` when sent-by is not the source
    address (RFC 3261 §18.2.1), and adds no ``rport`` of its own."""
    t = sip_central.target
    with BlockingUdp((t.sip_host, t.sip_udp_port), local=("127.0.0.1", 0)) as a:
        raw = register_bytes(t.sip_host, "2001", ("192.0.2.7", 5999), secrets.token_hex(8), 1, expires=60)
        a.send(raw.replace(b";rport;", b";", 1))
        resp = parse_message(a.recv() or b"")
        assert isinstance(resp, Response) and resp.status == 401, resp
        via = resp.top_via
        assert via.received == "127.0.0.1" and not via.has_rport, str(via)
