"""The central's SIP sockets, bound by ``server.Central`` before anything starts (port 0 works, the
target file carries the real ports) and handed to the SIP side (``central/sip/service.py``)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field


@dataclass
class SipSockets:
    udp: socket.socket
    tcp: socket.socket
    wss: socket.socket
    ws: socket.socket
    ports: dict[str, int] = field(default_factory=dict)

    def close(self) -> None:
        for s in (self.udp, self.tcp, self.wss, self.ws):
            s.close()


def tcp_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        s.listen(1024)
    except OSError as exc:
        s.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    s.setblocking(False)
    return s


def sip_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP bound to the same port number (port 0: a number free for both)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            udp.bind((host, port))
        except OSError as exc:
            udp.close()
            raise OSError(f"cannot bind SIP UDP {host}:{port}: {exc.strerror or exc}") from None
        try:
            tcp = tcp_socket(host, udp.getsockname()[1])
        except OSError:
            udp.close()
            if port:
                raise
            continue
        udp.setblocking(False)
        return udp, tcp
    raise OSError("no port free for both SIP UDP and TCP")
