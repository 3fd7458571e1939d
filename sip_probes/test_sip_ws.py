"""SIP-WS-1: SIP over WebSocket (RFC 7118) on 8089 ``/ws``, ws and wss ("Registro de Endpoints WebRTC").

An extension with "ramal-web" enabled registers and calls over the WebSocket exactly as over UDP/TCP
(401 then 200; the INVITE flow); an extension without it cannot register that way. The handshake
must offer the ``sip`` subprotocol (RFC 7118 §4): what the server does without it is recorded.
"""

from __future__ import annotations

import pytest

from pbxcheck.checks import Observe, sipkit
from pbxcheck.checks.sipsession import SipSession
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
        reg = await sipkit.register(phone, 90)
        sip.check(
            reg and reg.first.status == 401,
            ClauseId.SIP_WS_1,
            f"REGISTER over {transport} without credentials must get 401; got {reg and reg.first.status}",
        )
        sip.check(
            reg and reg.status == 200,
            ClauseId.SIP_WS_1,
            f"ramal-web extension {web.number} must register over {url}; got {reg and reg.status}",
        )
        # the INVITE flow over the WebSocket, to a callee of ours on UDP
        callee = await sip.phone(plain, "UDP")
        creg = await sipkit.register(callee, 90)
        sip.check(
            creg and creg.status == 200, ClauseId.SIP_WS_1, f"the callee {plain.number} could not register over UDP"
        )
        call = await sipkit.call(phone, plain.number)
        authenticated = call.answers_to("INVITE")
        first = sipkit.final(call.answers_to("INVITE", 0))
        sip.check(
            first is not None and first.status in (401, 407),
            ClauseId.SIP_WS_1,
            f"an INVITE over {transport} without credentials must be challenged; got "
            f"{first.start_line if first else 'silence'}",
        )
        sip.check(
            call.answered.is_set(),
            ClauseId.SIP_WS_1,
            f"the call over {transport} failed: {call.failure or 'no final answer'}",
        )
        sip.check(
            183 in [r.status for r in authenticated]
            and (ok := sipkit.final(authenticated)) is not None
            and sipkit.has_sdp(ok),
            ClauseId.SIP_WS_1,
            f"the call over {transport} did not go 183 (SDP) then 200 (SDP): {[r.status for r in authenticated]}",
        )
        bye = sipkit.final(call.answers_to("BYE"))
        sip.check(bye is not None and bye.status == 200, ClauseId.SIP_WS_1, f"BYE over {transport} must get 200")
        await sipkit.register(phone, 0)
        await sipkit.register(callee, 0)
        # an extension without ramal-web cannot register over the WebSocket
        other = await sip.phone(plain, transport)
        refused = await sipkit.register(other, 90)
        sip.check(
            refused is None or refused.status != 200,
            ClauseId.SIP_WS_1,
            f"extension {plain.number} has ramal-web disabled but registered over {url}",
        )
        observe(ClauseId.SIP_WS_1, f"no-ramal-web.{transport}", refused.response.start_line if refused else "silence")
        if refused and refused.status == 200:
            await sipkit.register(other, 0)
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
