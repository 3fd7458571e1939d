"""Cost of the sans-IO SIP core per message: parse, build/serialise, and the usual follow-ups.

    /work/venv/bin/python bench/bench_sip_core.py [--number N] [--repeat R]

Each figure is the best of R timeit runs of N calls, divided by N, in microseconds of process CPU
time (``time.process_time``: on a shared machine wall time mostly measures the neighbours), best-of
rather than mean because the minimum is the cost of the code and the rest is noise.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import timeit
from collections.abc import Callable

from pbxcheck.sip import headers, samples
from pbxcheck.sip.digest import Challenge, build_authorization, verify
from pbxcheck.sip.engine import Engine, IncomingResponse
from pbxcheck.sip.flow import Flow
from pbxcheck.sip.message import Request, make_request, make_response, to_bytes
from pbxcheck.sip.parser import StreamFramer, parse_message
from pbxcheck.sip.register import make_register
from pbxcheck.sip.sdp import make_answer, make_offer, parse_sdp
from pbxcheck.sip.transaction import ServerTransaction, client_key
from pbxcheck.sip.validate import uas_precheck


def _req(data: bytes) -> Request:
    m = parse_message(data)
    assert isinstance(m, Request)
    return m


def cases() -> list[tuple[str, int, Callable[[], object]]]:
    invite = _req(samples.INVITE)
    ok = make_response(
        invite,
        200,
        to_tag="abc",
        headers=[("Contact", "<sip:944511712@203.0.113.9:7048>")],
        body=make_answer(parse_sdp(invite.body), ip="203.0.113.9", rtp_port=10000).to_bytes(),
        content_type="application/sdp",
    )
    ok_bytes = to_bytes(ok)
    offer = make_offer("192.0.2.1", 10000)
    challenge = Challenge("xhand", "1609521111/e77ebd577852317e85e4cfd479d3c3", opaque="6c9b520111a7b797")
    creds = build_authorization(challenge, "6961", "secret", "REGISTER", "sip:pbx", cnonce="c")
    stream = samples.REGISTER * 10

    def build_register() -> bytes:
        return to_bytes(
            make_request(
                "REGISTER",
                "sip:pbx.example:7048",
                from_="<sip:5545@pbx.example>;tag=abc",
                to="<sip:5545@pbx.example>",
                call_id="pqCa151br258ne2EFAMi8VTicQXSwYp1O2J9",
                cseq=57949,
                via="SIP/2.0/UDP 201.46.59.189:32670;rport;branch=z9hG4bKPjHbA6rc23vG1",
                contact="<sip:5545@201.46.59.189:32670;transport=udp>",
                headers=[("Expires", "90")],
            )
        )

    def build_invite() -> bytes:
        return to_bytes(
            make_request(
                "INVITE",
                "sip:944511712@pbx.example:7048",
                from_='"RAMAL - 6961" <sip:6961@pbx.example>;tag=Uk8',
                to="<sip:944511712@pbx.example>",
                call_id="ZlbycsRcVdqBAOyicF3xSZocQ8WNU3pRmQNO",
                cseq=14544,
                via="SIP/2.0/UDP 192.168.15.121:5060;rport;branch=z9hG4bKpJGmljPpvYD",
                contact="<sip:6961@192.168.15.121:60185>",
                body=offer.to_bytes(),
                content_type="application/sdp",
            )
        )

    def cold(data: bytes) -> Callable[[], object]:
        # A device the central has not heard from: nothing in the header-value caches.
        def parse() -> object:
            headers.parse_uri.cache_clear()
            headers._parse_name_addr.cache_clear()
            return parse_message(data)

        return parse

    def server_tx() -> object:
        tx = ServerTransaction(invite, reliable=False)
        tx.start()
        return tx

    engine = Engine()
    flow = Flow("UDP", ("203.0.113.9", 7048), ("201.46.59.189", 32670), lambda data: None)
    clock = iter(range(10**9))
    branch = samples.REGISTER.split(b"branch=", 1)[1].split(b"\r\n", 1)[0].split(b";", 1)[0]
    # 64 devices' REGISTERs (their own branches): one is repeated 64 s later, after its Timer J
    registers = [samples.REGISTER.replace(branch, branch + b"%02d" % i) for i in range(64)]

    def engine_register() -> object:
        # the central's path per REGISTER: match (a new transaction), answer 401, Timer J; the
        # clock steps 1 s per call so Timer J (32 s) keeps the table at its steady size
        t = next(clock)
        now = float(t)
        (event,) = engine.receive(registers[t % 64], flow, now)
        req = event.request  # type: ignore[union-attr]
        engine.send_response(req, make_response(req, 401, to_tag="abc"), flow, now)
        return engine.data_to_send()

    # The load generator's side (bench_sip_load): REGISTER out, the registrar's 200 in, on a lazy
    # engine as the Locust SIP user runs it; one client transaction per call, the clock stepping
    # 0.5 ms per call (2,000 transactions/s) so Timer K (5 s) keeps 10,000 completed ones alive.
    uac = Engine(lazy_responses=True)
    uac_flow = Flow("UDP", ("127.0.0.1", 40000), ("127.0.0.1", 5060), lambda data: None)
    uac_clock = iter(range(10**9))
    ok_tmpl = (
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;rport=40000;branch=BRANCH\r\n"
        "From: <sip:1000@127.0.0.1>;tag=ft\r\nTo: <sip:1000@127.0.0.1>;tag=a6a1c5f60faecf035a1ae5b6e96e979a.1\r\n"
        "Call-ID: cid-1\r\nCSeq: CSEQ REGISTER\r\nContact: <sip:1000@127.0.0.1:40000;transport=udp>;expires=300\r\n"
        "Server: kamailio (5.7.4 (x86_64/linux))\r\nContent-Length: 0\r\n\r\n"
    )
    exchanges = []  # (REGISTER, its 200), built outside the timed call; reused after Timer K
    for i in range(40_000):
        req = make_register("127.0.0.1", "1000", sent_by="127.0.0.1:40000", cseq=i + 1, call_id="cid-1", from_tag="ft")
        ok = ok_tmpl.replace("BRANCH", client_key(req)[0]).replace("CSEQ", str(i + 1)).encode()
        exchanges.append((req, ok))
    uac_next = iter(exchanges * 3)

    def engine_client() -> object:
        now = next(uac_clock) * 0.0005
        req, ok = next(uac_next)
        handle = uac.send_request(req, uac_flow, now)
        uac.data_to_send()
        (event,) = uac.receive(ok, uac_flow, now)
        assert isinstance(event, IncomingResponse) and event.handle is handle
        return event

    return [
        ("parse REGISTER, first from its device", len(samples.REGISTER), cold(samples.REGISTER)),
        ("parse REGISTER, repeated (refresh)", len(samples.REGISTER), lambda: parse_message(samples.REGISTER)),
        ("parse INVITE+SDP, first", len(samples.INVITE), cold(samples.INVITE)),
        ("parse INVITE+SDP, repeated", len(samples.INVITE), lambda: parse_message(samples.INVITE)),
        ("parse 200 OK+SDP", len(ok_bytes), lambda: parse_message(ok_bytes)),
        ("build+serialise REGISTER", 0, build_register),
        ("build+serialise INVITE+SDP", 0, build_invite),
        ("make_response 200+serialise", len(ok_bytes), lambda: to_bytes(make_response(invite, 200, to_tag="abc"))),
        ("serialise parsed INVITE", len(samples.INVITE), lambda: to_bytes(invite)),
        ("uas_precheck INVITE", 0, lambda: uas_precheck(invite)),
        ("parse SDP offer", len(invite.body), lambda: parse_sdp(invite.body)),
        ("make_answer", 0, lambda: make_answer(offer, ip="203.0.113.9", rtp_port=10000)),
        ("digest verify (MD5, qop auth)", 0, lambda: verify(creds, "secret", "REGISTER")),
        ("StreamFramer 10 REGISTERs / 10", len(stream) // 10, lambda: StreamFramer().feed(stream)),
        ("INVITE server transaction start", 0, server_tx),
        ("engine: REGISTER in, 401 out (parse incl.)", len(samples.REGISTER), engine_register),
        ("engine (lazy, client): REGISTER out, 200 in", 0, engine_client),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--number", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(
        f"Python {sys.version.split()[0]} on {platform.machine()} ({platform.system()}), "
        f"best of {args.repeat} x {args.number} calls, CPU time"
    )
    print(f"| {'operation':<44} | {'bytes':>5} | {'µs/op':>7} |")
    print(f"|{'-' * 46}|{'-' * 7}|{'-' * 9}|")
    for name, size, fn in cases():
        per = min(timeit.repeat(fn, number=args.number, repeat=args.repeat, timer=time.process_time)) / args.number
        if name.startswith("StreamFramer"):
            per /= 10
        print(f"| {name:<44} | {size or '':>5} | {per * 1e6:7.1f} |")


if __name__ == "__main__":
    main()
