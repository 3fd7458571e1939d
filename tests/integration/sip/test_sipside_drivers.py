"""The drivers that are not the user agent's: blocking sockets (also under gevent, as Locust runs
them), scapy-crafted datagrams from a chosen source, and pcaps of a user agent's log."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sip_harness import SipCentral, run

from pbxcheck.sip.drivers.blocking import BlockingTcp, BlockingUdp, register_once
from pbxcheck.sip.drivers.craft import RawSender, read_pcap_payloads, write_pcap
from pbxcheck.sip.ua import UserAgent
from pbxcheck.sip_target import ua_config_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def test_blocking_udp_and_tcp_register(sip_central: SipCentral):
    t = sip_central.target
    ext = t.extension("6961")
    with BlockingUdp((t.sip_host, t.sip_udp_port)) as udp:
        assert register_once(udp, "6961", ext.password, t.sip_host) == 200
        assert register_once(udp, "6961", "wrong", t.sip_host) == 401
        assert register_once(udp, "6961", ext.password, t.sip_host, expires=0) == 200
    with BlockingTcp((t.sip_host, t.sip_tcp_port)) as tcp:
        assert register_once(tcp, "6961", ext.password, t.sip_host) == 200
        assert register_once(tcp, "6961", ext.password, t.sip_host, expires=0) == 200


def test_blocking_driver_is_cooperative_under_gevent(sip_central: SipCentral):
    """Locust's situation: gevent monkey-patches socket, 20 greenlets register concurrently in one
    thread; they only finish in time if the driver's waits yield to each other."""
    pytest.importorskip("gevent")
    t = sip_central.target
    ext = t.extension("5545")
    script = textwrap.dedent(f"""
        from gevent import monkey; monkey.patch_all()
        import gevent, json, time
        from pbxcheck.sip.drivers.blocking import BlockingUdp, register_once
        def one():
            with BlockingUdp(({t.sip_host!r}, {t.sip_udp_port})) as c:
                return register_once(c, "5545", {ext.password!r}, {t.sip_host!r}, expires=30)
        t0 = time.monotonic()
        jobs = [gevent.spawn(one) for _ in range(20)]
        gevent.joinall(jobs, timeout=20)
        print(json.dumps({{"statuses": [j.value for j in jobs], "seconds": round(time.monotonic() - t0, 2)}}))
    """)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3] / "src"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=40, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["statuses"] == [200] * 20, result


def test_crafted_datagram_from_a_chosen_source(sip_central: SipCentral):
    """A REGISTER crafted with source 127.0.0.3:5070 (raw socket, scapy-built IP/UDP) is answered
    to that address, where a plain socket picks the 401 up."""
    t = sip_central.target
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        listener.bind(("127.0.0.3", 0))
    except OSError:
        pytest.skip("127.0.0.3 not bindable")
    listener.settimeout(3)
    src = listener.getsockname()
    msg = (
        f"REGISTER sip:{t.sip_host} SIP/2.0\r\nVia: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bKcraft1\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:2001@{t.sip_host}>;tag=c1\r\nTo: <sip:2001@{t.sip_host}>\r\n"
        f"Call-ID: craft1\r\nCSeq: 1 REGISTER\r\nContact: <sip:2001@{src[0]}:{src[1]}>\r\nContent-Length: 0\r\n\r\n"
    )
    try:
        sender = RawSender()
    except Exception as exc:  # no CAP_NET_RAW outside root
        listener.close()
        pytest.skip(str(exc))
    with sender:
        sender.send_udp(msg.encode(), src, (t.sip_host, t.sip_udp_port))
    try:
        answer = listener.recv(65535)
    finally:
        listener.close()
    assert answer.startswith(b"SIP/2.0 401 "), answer[:80]


def test_pcap_of_a_registration(sip_central: SipCentral, tmp_path: Path):
    async def scenario() -> list:
        async with UserAgent(ua_config_for(sip_central.target, "2002")) as ua:
            assert (await ua.register()).status == 200
            await ua.unregister()
            return list(ua.log)

    entries = run(scenario)
    path = tmp_path / "register.pcap"
    assert write_pcap(entries, path) == len(entries) == 6
    payloads = read_pcap_payloads(path)
    assert [p.split(b"\r\n", 1)[0] for p in payloads] == [e.data.split(b"\r\n", 1)[0] for e in entries]
