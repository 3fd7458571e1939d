"""Bytes -> ``Request`` / ``Response``, and a stream framer for TCP/TLS.

Lenient where RFC 3261 / RFC 4475 ask for it: CRLFs before the start line (7.5), folded lines and
LWS around ``:`` (7.3.1), compact and case-insensitive header names, bare LF line ends, extra SP in
the Request-Line (4475 lwsstart, trws), spaces inside ``<>`` (badaspec), unknown URI schemes
(unkscm, novelsc, unksm2), a missing Content-Length on a datagram (18.3).
Strict where they say to reject: a Request-URI with LWS (lwsruri), ``<>`` (ltgtruri) or escaped
headers (escruri); a Status-Code that is not 3 digits (bigcode); a Content-Length that is not
digits (ncl) or longer than the datagram (clerr); an unterminated quote (quotbal); an unquoted
display name with non-token characters (baddn); empty Via/Contact parameters (badinv01); a CSeq
over 2**31-1 (scalar02, scalarlg) or with another method than the request's (mismatch01/02).
Application-level problems (missing headers, duplicates, Max-Forwards 0, unknown Require...) parse
and are left to ``pbxcheck.sip.validate.uas_precheck``.
"""

from __future__ import annotations

import re

from pbxcheck.sip.errors import (
    BadContentLength,
    BadCSeq,
    BadHeader,
    BadNameAddr,
    BadStartLine,
    BadUri,
    BadVia,
    IncompleteMessage,
)
from pbxcheck.sip.grammar import TOKEN_RE, canonical_name, parse_uint, split_commas
from pbxcheck.sip.headers import CSeq, NameAddr, SipUri, Via, parse_uri
from pbxcheck.sip.message import Headers, Message, Request, Response
from pbxcheck.sip.scan import split_head

MAX_CONTENT_LENGTH = 2**24  # 16 MiB: more than any SIP body; bounds the stream framer's buffer

# SIP-Version    =  "SIP" "/" 1*DIGIT "." 1*DIGIT   (case-insensitive, RFC 3261 7.1)
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.ASCII | re.IGNORECASE)
# Status-Code    =  3DIGIT (first digit 1-6)
_STATUS_RE = re.compile(r"[1-6][0-9][0-9]", re.ASCII)


def _split_head(data: bytes) -> tuple[int, int, int]:
    """(start of message, end of header section, start of body): the scanner's framing (§7, §7.5)."""
    framing = split_head(data)
    if framing is None:
        start = len(data) - len(data.lstrip(b"\r\n"))
        raise IncompleteMessage("no empty line ends the header section", data[start : start + 80])
    return framing


def _header_lines(lines: list[str], *, index: bool = True) -> Headers:
    # message-header = (header-name HCOLON header-value) CRLF ;  HCOLON = *( SP / HTAB ) ":" SWS
    # A line starting with SP/HTAB continues the previous one (RFC 3261 7.3.1: folding = one SP).
    items: list[tuple[str, str]] = []
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        if line[0] in " \t":
            if not items:
                raise BadHeader("continuation line before any header", line)
            more = line.strip(" \t")
            if more:  # a whitespace-only continuation adds nothing (values are kept trimmed)
                name, value = items[-1]
                items[-1] = (name, f"{value} {more}" if value else more)
            continue
        pair = _LINES.get(line)
        if pair is None:
            colon = line.find(":")
            if colon < 0:
                raise BadHeader("header line without ':'", line)
            name = line[:colon]
            canonical = _NAMES.get(name)
            if canonical is None:
                name = name.rstrip(" \t")
                if not TOKEN_RE.fullmatch(name):
                    raise BadHeader("header name is not a token", line)
                canonical = canonical_name(name)
                if len(_NAMES) < _LINES_MAX:
                    _NAMES[line[:colon]] = canonical
            pair = (canonical, line[colon + 1 :].strip(" \t"))
            if len(_LINES) < _LINES_MAX and canonical not in _NEW_EACH_TIME:
                _LINES[line] = pair
        items.append(pair)
    # index=False (a lazy parse): the lookup index is made on the first lookup, if any comes
    return Headers._trusted(tuple(items), to_send=not index)


# Most header lines of a device's requests repeat byte for byte (Max-Forwards, User-Agent, Allow,
# Expires, To, Contact...): each is split and checked once. Bounded; junk from the wire only fills it.
_LINES: dict[str, tuple[str, str]] = {}
# Lines that differ each time (a Via's branch, a To tag, a nonce) still repeat their names: a name
# as written (before the colon) -> its canonical form, checked to be a token once.
_NAMES: dict[str, str] = {}
_LINES_MAX = 8192
# Lines that are new in every message (a branch, a sequence number, a nonce) never enter _LINES: under
# load they filled it within a second, and lines that do repeat but came later were never cached.
_NEW_EACH_TIME = frozenset({"Via", "CSeq", "WWW-Authenticate", "Proxy-Authenticate", "Authorization",
                            "Proxy-Authorization", "Timestamp", "Date"})  # fmt: skip


def _start_line(line: str) -> tuple[str, str, str, bool]:
    """(a, b, c, is_response): (method, uri, version) or (version, code, reason)."""
    if line.endswith("\r"):
        line = line[:-1]
    if line[:4].upper() == "SIP/":
        # Status-Line  =  SIP-Version SP Status-Code SP Reason-Phrase CRLF
        parts = line.split(" ", 2)
        if len(parts) < 2 or not _VERSION_RE.fullmatch(parts[0]):
            raise BadStartLine("Status-Line is not SIP-Version SP Status-Code SP Reason-Phrase", line)
        if not _STATUS_RE.fullmatch(parts[1]):
            raise BadStartLine("Status-Code is not 3 digits 100-699", line)
        # Reason-Phrase may be empty (RFC 4475 noreason); a missing SP before it is tolerated.
        return parts[0], parts[1], parts[2] if len(parts) == 3 else "", True
    # Request-Line  =  Method SP Request-URI SP SIP-Version CRLF
    # Extra SP between or after the elements is tolerated (RFC 4475 lwsstart, trws allow it);
    # a space *inside* the URI then shows up as a fourth element (lwsruri) and is rejected.
    parts = [p for p in line.split(" ") if p]
    if len(parts) != 3:
        raise BadStartLine("Request-Line is not Method SP Request-URI SP SIP-Version", line)
    method, uri, version = parts
    if not TOKEN_RE.fullmatch(method):
        raise BadStartLine("Method is not a token", line)
    if not _VERSION_RE.fullmatch(version):
        raise BadStartLine("SIP-Version is not SIP/x.y", line)
    return method, uri, version, False


def _body(data: bytes, body_start: int, values: list[str]) -> bytes:
    """The body ``values`` (every Content-Length line's) delimit; ``data`` ends with it on a datagram."""
    if not values:
        return data[body_start:]  # allowed on datagrams (RFC 3261 18.3 / 20.14)
    if values == ["0"]:  # nearly every REGISTER and its answers
        return b""
    lengths = {parse_uint(v, BadContentLength, "Content-Length", MAX_CONTENT_LENGTH) for v in values}
    if len(lengths) > 1:
        # RFC 4475 mcl01: ambiguous; keep the whole datagram and let uas_precheck answer 400.
        return data[body_start:]
    length = lengths.pop()
    if len(data) - body_start < length:
        raise BadContentLength(f"Content-Length {length} but only {len(data) - body_start} body bytes", values[0])
    # RFC 3261 18.3: bytes beyond Content-Length in a datagram are discarded (RFC 4475 dblreq).
    return data[body_start : body_start + length]


def parse_message(data: bytes, *, validate: bool = True) -> Message:
    """One SIP message from a datagram, a WebSocket frame or a framed stream chunk.

    Raises a ``SipParseError`` subclass saying what is wrong; never anything else. ``validate=False``
    skips the eager parse of Via, CSeq, From, To and Contact (``_validate``): the properties then
    parse on first use and raise there (the engine's lazy responses, see ``response_key``).
    """
    start, head_end, body_start = _split_head(data)
    head = data[start:head_end].decode("utf-8", "surrogateescape")
    lines = head.split("\n")
    a, b, c, is_response = _start_line(lines[0])
    if validate:
        headers = _header_lines(lines[1:])
        lengths = headers.get_raw("Content-Length")
    else:
        headers = _header_lines(lines[1:], index=False)
        lengths = [v for n, v in headers.items if n == "Content-Length"]
    body = _body(data, body_start, lengths)
    msg: Message
    if is_response:
        msg = Response(int(b), c, headers, body, a)
    else:
        uri = parse_uri(b)
        # RFC 3261 19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 escruri).
        if isinstance(uri, SipUri) and uri.headers:
            raise BadUri("Request-URI carries headers", b)
        msg = Request(a, b, headers, body, c)
        msg.__dict__["parsed_uri"] = uri
    if validate:
        _validate(msg)
    return msg


# the branch parameter of a Via value (RFC 3261 §20.42: via-branch = "branch" EQUAL token)
_BRANCH_RE = re.compile(r";[ \t]*branch[ \t]*=[ \t]*([^;, \t]+)", re.IGNORECASE)


def response_key(msg: Message) -> tuple[str, str] | None:
    """``transaction.client_key`` read off the header text (top Via's branch, CSeq's method) without
    parsing Via or CSeq; None when either is missing or does not look like one."""
    via = cseq_value = None
    for name, value in msg.headers.items:  # the first of each, without the lookup index
        if name == "Via":
            if via is None:
                via = value
        elif name == "CSeq" and cseq_value is None:
            cseq_value = value
    cseq = (cseq_value or "").split()
    if via is None or len(cseq) != 2 or not cseq[0].isdigit():
        return None
    m = _BRANCH_RE.search(via.split(",", 1)[0])
    return (m.group(1), cseq[1]) if m is not None else None


def _validate(msg: Message) -> None:
    """Parse the headers every layer relies on, so that a message which parsed is usable; the
    parsed values go straight into the properties' caches."""
    h = msg.headers
    cache = msg.__dict__
    if "Via" in h:
        vias = []
        for raw in h.get_raw("Via"):
            for value in split_commas(raw):
                if not value:
                    raise BadVia("empty Via value", raw)
                vias.append(Via.parse(value))
        cache["via"] = tuple(vias)
    if "CSeq" in h:
        cseq = CSeq.parse(h.get("CSeq") or "")
        if isinstance(msg, Request) and cseq.method != msg.method:
            raise BadCSeq(f"CSeq method differs from the request method {msg.method!r}", str(cseq))
        cache["cseq"] = cseq
    for name, attr in (("From", "from_"), ("To", "to")):
        addr = h.get(name)
        if addr is not None:
            cache[attr] = NameAddr.parse(addr, name)
    if "Contact" in h:
        contacts = []
        raws = h.get_raw("Contact")
        if [r.strip(" \t") for r in raws] != ["*"]:
            for raw in raws:
                for value in split_commas(raw):
                    if not value:
                        raise BadNameAddr("empty Contact value", raw)
                    contacts.append(NameAddr.parse(value, "Contact"))
        cache["contacts"] = tuple(contacts)


# --- streams ----------------------------------------------------------------------------------------
_CL_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


class StreamFramer:
    """Cuts a TCP/TLS byte stream into whole messages by Content-Length (RFC 3261 18.3: required on
    streams). CRLF keep-alives between messages (RFC 5626 3.5.1) are skipped. After it raises, the
    stream cannot be resynchronised: close the connection."""

    def __init__(self, max_header: int = 65536, max_body: int = MAX_CONTENT_LENGTH) -> None:
        self._buf = bytearray()
        self._max_header = max_header
        self._max_body = max_body  # a peer announcing more is cut off before we buffer it

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        buf = self._buf
        while True:
            skip = 0
            while skip < len(buf) and buf[skip] in (13, 10):
                skip += 1
            if skip:
                del buf[:skip]
            if not buf:
                break
            crlf = buf.find(b"\r\n\r\n")
            lf = buf.find(b"\n\n")
            if crlf < 0 and lf < 0:
                if len(buf) > self._max_header:
                    raise BadHeader("header section longer than the limit", bytes(buf[:80]))
                break
            if crlf >= 0 and (lf < 0 or crlf <= lf):
                head_end, body_start = crlf, crlf + 4
            else:
                head_end, body_start = lf, lf + 2
            head = bytes(buf[:head_end])
            values = {v.strip(b" \t") for v in _CL_RE.findall(head)}
            if not values:
                raise BadContentLength("no Content-Length on a stream transport", head[:80])
            if len(values) > 1:
                raise BadContentLength("several different Content-Length values", b", ".join(sorted(values)))
            text = values.pop().decode("ascii", "replace")
            length = parse_uint(text, BadContentLength, "Content-Length", self._max_body)
            end = body_start + length
            if len(buf) < end:
                break
            out.append(bytes(buf[:end]))
            del buf[:end]
        return out

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a message."""
        return len(self._buf)
