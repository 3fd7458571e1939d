"""SIP-WS-1: SIP over WebSocket (RFC 7118) on 8089 ``/ws``, ws and wss ("Registro de Endpoints WebRTC").

An extension with "ramal-web" enabled registers and calls over the WebSocket exactly as over UDP/TCP
(401 then 200; the INVITE flow); an extension without it cannot register that way. The handshake
must offer the ``sip`` subprotocol (RFC 7118 §4): what the server does without it is recorded.
"""

from __future__ import annotations

import pytest

from pbxcheck.checks import Observe, sipkit
from pbxcheck.checks.sipkit import SipSession
from pbxcheck.contract import ClauseId
from pbxcheck.target import Target


def _url(target: Target, transport: str) -> str | None:
    return target.sip_ws_url if transport == "WS" else target.sip_wss_url


@pytest.mark.clause(ClauseId.SIP_WS_1)
@pytest.mark.parametrize("transport", ["WS", "WSS"])
def test_websocket_register_call_and_refusal(sip: SipSession, observe: Observe, transport: str) -> None:
    url = _url(sip.target, transport)
    if not url:
        pytest.skip(f"the target file has no sip.{transport.lower()}_url")
    (web,) = sip.extensions(1, ramal_web=True)
    (plain,) = sip.extensions(1, ramal_web=False)

    async def scenario() -> None:
        phone = await sip.phone(web, transport)
        reg = await phone.register(90)
        sip.check(
            reg.first_status == 401,
            ClauseId.SIP_WS_1,
            f"REGISTER over {transport} without credentials must get 401; got {reg.first_status}",
        )
        sip.check(
            reg.status == 200,
            ClauseId.SIP_WS_1,
            f"ramal-web extension {web.number} must register over {url}; got {reg.status}",
        )
        # the INVITE flow over the WebSocket, to a callee of ours on UDP
        callee = await sip.phone(plain, "UDP")
        creg = await callee.register(90)
        sip.check(creg.status == 200, ClauseId.SIP_WS_1, f"the callee {plain.number} could not register over UDP")
        res = await phone.call(plain.number)
        codes = [r.status for r in res.invite2]
        first = sipkit.final(res.invite1)
        sip.check(
            first is not None and first.status in (401, 407),
            ClauseId.SIP_WS_1,
            f"an INVITE over {transport} without credentials must be challenged; got "
            f"{first.first_line if first else 'silence'}",
        )
        sip.check(res.ok, ClauseId.SIP_WS_1, f"the call over {transport} failed: {res.problem}")
        sip.check(
            183 in codes and (final := sipkit.final(res.invite2)) is not None and final.has_sdp,
            ClauseId.SIP_WS_1,
            f"the call over {transport} did not go 183 (SDP) then 200 (SDP): {codes}",
        )
        bye = sipkit.final(res.bye)
        sip.check(bye is not None and bye.status == 200, ClauseId.SIP_WS_1, f"BYE over {transport} must get 200")
        await phone.register(0)
        await callee.register(0)
        # an extension without ramal-web cannot register over the WebSocket
        other = await sip.phone(plain, transport)
        refused = await other.register(90)
        sip.check(
            refused.status != 200,
            ClauseId.SIP_WS_1,
            f"extension {plain.number} has ramal-web disabled but registered over {url}",
        )
        observe(
            ClauseId.SIP_WS_1,
            f"no-ramal-web.{transport}",
            sipkit.final(refused.second or refused.first).first_line  # type: ignore[union-attr]
            if refused.status is not None
            else "silence",
        )
        if refused.status == 200:
            await other.register(0)
        # RFC 7118 §4: the handshake must carry the sip subprotocol
        from pbxcheck.sip.drivers.ws import ws_connect

        try:
            flow = await ws_connect(
                url, lambda d, f: None, ssl_context=sip.target.sip_ssl_context(), timeout=2.0, subprotocols=()
            )
            flow.close()
            observe(ClauseId.SIP_WS_1, f"handshake-without-subprotocol.{transport}", "accepted")
        except Exception as exc:  # refused: what the server said
            observe(ClauseId.SIP_WS_1, f"handshake-without-subprotocol.{transport}", f"refused ({type(exc).__name__})")

    sip.run(scenario())
