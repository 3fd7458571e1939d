"""The bridge from the harness's target file to the SIP user agent: ``ua_config_for(target, "2001")``.

It lives outside ``pbxcheck.sip`` so that the SIP core and its user agent never import the harness
(``pbxcheck.target``): the dependency points from the harness to the core, not back.
"""

from __future__ import annotations

from typing import Any

from pbxcheck.sip.ua import UaConfig
from pbxcheck.target import Target


def ua_config_for(target: Target, number: str | None, *, transport: str = "UDP", **kw: Any) -> UaConfig:
    """The extension ``number`` of a target file, on ``transport`` (UDP/TCP/WS/WSS); ``None``: no
    extension, only the way to the target's SIP side (a probe's bare socket, ``user`` "probe")."""
    transport = transport.upper()
    port = target.sip_tcp_port if transport == "TCP" else target.sip_udp_port
    ws_url = target.sip_wss_url if transport == "WSS" else target.sip_ws_url if transport == "WS" else None
    ctx = target.sip_ssl_context() if transport == "WSS" else None
    if transport in ("WS", "WSS") and not ws_url:
        raise LookupError(f"the target file has no sip.{transport.lower()}_url")
    password = target.extension(number).password if number is not None else ""
    return UaConfig(
        user=number or "probe",
        password=password,
        domain=target.sip_host,
        server=(target.sip_host, port),
        transport=transport,
        ws_url=ws_url,
        ssl_context=ctx,
        **kw,
    )
