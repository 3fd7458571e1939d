"""Sans-IO SIP core (bytes in, messages/events out; events in, bytes out) plus, in sub-packages,
the drivers and user agent built on it. Core modules: errors, grammar, headers, message, parser,
serializer, validate, digest, sdp, events, transaction, dialog."""

from pbxcheck.sip.errors import SipParseError
from pbxcheck.sip.headers import CSeq, NameAddr, SipUri, Via
from pbxcheck.sip.message import Headers, Request, Response, make_request, make_response, to_bytes
from pbxcheck.sip.parser import StreamFramer, parse_message

__all__ = [
    "CSeq", "Headers", "NameAddr", "Request", "Response", "SipParseError", "SipUri", "StreamFramer", "Via",
    "make_request", "make_response", "parse_message", "to_bytes",
]
