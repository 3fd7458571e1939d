"""Lexical pieces of the RFC 3261 grammar (section 25) shared by the header and message parsers.

Everything here works on ``str`` (the header section is decoded as UTF-8 with ``surrogateescape``,
so arbitrary bytes survive a round trip) and uses ASCII-only regular expressions: ``\\s``, ``\\d``
and ``str.isdigit`` would accept Unicode spaces and digits the grammar does not.
"""

from __future__ import annotations

import re

from pbxcheck.sip.errors import SipParseError

# token       =  1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
TOKEN_RE = re.compile(TOKEN, re.ASCII)

# quoted-string  =  SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# qdtext         =  LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
# quoted-pair    =  "\" (%x00-09 / %x0B-0C / %x0E-7F)
# (written "unrolled": the same strings, matched a run of qdtext at a time between quoted-pairs
# instead of one alternation per character; a 3-parameter challenge parses in 3.5 µs, was 5.2)
QUOTED = r'"[^"\\\r\n]*(?:\\[\x00-\x09\x0b\x0c\x0e-\x7f][^"\\\r\n]*)*"'
QUOTED_RE = re.compile(QUOTED)

# host           =  hostname / IPv4address / IPv6reference   (token covers hostname and IPv4address)
# gen-value      =  token / host / quoted-string
# via-received   =  "received" EQUAL (IPv4address / IPv6address)  -- a bare IPv6 address has colons,
# so it is tried before token (which would stop at the first colon).
IPV6REF = r"\[[0-9A-Fa-f:.]+\]"
IPV6ADDR = r"[0-9A-Fa-f]*:[0-9A-Fa-f:.]+"
GEN_VALUE = rf"(?:{IPV6ADDR}|{TOKEN}|{IPV6REF}|{QUOTED})"

# generic-param  =  token [ EQUAL gen-value ]      SEMI = SWS ";" SWS    EQUAL = SWS "=" SWS
# SWS = [LWS]; after unfolding, LWS is just SP / HTAB.
_PARAM_RE = re.compile(rf"[ \t]*;[ \t]*({TOKEN})(?:[ \t]*=[ \t]*({GEN_VALUE}))?[ \t]*", re.ASCII)

DIGITS_RE = re.compile(r"[0-9]+", re.ASCII)

Params = tuple[tuple[str, str | None], ...]

# Canonical spelling of the header names we know, keyed by lower case; compact forms (RFC 3261 7.3.3
# and later RFCs) map to the long name.
_KNOWN = (
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Organization",
    "P-Asserted-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "Session-Expires",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
)
_COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}
CANONICAL: dict[str, str] = {n.lower(): n for n in _KNOWN}
CANONICAL.update(_COMPACT)

# Headers whose grammar is a comma-separated list (``X: a, b`` == ``X: a`` + ``X: b``, RFC 3261 7.3.1).
# Not in here on purpose: the auth headers (commas separate their parameters), Date, User-Agent,
# Server, Subject, Call-ID, From, To, CSeq, Retry-After - their values contain commas or are single.
MULTI_VALUED = frozenset(
    n.lower()
    for n in (
        "Accept",
        "Accept-Contact",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Error-Info",
        "In-Reply-To",
        "Path",
        "P-Asserted-Identity",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Reject-Contact",
        "Require",
        "Route",
        "Service-Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    )
)


def canonical_name(name: str) -> str:
    """``v`` -> ``Via``, ``call-id`` -> ``Call-ID``; unknown names keep the sender's spelling."""
    return CANONICAL.get(name.lower(), name)


# A quoted string (possibly unterminated), a <...> (possibly unterminated), or a separating comma.
_COMMA_SCAN_RE = re.compile(r'"(?:[^"\\]|\\.)*(?:"|$)|<[^>]*(?:>|$)|,', re.DOTALL)


def split_commas(value: str) -> list[str]:
    """Split a list header value at commas that are outside quoted strings and ``<...>``.

    RFC 3261 7.3.1: a comma inside a quoted display name or inside a bracketed URI does not
    separate values. Elements are stripped of surrounding LWS; empty elements are kept (the
    caller decides whether ``a,,b`` is an error). An unterminated quote or bracket runs to the end.
    """
    if '"' not in value and "<" not in value:
        return [v.strip(" \t") for v in value.split(",")]
    out: list[str] = []
    start = 0
    for m in _COMMA_SCAN_RE.finditer(value):
        if m.group() == ",":
            out.append(value[start : m.start()].strip(" \t"))
            start = m.end()
    out.append(value[start:].strip(" \t"))
    return out


def parse_params(text: str, error: type[SipParseError], what: str) -> Params:
    """Parse ``*( SEMI generic-param )`` that must cover all of ``text``.

    ``;;`` or a dangling ``;`` is an error (RFC 4475 badinv01): generic-param requires a token.
    """
    params: list[tuple[str, str | None]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _PARAM_RE.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip(" \t") == "":
                break
            raise error(f"malformed parameter in {what}", text[pos:])
        params.append((m.group(1), m.group(2)))
        pos = m.end()
    return tuple(params)


def find_param(params: Params, name: str) -> tuple[bool, str | None]:
    """(present, value) for a case-insensitive parameter name."""
    lname = name.lower()
    for k, v in params:
        if k.lower() == lname:
            return True, v
    return False, None


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def unquote(text: str) -> str:
    """The content of a quoted-string (with quotes) with quoted-pairs resolved."""
    inner = text[1:-1]
    if "\\" not in inner:
        return inner
    out = []
    i = 0
    while i < len(inner):
        ch = inner[i]
        if ch == "\\" and i + 1 < len(inner):
            i += 1
            ch = inner[i]
        out.append(ch)
        i += 1
    return "".join(out)


_NEEDS_PAIR_RE = re.compile(r'[\\"\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')
_PLAIN_QDTEXT_RE = re.compile(r'[^\\"\x00-\x1f\x7f]*')  # nothing to escape, no CR or LF


def quote(text: str) -> str:
    """A quoted-string holding ``text``: backslash, DQUOTE and control characters become quoted-pairs
    (qdtext excludes them); CR and LF cannot be quoted at all and become SP."""
    if _PLAIN_QDTEXT_RE.fullmatch(text):  # the usual case (a nonce, a URI, a user name): as is
        return f'"{text}"'
    text = text.replace("\r", " ").replace("\n", " ")
    return '"' + _NEEDS_PAIR_RE.sub(lambda m: "\\" + m.group(0), text) + '"'


def param_value(value: str | None) -> str | None:
    """A gen-value with the quotes of a quoted-string removed."""
    if value is not None and value.startswith('"'):
        return unquote(value)
    return value


def parse_uint(text: str, error: type[SipParseError], what: str, limit: int) -> int:
    """``1*DIGIT`` no larger than ``limit``; the length check keeps int() away from huge inputs."""
    text = text.strip(" \t")
    if not DIGITS_RE.fullmatch(text):
        raise error(f"{what} is not 1*DIGIT", text)
    stripped = text.lstrip("0") or "0"
    if len(stripped) > len(str(limit)) or int(stripped) > limit:
        raise error(f"{what} out of range (max {limit})", text)
    return int(stripped)
