"""The location service's NAT rule (SIP-NAT-1): one flow (transport, IP, port) per device."""

from __future__ import annotations

from pbxcheck.central.sip.registration import Registrar
from pbxcheck.sip.drivers.base import Flow

CENTRAL = ("131.196.224.38", 7048)


class Clock:
    t = 1000.0

    def __call__(self) -> float:
        return self.t


def flow(ip: str, port: int, transport: str = "UDP") -> Flow:
    sent: list[bytes] = []
    return Flow(transport, CENTRAL, (ip, port), sent.append)


def test_same_ip_and_port_collide_the_later_device_wins():
    reg = Registrar(clock=Clock())
    nat = flow("201.46.59.189", 32670)
    reg.update("2001", "sip:2001@192.168.0.10:5060", nat, 90)
    reg.update("2002", "sip:2002@192.168.0.11:5060", nat, 90)
    assert reg.route("2001").contact == "sip:2002@192.168.0.11:5060"  # calls to 2001 reach 2002's device
    assert reg.route("2002").contact == "sip:2002@192.168.0.11:5060"
    assert reg.lookup("2001").contact == "sip:2001@192.168.0.10:5060"  # 2001 is still registered
    reg.remove("2002")
    assert reg.route("2001").contact == "sip:2001@192.168.0.10:5060"  # the flow is free again


def test_different_ips_same_port_do_not_collide():
    reg = Registrar(clock=Clock())
    reg.update("2001", "sip:2001@192.168.0.10:5060", flow("201.46.59.189", 5060), 90)
    reg.update("2002", "sip:2002@192.168.0.10:5060", flow("72.44.22.20", 5060), 90)
    assert reg.route("2001").flow.remote == ("201.46.59.189", 5060)
    assert reg.route("2002").flow.remote == ("72.44.22.20", 5060)


def test_no_collision_mode_keys_by_extension():
    reg = Registrar(collide=False, clock=Clock())
    nat = flow("201.46.59.189", 32670)
    reg.update("2001", "sip:2001@a", nat, 90)
    reg.update("2002", "sip:2002@b", nat, 90)
    assert reg.route("2001").contact == "sip:2001@a"


def test_expiry_and_closed_streams():
    clock = Clock()
    reg = Registrar(clock=clock)
    reg.update("2001", "sip:2001@a", flow("127.0.0.1", 5000), 90)
    clock.t += 89
    assert reg.lookup("2001") is not None
    clock.t += 2
    assert reg.lookup("2001") is None and reg.registered() == []
    tcp = flow("127.0.0.1", 5001, "TCP")
    reg.update("2002", "sip:2002@b", tcp, 90)
    tcp.mark_closed()  # the connection went away: nothing can reach the device through it
    assert reg.lookup("2002") is None
