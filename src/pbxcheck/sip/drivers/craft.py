"""Scapy: packets with a chosen source IP and port, and pcaps of what was exchanged.

Crafting is for what a socket cannot do: a source address we do not own a socket on (a "device behind
a NAT" at 127.0.0.3:5070 while the test listens elsewhere), malformed datagrams, bursts. On loopback
every 127.0.0.0/8 address is local, so the central's answers to a crafted source arrive on this host
and a plain socket bound to that address picks them up.

Sending uses a raw IPv4 socket with IP_HDRINCL (needs root or CAP_NET_RAW): scapy's own L3 sender on
``lo`` is unreliable across versions, while the kernel accepts a complete IP packet from a raw
socket as is. Only 127.0.0.0/8 destinations are allowed: this harness never sends crafted traffic
anywhere else.

scapy is imported lazily: it takes about a second to import and only these functions need it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .base import Addr


class CraftError(RuntimeError):
    """A crafted packet could not be sent (no privilege, not a loopback destination)."""


def _check_loopback(ip: str) -> None:
    if not ipaddress.ip_address(ip).is_loopback:
        raise CraftError(f"crafted packets go to 127.0.0.0/8 only, not {ip}")


def craft_udp(payload: bytes, src: Addr, dst: Addr) -> Any:
    """An IP/UDP/Raw scapy packet from ``src`` to ``dst`` carrying ``payload``."""
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw

    return IP(src=src[0], dst=dst[0]) / UDP(sport=src[1], dport=dst[1]) / Raw(load=payload)


class RawSender:
    """A raw IPv4 socket sending complete packets (scapy-built or bytes) on loopback."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        except PermissionError as exc:
            raise CraftError("crafting packets needs root or CAP_NET_RAW") from exc
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)

    def send(self, packet: Any) -> None:
        dst = packet["IP"].dst if hasattr(packet, "getlayer") else None
        if dst is None:
            raise CraftError("send() takes a scapy IP packet")
        _check_loopback(dst)
        self.sock.sendto(bytes(packet), (dst, 0))

    def send_udp(self, payload: bytes, src: Addr, dst: Addr) -> None:
        self.send(craft_udp(payload, src, dst))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send_udp_from(payload: bytes, src: Addr, dst: Addr) -> None:
    """One crafted datagram from ``src`` (any 127.x address and port) to ``dst``."""
    with RawSender() as s:
        s.send_udp(payload, src, dst)


def write_pcap(entries: Iterable[Any], path: str | Path) -> int:
    """Write a pcap of logged SIP messages (``ladder.LogEntry``); returns the packet count.

    UDP entries become IP/UDP packets; stream entries (TCP, WS, WSS) become IP/TCP segments with
    PSH|ACK and running sequence numbers, so Wireshark's SIP dissector reads them (the WebSocket and
    TLS framing is not reproduced: the pcap shows the SIP, which is what a reader needs).
    """
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    packets = []
    seq: dict[tuple[Addr, Addr], int] = {}
    for e in entries:
        src, dst = e.src, e.dst
        if e.transport == "UDP":
            pkt = IP(src=src[0], dst=dst[0]) / UDP(sport=src[1], dport=dst[1]) / Raw(load=e.data)
        else:
            n = seq.get((src, dst), 1)
            ack = seq.get((dst, src), 1)
            pkt = (
                IP(src=src[0], dst=dst[0])
                / TCP(sport=src[1], dport=dst[1], flags="PA", seq=n, ack=ack)
                / Raw(load=e.data)
            )
            seq[(src, dst)] = n + len(e.data)
        pkt.time = e.time
        packets.append(pkt)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    wrpcap(str(path), packets)
    return len(packets)


def read_pcap_payloads(path: str | Path) -> list[bytes]:
    """The UDP/TCP payloads of a pcap, in order (to replay a capture or assert on one)."""
    from scapy.packet import Raw
    from scapy.utils import rdpcap

    return [bytes(p[Raw].load) for p in rdpcap(str(path)) if p.haslayer(Raw)]


def register_bytes(
    domain: str,
    user: str,
    local: Addr,
    call_id: str,
    cseq: int,
    *,
    authorization: str | None = None,
    expires: int = 90,
    transport: str = "UDP",
) -> bytes:
    """A REGISTER as exact bytes (a fresh branch each time, the From tag drawn from the Call-ID so a
    sequence on one Call-ID keeps it), for floods and replays: the core's one builder,
    ``sip.register.make_register``, serialised."""
    from ..register import register_bytes as build

    return build(
        domain,
        user,
        sent_by=local,
        transport=transport,
        call_id=call_id,
        cseq=cseq,
        from_tag=call_id[:8],
        expires=expires,
        authorization=authorization,
    )
