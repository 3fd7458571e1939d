"""SIP-INV-1 and SIP-INV-2: a call end to end, as in "Efetuando Chamadas com dispositivo SIP".

Two extensions of the target file, both ours: the callee registers and answers (183 with SDP, then
200 with SDP after a short ring); the caller does what the document's device does (INVITE with SDP,
401, ACK, INVITE with Authorization, 100, 183, 200, ACK, and later BYE, 200). Calling our own second
extension keeps the probe self-contained on any central: no outside number is ever dialled.

A proxy (a plain registrar such as Kamailio) challenges the INVITE with 407 Proxy-Authenticate rather
than the document's 401; both are a digest challenge the device answers the same way, so the probe
accepts either and records which one it saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from pbxcheck.checks import Observe, sipkit
from pbxcheck.checks.sipsession import SipSession
from pbxcheck.contract import RTP_PORT_RANGE, SIP_INV2_CODECS, TELEPHONE_EVENT_PT, ClauseId
from pbxcheck.sip.message import Response
from pbxcheck.sip.ua import Call, UserAgent

TRANSPORTS = ["UDP", "TCP"]


async def _call(sip: SipSession, transport: str) -> tuple[Call, UserAgent]:
    caller_ext, callee_ext = sip.extensions(2)
    callee = await sip.phone(callee_ext, transport)
    reg = await sipkit.register(callee, 90)
    sip.check(
        reg and reg.status == 200,
        ClauseId.SIP_INV_1,
        f"the callee {callee_ext.number} could not register ({reg and reg.status}); no call can be tested",
    )
    caller = await sip.phone(caller_ext, transport)
    reg = await sipkit.register(caller, 90)
    sip.check(
        reg and reg.status == 200,
        ClauseId.SIP_INV_1,
        f"the caller {caller_ext.number} could not register ({reg and reg.status})",
    )
    call = await sipkit.call(caller, callee_ext.number)
    await sipkit.register(caller, 0)
    await sipkit.register(callee, 0)
    return call, callee


@dataclass
class SdpSummary:
    """What SIP-INV-2 reads of an SDP answer, leniently (a wrong answer is reported, not rejected)."""

    port: int | None
    payloads: list[int]
    rtpmap: dict[int, str]

    @classmethod
    def read(cls, body: bytes) -> SdpSummary:
        text = body.decode("utf-8", "replace")
        m = re.search(r"^m=audio\s+(\d+)\s+\S+((?:\s+\d+)*)\s*$", text, re.MULTILINE)
        rtpmap = {int(a): b.split("/")[0] for a, b in re.findall(r"^a=rtpmap:(\d+)\s+(\S+)", text, re.MULTILINE)}
        return cls(int(m.group(1)) if m else None, [int(x) for x in m.group(2).split()] if m else [], rtpmap)


def _lines(responses: list[Response]) -> str:
    return ", ".join(r.start_line for r in responses) or "(nothing)"


@pytest.mark.clause(ClauseId.SIP_INV_1)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_invite_call_flow(sip: SipSession, observe: Observe, transport: str) -> None:
    """INVITE → 401 → ACK → INVITE+auth → 100 → 183 (SDP) → 200 (SDP) → ACK → BYE → 200."""

    async def scenario() -> None:
        call, callee = await _call(sip, transport)
        first, authenticated = call.answers_to("INVITE", 0), call.answers_to("INVITE")
        challenge = sipkit.final(first)
        sip.check(challenge is not None, ClauseId.SIP_INV_1, "no final answer to the first INVITE")
        assert challenge is not None
        sip.check(
            challenge.status in (401, 407),
            ClauseId.SIP_INV_1,
            f"an INVITE without credentials must be challenged (401, as in the document); got {_lines(first)}",
        )
        observe(ClauseId.SIP_INV_1, f"invite-challenge.{transport}", challenge.status)
        codes = [r.status for r in authenticated]
        sip.check(
            call.answered.is_set(),
            ClauseId.SIP_INV_1,
            f"the authenticated INVITE did not end in 200 OK: {call.failure or 'no final answer'}; "
            f"answers {_lines(authenticated)}",
        )
        sip.check(
            100 in codes, ClauseId.SIP_INV_1, f"no 100 Trying to the authenticated INVITE: {_lines(authenticated)}"
        )
        p183 = [r for r in authenticated if r.status == 183]
        sip.check(p183, ClauseId.SIP_INV_1, f"no 183 Session Progress before the 200: {_lines(authenticated)}")
        sip.check(any(sipkit.has_sdp(r) for r in p183), ClauseId.SIP_INV_1, "the 183 Session Progress carries no SDP")
        ok = sipkit.final(authenticated)
        sip.check(ok is not None and sipkit.has_sdp(ok), ClauseId.SIP_INV_1, "the 200 OK to the INVITE carries no SDP")
        sip.check(
            codes.index(100) < codes.index(183) < codes.index(200),
            ClauseId.SIP_INV_1,
            f"answers out of the document's order (100, 183, 200): {_lines(authenticated)}",
        )
        sip.check(callee.calls_in(), ClauseId.SIP_INV_1, "the callee's registered binding never received the INVITE")
        bye = call.answers_to("BYE")
        sip.check(
            (f := sipkit.final(bye)) is not None and f.status == 200,
            ClauseId.SIP_INV_1,
            f"BYE must get 200 OK; got {_lines(bye)}",
        )

    sip.run(scenario())


@pytest.mark.clause(ClauseId.SIP_INV_2)
@pytest.mark.parametrize("transport", ["UDP"])
def test_invite_codecs_and_rtp_port(sip: SipSession, observe: Observe, transport: str) -> None:
    """The answer picks from G729/PCMU/PCMA/GSM (+ telephone-event) and gives an RTP port in 10000-20000."""

    async def scenario() -> None:
        call, _ = await _call(sip, transport)
        sip.check(
            call.answered.is_set(),
            ClauseId.SIP_INV_2,
            f"the call did not get answered, no SDP answer to check: {call.failure or 'no final answer'}",
        )
        answers = [r for r in call.answers_to("INVITE") if sipkit.has_sdp(r)]
        offered = set(SIP_INV2_CODECS) | {TELEPHONE_EVENT_PT}
        lo, hi = RTP_PORT_RANGE
        for r in answers:
            s = SdpSummary.read(r.body)
            observe(ClauseId.SIP_INV_2, f"answer.{r.status}", {"port": s.port, "payloads": s.payloads})
            sip.check(s.port is not None, ClauseId.SIP_INV_2, f"the SDP of {r.start_line!r} has no m=audio line")
            sip.check(
                s.port is not None and lo <= s.port <= hi,
                ClauseId.SIP_INV_2,
                f"the SDP of {r.start_line!r} answers RTP port {s.port}, outside {lo}-{hi}",
            )
            audio = [p for p in s.payloads if p != TELEPHONE_EVENT_PT]
            sip.check(audio, ClauseId.SIP_INV_2, f"the SDP of {r.start_line!r} picks no audio codec: {s.payloads}")
            foreign = [p for p in s.payloads if p not in offered and s.rtpmap.get(p, "").lower() != "telephone-event"]
            sip.check(
                not foreign,
                ClauseId.SIP_INV_2,
                f"the SDP of {r.start_line!r} picks payload(s) {foreign} "
                f"({', '.join(s.rtpmap.get(p, '?') for p in foreign)}), which were not offered "
                f"(offered: 18 G729, 0 PCMU, 8 PCMA, 3 GSM, 101 telephone-event)",
            )

    sip.run(scenario())
