"""Sans-IO SIP core (bytes in, messages/events out; events in, bytes out) plus, in sub-packages,
the drivers and user agent built on it. Core modules: errors, grammar, headers, message, scan (the
lenient reader), parser, serializer, validate, digest, sdp, ids, flow, events, transaction (the RFC
3261 §17 tables), uas_core (2xx until ACK), dialog, register (the one REGISTER builder), engine (all
of them behind one sans-IO object).
Runners over the engine: aio (asyncio: the central and the UA), sync (blocking: the Locust user)."""

from pbxcheck.sip.errors import SipParseError
from pbxcheck.sip.headers import CSeq, NameAddr, SipUri, Via
from pbxcheck.sip.message import Headers, Request, Response, make_request, make_response, to_bytes
from pbxcheck.sip.parser import StreamFramer, parse_message

__all__ = [
    "CSeq",
    "Headers",
    "NameAddr",
    "Request",
    "Response",
    "SipParseError",
    "SipUri",
    "StreamFramer",
    "Via",
    "make_request",
    "make_response",
    "parse_message",
    "to_bytes",
]
