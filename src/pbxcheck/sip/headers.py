"""Parsed header values: URIs, name-addr, Via, CSeq, auth parameters (frozen, with ``parse``/``str``).

The raw header text stays in the message; these types are what the properties of ``Request`` and
``Response`` hand out. ``str(x)`` always gives a canonical, RFC-conformant spelling (which may
differ from the received bytes: folded lines, extra LWS and compact forms are normalised).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import NamedTuple, Self

from pbxcheck.sip.errors import BadCSeq, BadHeader, BadNameAddr, BadUri, BadVia, SipParseError
from pbxcheck.sip.grammar import (
    QUOTED_RE,
    TOKEN,
    Params,
    find_param,
    format_params,
    param_value,
    parse_params,
    parse_uint,
    quote,
    unquote,
)

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 8.1.1.7: branch values of RFC 3261 elements start with this

# --- URIs -------------------------------------------------------------------------------------------
# SIP-URI          =  "sip:" [ userinfo ] hostport uri-parameters [ headers ]
# SIPS-URI         =  "sips:" [ userinfo ] hostport uri-parameters [ headers ]
# userinfo         =  ( user / telephone-subscriber ) [ ":" password ] "@"
# user             =  1*( unreserved / escaped / user-unreserved )
# user-unreserved  =  "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
# password         =  *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
# unreserved       =  alphanum / mark ;  mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
# escaped          =  "%" HEXDIG HEXDIG
_ESC = r"%[0-9A-Fa-f]{2}"
_USER_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|{_ESC})+", re.ASCII)
_PASSWORD_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|{_ESC})*", re.ASCII)
# hostport         =  host [ ":" port ]
# host             =  hostname / IPv4address / IPv6reference
# hostname         =  *( domainlabel "." ) toplabel [ "." ]
# domainlabel      =  alphanum / alphanum *( alphanum / "-" ) alphanum
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_HOST = rf"(?:\[[0-9A-Fa-f:.]+\]|{_LABEL}(?:\.{_LABEL})*\.?)"
# uri-parameter    =  transport-param / user-param / method-param / ttl-param / maddr-param / lr-param / other-param
# other-param      =  pname [ "=" pvalue ] ;  pname = 1*paramchar ; pvalue = 1*paramchar
# paramchar        =  param-unreserved / unreserved / escaped
# param-unreserved =  "[" / "]" / "/" / ":" / "&" / "+" / "$"
_PCHAR = rf"(?:[\[\]/:&+$A-Za-z0-9\-_.!~*'()]|{_ESC})+"
# headers          =  "?" header *( "&" header ) ;  header = hname "=" hvalue
# hname = 1*( hnv-unreserved / unreserved / escaped ) ; hvalue = *( hnv-unreserved / unreserved / escaped )
# hnv-unreserved   =  "[" / "]" / "/" / "?" / ":" / "+" / "$"
_HCHAR = rf"(?:[\[\]/?:+$A-Za-z0-9\-_.!~*'()]|{_ESC})"
_HOSTPORT_REST_RE = re.compile(
    rf"({_HOST})(?::([0-9]{{1,5}}))?((?:;{_PCHAR}(?:={_PCHAR})?)*)(?:\?({_HCHAR}+={_HCHAR}*(?:&{_HCHAR}+={_HCHAR}*)*))?",
    re.ASCII,
)
# absoluteURI = scheme ":" ( hier-part / opaque-part ) ; scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
# uric = reserved / unreserved / escaped ; reserved = ";" / "/" / "?" / ":" / "@" / "&" / "=" / "+" / "$" / ","
_ABSOLUTE_RE = re.compile(rf"([A-Za-z][A-Za-z0-9+\-.]*):((?:[;/?:@&=+$,A-Za-z0-9\-_.!~*'()]|{_ESC})+)", re.ASCII)

Pairs = tuple[tuple[str, str | None], ...]


def _split_pairs(text: str, sep: str, require_value: bool) -> Pairs:
    out: list[tuple[str, str | None]] = []
    for item in text.split(sep):
        name, eq, value = item.partition("=")
        out.append((name, value if eq else ("" if require_value else None)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI. ``user``/``password`` stay escaped as received (RFC 3261 19.1.4
    compares them unescaped; use ``unescape`` for that). ``params``/``headers`` keep order and case."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Pairs = ()
    headers: Pairs = ()

    @classmethod
    def parse(cls, text: str) -> SipUri:
        scheme, colon, rest = text.partition(":")
        lscheme = scheme.lower()
        if not colon or lscheme not in ("sip", "sips"):
            raise BadUri("not a sip: or sips: URI", text)
        user = password = None
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            u, pcolon, p = userinfo.partition(":")
            if not _USER_RE.fullmatch(u):
                raise BadUri("bad user part in SIP URI", text)
            if pcolon and not _PASSWORD_RE.fullmatch(p):
                raise BadUri("bad password in SIP URI", text)
            user, password = u, (p if pcolon else None)
        m = _HOSTPORT_REST_RE.fullmatch(rest)
        if m is None:
            raise BadUri("bad hostport, parameters or headers in SIP URI", text)
        host, port_s, params_s, headers_s = m.groups()
        port = None
        if port_s is not None:
            port = int(port_s)
            if port > 65535:
                raise BadUri("port out of range", text)
        params = _split_pairs(params_s[1:], ";", False) if params_s else ()
        headers = _split_pairs(headers_s, "&", True) if headers_s else ()
        return cls(lscheme, user, password, host, port, params, headers)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out += [":", str(self.port)]
        out.append(format_params(self.params))
        if self.headers:
            out.append("?" + "&".join(f"{k}={v or ''}" for k, v in self.headers))
        return "".join(out)

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)[1]

    def has_param(self, name: str) -> bool:
        return find_param(self.params, name)[0]

    @property
    def transport(self) -> str | None:
        t = self.param("transport")
        return t.lower() if t else None

    @property
    def host_port(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def with_params(self, **params: str | None) -> SipUri:
        """Set (or with value ``None`` as a flag, like ``lr``) URI parameters, replacing same-named ones."""
        names = {k.lower() for k in params}
        kept = tuple(p for p in self.params if p[0].lower() not in names)
        return replace(self, params=kept + tuple(params.items()))

    def without_params(self) -> SipUri:
        return replace(self, params=(), headers=())


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other scheme (``tel:``, ``isbn:``, ``http:``...): kept opaque (RFC 4475 unkscm, unksm2, novelsc)."""

    scheme: str
    opaque: str

    @classmethod
    def parse(cls, text: str) -> AbsoluteUri:
        m = _ABSOLUTE_RE.fullmatch(text)
        if m is None:
            raise BadUri("not an absoluteURI", text)
        return cls(m.group(1).lower(), m.group(2))

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | AbsoluteUri


# Parsed values are immutable, and a device sends the same From, To, Contact and Request-URI in
# every request of a registration or a call: parsing each distinct text once halves a REGISTER's
# parse cost (bench/RESULTS.md). Bounded, so a stream of junk only evicts.
_PARSE_CACHE = 4096


@functools.lru_cache(maxsize=_PARSE_CACHE)
def parse_uri(text: str) -> Uri:
    """SIP-URI / SIPS-URI / absoluteURI."""
    scheme = text.partition(":")[0].lower()
    if scheme in ("sip", "sips"):
        return SipUri.parse(text)
    return AbsoluteUri.parse(text)


def unescape(text: str) -> str:
    """``%XX`` sequences decoded (as Latin-1 code points, so ``%00`` and invalid UTF-8 survive)."""
    if "%" not in text:
        return text
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


class _WithParams:
    """``param``/``with_param`` for the header types that carry ``*( SEMI generic-param )``."""

    __slots__ = ()
    params: Params

    def param(self, name: str) -> str | None:
        """The value (quotes removed) of a parameter, case-insensitive; None if absent or valueless."""
        return param_value(find_param(self.params, name)[1])

    def has_param(self, name: str) -> bool:
        return find_param(self.params, name)[0]

    def with_param(self, name: str, value: str | None) -> Self:
        """A copy with ``name`` set (replacing any same-named parameter; ``None`` = flag)."""
        kept = tuple(p for p in self.params if p[0].lower() != name.lower())
        return replace(self, params=kept + ((name, value),))  # type: ignore[type-var]


# --- name-addr --------------------------------------------------------------------------------------
# from-spec   =  ( name-addr / addr-spec ) *( SEMI from-param )
# name-addr   =  [ display-name ] LAQUOT addr-spec RAQUOT
# addr-spec   =  SIP-URI / SIPS-URI / absoluteURI
# display-name =  *(token LWS)/ quoted-string
# LAQUOT = SWS "<" ; RAQUOT = ">" SWS
_DISPLAY_TOKENS_RE = re.compile(rf"{TOKEN}(?:[ \t]+{TOKEN})*", re.ASCII)


@dataclass(frozen=True, slots=True)
class NameAddr(_WithParams):
    """From/To/Contact/Route/Record-Route value. ``display`` is unquoted (None when absent)."""

    display: str | None
    uri: Uri
    params: Params = ()

    @classmethod
    def parse(cls, text: str, what: str = "name-addr") -> NameAddr:
        return _parse_name_addr(text, what)

    @classmethod
    def _parse(cls, text: str, what: str) -> NameAddr:
        text = text.strip(" \t")
        display: str | None = None
        if text.startswith('"'):
            m = QUOTED_RE.match(text)
            if m is None:
                raise BadNameAddr(f"unterminated quoted display name in {what}", text)
            display = unquote(m.group(0))
            rest = text[m.end() :].lstrip(" \t")
            if not rest.startswith("<"):
                raise BadNameAddr(f"quoted display name not followed by <URI> in {what}", text)
            return cls._angle(display, rest, text, what)
        lt = text.find("<")
        if lt >= 0:
            shown = text[:lt].strip(" \t")
            if shown:
                # RFC 4475 baddn: an unquoted display name with non-token characters is rejected.
                if not _DISPLAY_TOKENS_RE.fullmatch(shown):
                    raise BadNameAddr(f"unquoted display name with non-token characters in {what}", shown)
                display = shown
            return cls._angle(display, text[lt:], text, what)
        # addr-spec form: RFC 3261 20.10 - every ';' parameter belongs to the header, and a URI with
        # ',', '?' or ';' would have to be enclosed in <> (RFC 4475 regbadct).
        uri_s, semi, params_s = text.partition(";")
        uri_s = uri_s.rstrip(" \t")
        if not uri_s:
            raise BadNameAddr(f"empty {what}", text)
        if "?" in uri_s or "," in uri_s or " " in uri_s:
            raise BadNameAddr(f"URI with '?', ',' or spaces must be enclosed in <> in {what}", text)
        uri = _parse_uri_in(uri_s, what)
        params = parse_params(semi + params_s, BadNameAddr, what) if semi else ()
        return cls(None, uri, params)

    @classmethod
    def _angle(cls, display: str | None, rest: str, whole: str, what: str) -> NameAddr:
        gt = rest.find(">")
        if gt < 0:
            raise BadNameAddr(f"'<' without '>' in {what}", whole)
        # RFC 4475 badaspec: LWS inside <> is not allowed, but the RFC lets us ignore it; we do.
        uri = _parse_uri_in(rest[1:gt].strip(" \t"), what)
        params = parse_params(rest[gt + 1 :], BadNameAddr, what)
        return cls(display, uri, params)

    def __str__(self) -> str:
        head = f"{quote(self.display)} " if self.display else ""
        return f"{head}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    @property
    def sip_uri(self) -> SipUri:
        if not isinstance(self.uri, SipUri):
            raise BadUri("not a SIP URI", str(self.uri))
        return self.uri

    def with_tag(self, tag: str) -> NameAddr:
        return self.with_param("tag", tag)


@functools.lru_cache(maxsize=_PARSE_CACHE)
def _parse_name_addr(text: str, what: str) -> NameAddr:
    return NameAddr._parse(text, what)


def _parse_uri_in(text: str, what: str) -> Uri:
    try:
        return parse_uri(text)
    except BadUri as exc:
        raise BadNameAddr(f"bad URI in {what}: {exc.reason}", text) from None


# --- Via --------------------------------------------------------------------------------------------
# via-parm          =  sent-protocol LWS sent-by *( SEMI via-params )
# sent-protocol     =  protocol-name SLASH protocol-version SLASH transport      SLASH = SWS "/" SWS
# sent-by           =  host [ COLON port ]
# via-params        =  via-ttl / via-maddr / via-received / via-branch / response-port / via-extension
_VIA_RE = re.compile(
    rf"[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]+"
    rf"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._]+)(?:[ \t]*:[ \t]*([0-9]{{1,5}}))?",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class Via(_WithParams):
    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        m = _VIA_RE.match(text)
        if m is None:
            raise BadVia("Via value does not match sent-protocol LWS sent-by", text)
        name, version, transport, host, port_s = m.groups()
        port = None
        if port_s is not None:
            port = int(port_s)
            if port > 65535:
                raise BadVia("Via port out of range", text)
        params = parse_params(text[m.end() :], BadVia, "Via")
        return cls(transport.upper(), host, port, params, f"{name}/{version}")

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def has_rport(self) -> bool:
        return find_param(self.params, "rport")[0]

    @property
    def rport(self) -> int | None:
        """The rport value (RFC 3581), None when absent or empty."""
        v = self.param("rport")
        return int(v) if v and v.isascii() and v.isdigit() and len(v) <= 5 else None

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    @property
    def rfc3261_branch(self) -> bool:
        """The branch carries the magic cookie *and* something after it (RFC 4475 badbranch: bare cookie)."""
        b = self.branch
        return b is not None and b.startswith(MAGIC_COOKIE) and len(b) > len(MAGIC_COOKIE)


# --- CSeq -------------------------------------------------------------------------------------------
# CSeq  =  "CSeq" HCOLON 1*DIGIT LWS Method ; RFC 3261 8.1.1.5: the number MUST be < 2**31
_CSEQ_RE = re.compile(rf"[ \t]*([0-9]+)[ \t]+({TOKEN})[ \t]*", re.ASCII)
CSEQ_MAX = 2**31 - 1


class CSeq(NamedTuple):
    """(number, method); unpacks like a tuple."""

    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        m = _CSEQ_RE.fullmatch(text)
        if m is None:
            raise BadCSeq("CSeq is not 1*DIGIT LWS Method", text)
        return cls(parse_uint(m.group(1), BadCSeq, "CSeq number", CSEQ_MAX), m.group(2))

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


# --- auth parameters -------------------------------------------------------------------------------
# challenge / credentials  =  auth-scheme LWS auth-param *(COMMA auth-param)
# auth-param  =  auth-param-name EQUAL ( token / quoted-string )
# Unquoted values outside token (devices send uri=sip:... unquoted) are accepted up to the next comma.
_AUTH_PARAM_RE = re.compile(rf'[ \t]*({TOKEN})[ \t]*=[ \t]*({QUOTED_RE.pattern}|[^", \t]+)[ \t]*(,|$)', re.ASCII)


_AUTH_SCHEME_RE = re.compile(rf"({TOKEN})[ \t]+", re.ASCII)


def parse_auth_params(text: str, error: type[SipParseError] = BadHeader) -> tuple[str, dict[str, str]]:
    """``Digest realm="x", nonce="y"`` -> ("Digest", {"realm": "x", "nonce": "y"}); names lower-cased,
    quoted values unquoted. Raises ``error`` on anything else."""
    text = text.strip(" \t")
    m = _AUTH_SCHEME_RE.match(text)
    if m is None:
        raise error("authentication header is not auth-scheme LWS auth-param", text)
    scheme = m.group(1)
    params: dict[str, str] = {}
    pos = m.end()
    while pos < len(text):
        pm = _AUTH_PARAM_RE.match(text, pos)
        if pm is None:
            raise error("malformed auth-param", text[pos:])
        value = pm.group(2)
        params[pm.group(1).lower()] = unquote(value) if value.startswith('"') else value
        pos = pm.end()
        if pm.group(3) == "" and pos < len(text):
            raise error("malformed auth-param", text[pos:])
    return scheme, params


def format_auth_params(scheme: str, params: list[tuple[str, str, bool]]) -> str:
    """(name, value, quoted?) triples -> ``Scheme a="b", c=d``."""
    return scheme + " " + ", ".join(f"{k}={quote(v) if q else v}" for k, v, q in params)
