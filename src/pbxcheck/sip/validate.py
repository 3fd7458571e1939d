"""What a UAS / registrar checks before processing a request that parsed (RFC 3261 8.2), and the
400 for bytes that did not parse (RFC 4475 3.1.2: "respond with 400 ... or drop").

The parser only rejects what it cannot represent; application-layer faults (RFC 4475 section 3.3:
missing or repeated mandatory headers, Max-Forwards 0, unknown Require, unknown body type, unknown
URI scheme...) parse, and ``uas_precheck`` says how to answer them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pbxcheck.sip.errors import SipParseError
from pbxcheck.sip.headers import SipUri
from pbxcheck.sip.message import REASONS, Headers, Request, Response, make_response
from pbxcheck.sip.scan import scan
from pbxcheck.sip.serializer import serialize

# RFC 3261 8.1.1: every request carries these (Max-Forwards is SHOULD for RFC 2543 peers: inv2543).
MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
# Headers that may appear once only (RFC 3261 20: not list-valued).
SINGLE = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type", "Expires")


@dataclass(frozen=True, slots=True)
class Rejection:
    """The answer a UAS gives instead of processing: status, reason and headers to add
    (Unsupported for 420, Accept for 415, ...)."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    why: str = ""

    def response(self, request: Request, to_tag: str | None = None) -> Response:
        return make_response(request, self.status, self.reason, to_tag=to_tag, headers=self.headers)


def _reject(status: int, why: str, headers: tuple[tuple[str, str], ...] = ()) -> Rejection:
    return Rejection(status, REASONS[status], headers, why)


def _media_matches(offered: str, wanted: str) -> bool:
    t, _, s = offered.partition(";")[0].strip(" \t").lower().partition("/")
    wt, _, ws = wanted.lower().partition("/")
    return (t in ("*", wt)) and (s in ("*", ws))


def uas_precheck(
    request: Request,
    *,
    supported: Iterable[str] = ("replaces", "path", "outbound", "gruu"),
    accept: Iterable[str] = ("application/sdp",),
    schemes: Iterable[str] = ("sip", "sips"),
) -> Rejection | None:
    """None when the request may be processed, else the ``Rejection`` to send. In RFC 3261 8.2 order:
    version (505), mandatory and single headers (400), Max-Forwards 0 (483, as the central forwards),
    URI scheme (416), REGISTER's To (400), Require (420), body type (415), Accept (406)."""
    h = request.headers
    if request.version.upper() != "SIP/2.0":
        return _reject(505, f"version {request.version}")
    for name in MANDATORY:
        if name not in h:
            return _reject(400, f"missing {name}")
    for name in SINGLE:
        if len(h.get_raw(name)) > 1:
            return _reject(400, f"several {name} headers")
    if request.max_forwards == 0 and request.method not in ("ACK", "CANCEL"):
        return _reject(483, "Max-Forwards is 0")
    if request.parsed_uri.scheme not in tuple(schemes):
        return _reject(416, f"Request-URI scheme {request.parsed_uri.scheme}")
    if request.method == "REGISTER" and not isinstance(request.to.uri, SipUri):
        # RFC 3261 10.2: the To of a REGISTER is the address-of-record, a SIP or SIPS URI (4475 unksm2).
        return _reject(400, "REGISTER To is not a SIP URI")
    if request.method not in ("ACK", "CANCEL"):
        known = {s.lower() for s in supported}
        unknown = [tag for tag in h.get_all("Require") if tag.lower() not in known]
        if unknown:
            return _reject(420, "unsupported Require", (("Unsupported", ", ".join(unknown)),))
    accepted = tuple(accept)
    if request.body and request.content_type is not None and request.content_type not in accepted:
        return _reject(415, f"body type {request.content_type}", (("Accept", ", ".join(accepted)),))
    if request.body and h.get("Content-Encoding") not in (None, "identity"):
        return _reject(415, "Content-Encoding", (("Accept-Encoding", "identity"),))
    if request.method == "INVITE" and "Accept" in h:
        offered = h.get_all("Accept")
        if offered and not any(_media_matches(o, a) for o in offered for a in accepted):
            return _reject(406, "no acceptable body type in Accept", (("Accept", ", ".join(accepted)),))
    return None


_ECHO = ("Via", "From", "To", "Call-ID", "CSeq")


def reject_unparseable(data: bytes, error: SipParseError) -> bytes | None:
    """A stateless ``400 Bad Request`` for request bytes that failed to parse, built from the lenient
    ``scan`` of their Via/From/To/Call-ID/CSeq lines (copied verbatim), or None when no response can be
    addressed (a response, no Via, nothing readable). The reason's text names the parse error."""
    raw = scan(data)
    if not raw.start_line or raw.is_response:
        return None
    pairs = [(n, v) for n, v in raw.headers if n in _ECHO]
    if not any(n == "Via" for n, _ in pairs):
        return None
    why = "".join(c if c.isprintable() and c.isascii() else "?" for c in error.reason)[:100]
    return serialize(f"SIP/2.0 400 Bad Request ({why})", Headers(tuple(pairs)).items, b"")
