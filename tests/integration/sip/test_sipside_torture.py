"""SIP-SEC-1: the 49 RFC 4475 torture messages, then 10,000 randomly mutated messages, sent over UDP as
fast as the central drains them; afterwards the central still answers a well-formed REGISTER, and no
handler raised (every bad input was answered or dropped on purpose, not by accident)."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

import pytest
from sip_harness import TEST_SETTINGS, SipCentral, run, running_central

from pbxcheck.sip.aio import SipTimeout
from pbxcheck.sip.ua import UserAgent
from pbxcheck.sip_target import ua_config_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "rfc4475"
MUTATED = 10_000
BUDGET_S = 40.0  # the whole flood is bounded in time, whatever the machine


def torture_messages() -> dict[str, bytes]:
    """The RFC's 49 messages (``test.dat`` is in the RFC's archive but in none of its sections)."""
    return {p.stem: p.read_bytes() for p in sorted(FIXTURES.glob("*.dat")) if p.stem != "test"}


def _seed_messages(target) -> list[bytes]:
    h = target.sip_host
    register = (
        f"REGISTER sip:{h} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.5:5060;rport;branch=z9hG4bKseed1\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:2001@{h}>;tag=s1\r\nTo: <sip:2001@{h}>\r\nCall-ID: seed1\r\n"
        f"CSeq: 1 REGISTER\r\nContact: <sip:2001@127.0.0.5:5060>\r\nExpires: 90\r\n"
        f'Authorization: Digest username="2001", realm="xhand", nonce="1/00", uri="sip:{h}", '
        f'response="00", qop=auth, nc=00000001, cnonce="x"\r\nContent-Length: 0\r\n\r\n'
    ).encode()
    body = (
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.5\r\ns=-\r\nc=IN IP4 127.0.0.5\r\nt=0 0\r\nm=audio 6000 RTP/AVP 18 0 8 101\r\n"
    )
    invite = (
        f"INVITE sip:944511712@{h} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.5:5060;branch=z9hG4bKseed2\r\n"
        f'Max-Forwards: 70\r\nFrom: "RAMAL" <sip:6961@{h}>;tag=s2\r\nTo: <sip:944511712@{h}>\r\n'
        f"Call-ID: seed2\r\nCSeq: 2 INVITE\r\nContact: <sip:6961@127.0.0.5:5060>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    bye = invite.replace(b"INVITE sip", b"BYE sip").replace(b"2 INVITE", b"3 BYE")
    return [register, invite, bye]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One of the classic mutations: flip, insert, delete, truncate, duplicate a line, splice junk."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            break
        op = rng.randrange(7)
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i:i] = bytes([rng.choice(b':;,<>"\\ \t\r\n\x00%=@/0123456789\xff')]) * rng.randint(1, 64)
        elif op == 2:
            del b[i : i + rng.randint(1, 32)]
        elif op == 3:
            del b[i:]
        elif op == 4:
            lines = bytes(b).split(b"\r\n")
            j = rng.randrange(len(lines))
            lines.insert(j, lines[rng.randrange(len(lines))])
            b = bytearray(b"\r\n".join(lines))
        elif op == 5:
            b[i:i] = rng.randbytes(rng.randint(1, 100))
        else:
            # a number made huge or negative (Content-Length, CSeq, Expires, ports)
            digits = [k for k, c in enumerate(b) if 48 <= c <= 57]
            if digits:
                k = rng.choice(digits)
                b[k : k + 1] = rng.choice([b"99999999999999999999", b"-1", b"4294967296", b"0"])
    return bytes(b[:60_000])


def _register_ok(central: SipCentral, ext: str = "2001", timeout: float = 5.0) -> int:
    async def scenario() -> int:
        async with UserAgent(ua_config_for(central.target, ext, timeout=timeout)) as ua:
            reg = await ua.register()
            if reg.status == 200:
                await ua.unregister()
            return reg.status

    return run(scenario, timeout=15)


def test_rfc4475_and_10000_mutations_leave_the_central_answering(sip_central: SipCentral):
    t = sip_central.target
    server = (t.sip_host, t.sip_udp_port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.5", 0))
    sock.setblocking(False)
    answers: dict[str, list[bytes]] = {}
    try:
        messages = torture_messages()
        assert len(messages) == 49
        for name, data in messages.items():
            sock.sendto(data, server)
            deadline = time.monotonic() + 0.3
            got: list[bytes] = []
            while time.monotonic() < deadline:
                try:
                    got.append(sock.recv(65535))
                except BlockingIOError:
                    if got:
                        break
                    time.sleep(0.005)
            answers[name] = got
        # the RFC's invalid messages get 400 or silence, never a success
        for name in (
            "badinv01",
            "clerr",
            "ncl",
            "scalar02",
            "scalarlg",
            "quotbal",
            "ltgtruri",
            "lwsruri",
            "escruri",
            "baddn",
            "badvers",
            "mismatch01",
            "mismatch02",
        ):
            for a in answers[name]:
                status = a.split(b" ", 2)[1]
                assert not status.startswith(b"2"), (name, a[:80])
        for name, status in (
            ("zeromf", b"483"),
            ("bext01", b"420"),
            ("unkscm", b"416"),
            ("insuf", b"400"),
            ("badvers", b"505"),
        ):
            assert any(a.split(b" ", 2)[1] == status for a in answers[name]), (name, answers[name][:1])

        rng = random.Random(4475)
        seeds = list(messages.values()) + _seed_messages(t)
        start = time.monotonic()
        sent = 0
        while sent < MUTATED and time.monotonic() - start < BUDGET_S:
            for _ in range(200):
                try:
                    sock.sendto(mutate(rng, rng.choice(seeds)), server)
                except OSError:
                    pass  # EMSGSIZE and the like: a datagram the kernel refuses is not sent at all
                sent += 1
            time.sleep(0.02)  # let the central drain; a full socket buffer would only drop datagrams
            while True:
                try:
                    sock.recv(65535)
                except BlockingIOError:
                    break
        assert sent >= MUTATED, f"only {sent} mutated messages sent in {BUDGET_S} s"
    finally:
        sock.close()
    time.sleep(0.5)
    assert _register_ok(sip_central) == 200
    errors = sip_central.call(
        lambda: (sip_central.side.endpoint.handler_errors, repr(sip_central.side.endpoint.last_error))
    )
    assert errors[0] == 0, f"{errors[0]} handler exceptions, last: {errors[1]}"
    stats = sip_central.call(lambda: dict(sip_central.side.stats))
    assert stats["parse_errors"] > 100 and stats["rejected"] > 10, stats


def test_crash_on_torture_fault_stops_answering():
    """The fault the probes must catch: after one malformed message the central goes silent."""
    with running_central(faults=("crash-on-torture",), settings=TEST_SETTINGS) as central:
        assert _register_ok(central) == 200
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(torture_messages()["badinv01"], (central.target.sip_host, central.target.sip_udp_port))
        sock.close()
        time.sleep(0.2)
        with pytest.raises(SipTimeout):
            _register_ok(central, timeout=1.0)
