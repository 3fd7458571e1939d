"""The SIP error sub-tree (below ``pbxcheck.errors.SipError``).

    SipError
    ├── SipParseError(reason, fragment)   bytes that are not a SIP message we accept
    │   ├── IncompleteMessage             no empty line ends the header section
    │   ├── BadStartLine                  Request-Line / Status-Line malformed
    │   ├── BadHeader                     a header line or a header value malformed
    │   │   ├── BadContentLength          not 1*DIGIT, negative, body shorter than it, several on a stream
    │   │   ├── BadVia                    Via value does not match via-parm
    │   │   ├── BadCSeq                   CSeq malformed, > 2**31-1, or its method differs from the request's
    │   │   └── BadNameAddr               From/To/Contact/Route value not name-addr / addr-spec
    │   ├── MissingHeader                 a header a property needs is absent
    │   └── BadUri                        a URI does not match SIP-URI / absoluteURI
    ├── DigestError                       credentials/challenge unusable (scheme, missing parameter)
    ├── SdpError                          SDP body unusable (no m= line, bad c=, ...)
    └── TransactionError                  an event that makes no sense for a transaction/dialog

Every message says what was wrong and quotes the offending fragment, so that a torture test or a
fuzzer failure reads on its own.
"""

from __future__ import annotations

from pbxcheck.errors import SipError

__all__ = [
    "SipError",
    "SipParseError",
    "IncompleteMessage",
    "BadStartLine",
    "BadHeader",
    "BadContentLength",
    "BadVia",
    "BadCSeq",
    "BadNameAddr",
    "MissingHeader",
    "BadUri",
    "DigestError",
    "SdpError",
    "TransactionError",
]


class SipParseError(SipError):
    """Bytes that are not an acceptable SIP message. ``reason`` says why, ``fragment`` shows where."""

    def __init__(self, reason: str, fragment: str | bytes = "") -> None:
        self.reason = reason
        self.fragment = fragment
        shown = repr(fragment[:77]) + "..." if len(fragment) > 80 else repr(fragment)
        super().__init__(f"{reason}: {shown}" if fragment else reason)


class IncompleteMessage(SipParseError):
    """The header section is not terminated by an empty line."""


class BadStartLine(SipParseError):
    """The Request-Line or Status-Line is malformed (RFC 3261 7.1, 7.2)."""


class BadHeader(SipParseError):
    """A header line or value is malformed (RFC 3261 7.3, 25.1)."""


class BadContentLength(BadHeader):
    """Content-Length unusable: not digits, negative, larger than the datagram, ambiguous on a stream."""


class BadVia(BadHeader):
    """A Via value does not match via-parm (RFC 3261 20.42)."""


class BadCSeq(BadHeader):
    """CSeq malformed, out of range (RFC 3261 8.1.1.5: < 2**31), or method mismatch (RFC 4475 3.1.2.17)."""


class BadNameAddr(BadHeader):
    """A From/To/Contact/Route value is neither name-addr nor addr-spec."""


class MissingHeader(SipParseError):
    """A header needed by the caller is absent."""


class BadUri(SipParseError):
    """A URI does not match SIP-URI / SIPS-URI / absoluteURI (RFC 3261 19.1, 25.1)."""


class DigestError(SipError):
    """Digest challenge or credentials unusable."""


class SdpError(SipError):
    """An SDP body unusable for offer/answer."""


class TransactionError(SipError):
    """A transaction or dialog was fed something that makes no sense in its state."""
