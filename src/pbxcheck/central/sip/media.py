"""Media at the reference central (SIP-INV-2, RAM-3): SDP offer/answer, RTP ports, DTMF and the
JSON1..3 call variables carried by headers.

The SDP answer picks the first offered codec among G729/PCMA/PCMU/GSM (telephone-event echoed) and
an even RTP port in 10000-20000 (no RTP is sent or relayed: the harness checks signalling). No
common codec: None (the B2BUA answers 488). DTMF: an INFO with ``application/dtmf-relay``
``Signal=5`` or ``application/dtmf`` ``5``; call variables: headers ``X-JSON1``..``X-JSON3``.
"""

from __future__ import annotations

import re
import secrets

from pbxcheck.contract import RTP_PORT_RANGE
from pbxcheck.sip import sdp
from pbxcheck.sip.errors import SdpError
from pbxcheck.sip.message import Request

SUPPORTED = (18, 8, 0, 3)  # G729, PCMA, PCMU, GSM: what the central can answer (SIP-INV-2)
_DTMF_RELAY = re.compile(r"^signal\s*=\s*([0-9A-D*#])", re.IGNORECASE | re.MULTILINE)


class Media:
    def __init__(self, *, faults: frozenset[str] = frozenset()) -> None:
        self.faults = faults
        self._rtp_next = RTP_PORT_RANGE[0]

    def rtp_port(self) -> int:
        if "rtp-port-out-of-range" in self.faults:
            return 30000 + 2 * secrets.randbelow(5000)
        port = self._rtp_next
        self._rtp_next = port + 2 if port + 2 < RTP_PORT_RANGE[1] else RTP_PORT_RANGE[0]
        return port

    def answer(self, offer: bytes, ip: str) -> bytes | None:
        """Our SDP answer to ``offer`` (None: nothing in common, answer 488)."""
        try:
            session = sdp.parse_sdp(offer)
            answer = sdp.make_answer(
                session, SUPPORTED, ip=ip, rtp_port=self.rtp_port(), session_id=secrets.randbelow(2**31)
            )
        except SdpError:
            return None
        body = answer.to_bytes()
        if "codec-not-offered" in self.faults:
            body = re.sub(rb"m=audio (\d+) (\S+) \d+", rb"m=audio \1 \2 9", body, count=1)
            body = re.sub(rb"a=rtpmap:\d+ [A-Za-z0-9]+/8000", b"a=rtpmap:9 G722/8000", body, count=1)
        return body

    def offer(self, ip: str) -> bytes:
        codecs = SUPPORTED if "codec-not-offered" not in self.faults else (9, *SUPPORTED)
        return sdp.make_offer(ip, self.rtp_port(), codecs, session_id=secrets.randbelow(2**31)).to_bytes()


def dtmf_digit(req: Request) -> str | None:
    """The DTMF digit an INFO carries, or None."""
    text = req.body.decode("utf-8", "replace")
    if req.content_type == "application/dtmf-relay":
        m = _DTMF_RELAY.search(text)
        return m.group(1).upper() if m else None
    if req.content_type == "application/dtmf":
        t = text.strip()
        return t[:1].upper() if t[:1] and t[:1].upper() in "0123456789ABCD*#" else None
    return None


def json_headers(req: Request) -> list[tuple[int, str]]:
    """(index 0..2, value) for each ``X-JSON1``..``X-JSON3`` header on ``req``."""
    out = []
    for i in range(3):
        v = req.headers.get(f"X-JSON{i + 1}")
        if v is not None:
            out.append((i, v))
    return out
