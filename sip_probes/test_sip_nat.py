"""SIP-NAT-1: two devices behind one public IP and source port ("Registro de Ramais", last paragraph).

The document: "Se outro dispositivo client enviar a mesma porta de origem haverá um conflito e o
dispositivo não irá receber chamadas corretamente salvo se o ip de internet for diferente." On
loopback every 127/8 address is local, so "two devices behind one NAT mapping" is two extensions
registering from one socket (127.0.0.1:P), and "two different public IPs, same port" is 127.0.0.2:P
and 127.0.0.3:P. A third extension calls each in turn; where each INVITE lands tells the behaviour:

* delivered: the INVITE reached the shared address with the called extension's own contact;
* crossed: it reached the address but with the *other* extension's contact (the bindings collided);
* lost: no INVITE reached us (the caller got an error or nothing).

Also, the everyday NAT case: two independent devices behind one public IP on different ports, each
counting its own nonce uses from 1, register at the same instant: both must succeed.

With different IPs both calls must be delivered (a failure). With one IP and port, the document
predicts a collision but CLAUSES.md leaves it [unspecified]: the probe records ``same-ip-port`` =
``collision`` or ``no-collision``; a target file pins the one it must be with
``[pins] "SIP-NAT-1.same-ip-port" = "collision"``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket

import pytest

from pbxcheck.checks import Observe, sipkit
from pbxcheck.checks.sipsession import SipSession
from pbxcheck.contract import ClauseId
from pbxcheck.sip.message import Request
from pbxcheck.sip.ua import UserAgent
from pbxcheck.target import Extension

NAT_IPS = ("127.0.0.2", "127.0.0.3")


def _free_port(ips: tuple[str, ...]) -> int:
    for _ in range(50):
        port = 20_000 + secrets.randbelow(30_000)
        socks = []
        try:
            for ip in ips:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((ip, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no UDP port free on every probe address")


def _user_of(uri: str) -> str:
    m = re.search(r"sips?:([^@;>]+)@", uri)
    return m.group(1) if m else ""


async def _call_each(
    sip: SipSession, caller: UserAgent, devices: list[tuple[Extension, UserAgent]], seen: list[Request]
) -> dict[str, str]:
    """Call every device's extension; for each, delivered / crossed / lost."""
    outcome: dict[str, str] = {}
    for ext, _phone in devices:
        before = len(seen)
        call = await sipkit.call(caller, ext.number, hold=0.05, ring_timeout=2.0)
        await asyncio.sleep(0.05)
        arrived = [m for m in seen[before:] if m.method == "INVITE"]
        if not arrived:
            outcome[ext.number] = "lost" + (f" ({call.failure})" if call.failure else "")
        elif any(_user_of(m.uri) == ext.number for m in arrived):
            outcome[ext.number] = "delivered"
        else:
            outcome[ext.number] = f"crossed (INVITE for {ext.number} arrived as {arrived[0].uri})"
    return outcome


@pytest.mark.clause(ClauseId.SIP_NAT_1)
def test_same_port_behind_one_and_two_ips(sip: SipSession, observe: Observe) -> None:
    a, b, c = sip.extensions(3)

    async def scenario() -> None:
        caller = await sip.phone(c, "UDP")
        reg = await sipkit.register(caller, 90)
        sip.check(
            reg and reg.status == 200,
            ClauseId.SIP_NAT_1,
            f"the caller {c.number} could not register ({reg and reg.status})",
        )

        # 1. one public IP and one source port for both devices: one socket, two registrations
        port = _free_port(("127.0.0.1",))
        pa = await sip.phone(a, "UDP", local=("127.0.0.1", port))
        pb = await sip.phone(b, "UDP", beside=pa)  # the same socket
        seen_same: list[Request] = []
        _record(seen_same, pa)
        for p in (pa, pb):
            r = await sipkit.register(p, 90)
            sip.check(
                r and r.status == 200,
                ClauseId.SIP_NAT_1,
                f"{p.config.user} could not register from 127.0.0.1:{port}",
            )
        same = await _call_each(sip, caller, [(a, pa), (b, pb)], seen_same)
        for p in (pa, pb):
            await sipkit.register(p, 0)

        # 2. two public IPs, the same source port
        port2 = _free_port(NAT_IPS)
        devices = []
        seen_two: list[Request] = []
        for ext, ip in zip((a, b), NAT_IPS, strict=True):
            p = await sip.phone(ext, "UDP", local=(ip, port2))
            _record(seen_two, p)
            r = await sipkit.register(p, 90)
            sip.check(r and r.status == 200, ClauseId.SIP_NAT_1, f"{ext.number} could not register from {ip}:{port2}")
            devices.append((ext, p))
        two = await _call_each(sip, caller, devices, seen_two)
        for _, p in devices:
            await sipkit.register(p, 0)
        await sipkit.register(caller, 0)

        # 3. two independent devices behind one IP (different ports) registering in the same instant,
        #    each counting its own nonce uses from 1: both must be able to register (recorded)
        devs = []
        for ext in (a, b):
            devs.append(await sip.phone(ext, "UDP"))  # a user agent counts its own nonce uses
        both = await asyncio.gather(*(sipkit.register(p, 90) for p in devs))
        for p in devs:
            await sipkit.register(p, 0)
        sip.check(
            all(r and r.status == 200 for r in both),
            ClauseId.SIP_NAT_1,
            "two devices behind one public IP (different source ports), each counting its own nonce uses, "
            "registered at the same instant: "
            + ", ".join(f"{p.config.user} got {r and r.status}" for p, r in zip(devs, both, strict=True))
            + " (a nonce shared between clients makes the second one's nc=1 look like a replay)",
        )

        observe(ClauseId.SIP_NAT_1, "same-ip-port.calls", same)
        observe(ClauseId.SIP_NAT_1, "different-ips.calls", two)
        collision = not all(v == "delivered" for v in same.values())
        observe(ClauseId.SIP_NAT_1, "same-ip-port", "collision" if collision else "no-collision")
        sip.check(
            all(v == "delivered" for v in two.values()),
            ClauseId.SIP_NAT_1,
            f"from different IPs with the same port ({NAT_IPS[0]}:{port2}, {NAT_IPS[1]}:{port2}) both "
            f"devices must get their calls; got {two}",
        )

    sip.run(scenario(), timeout=25)


def _record(seen: list[Request], phone: UserAgent) -> None:
    """Every request that reaches the phone's socket, before its agents answer it."""
    assert phone.port is not None
    phone.port.on_message = lambda req, flow: seen.append(req)
