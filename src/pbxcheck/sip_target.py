"""The bridge from the harness's target file to the SIP user agent: ``ua_config_for(target, "2001")``.

It lives outside ``pbxcheck.sip`` so that the SIP core and its user agent never import the harness
(``pbxcheck.target``): the dependency points from the harness to the core, not back.
"""

from __future__ import annotations

from typing import Any

from pbxcheck.sip.ua import UaConfig
from pbxcheck.target import Target


def ua_config_for(target: Target, number: str, *, transport: str = "UDP", **kw: Any) -> UaConfig:
    """The extension ``number`` of a target file, on ``transport`` (UDP/TCP/WS/WSS)."""
    ext = target.extension(number)
    port = target.sip_tcp_port if transport == "TCP" else target.sip_udp_port
    ws_url = target.sip_wss_url if transport == "WSS" else target.sip_ws_url if transport == "WS" else None
    ctx = target.sip_ssl_context() if transport == "WSS" else None
    return UaConfig(user=number, password=ext.password, domain=target.sip_host, server=(target.sip_host, port),
                    transport=transport, ws_url=ws_url, ssl_context=ctx, **kw)
