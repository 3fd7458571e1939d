"""The one lenient scanner: bytes -> :class:`RawMessage` (start line, header pairs, body), never raising.

The parser (``sip.parser``) is strict where RFC 3261 / RFC 4475 say to reject; everything that must
still *read* bytes the parser rejects (the stateless 400 of ``validate.reject_unparseable``, the
message log's ladder, the probes' view of an answer) reads them through ``scan``. The parser shares
its framing (``split_head``), so both agree on where the header section ends.

Framing, RFC 3261 §7 (and §25.1's grammar)::

    generic-message  =  start-line *message-header CRLF [ message-body ]
    message-header   =  (header-name HCOLON header-value) CRLF
    HCOLON           =  *( SP / HTAB ) ":" SWS

* §7.5: "implementations processing SIP messages over stream-oriented transports MUST ignore any
  CRLF appearing before the start-line";
* §7.3.1: "Header fields can be extended over multiple lines by preceding each extra line with at
  least one SP or horizontal tab (HT)" - folded lines join with one SP;
* §7.3.3: compact forms ("i" for Call-ID, "v" for Via...) are expanded to the canonical name;
* a bare LF as line end is accepted (RFC 4475 leaves it to robustness).

What is not a header line (no colon, a name that is not a token) is skipped, not raised: a scan
says what can be read, the parser says whether it is acceptable.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbxcheck.sip.grammar import canonical_name

__all__ = ["RawMessage", "scan", "split_head"]


def split_head(data: bytes) -> tuple[int, int, int] | None:
    """(start of message, end of header section, start of body), or None when no empty line ends
    the header section. Leading CRLFs are skipped (§7.5)."""
    start = 0
    n = len(data)
    while start < n and data[start] in (13, 10):
        start += 1
    crlf = data.find(b"\r\n\r\n", start)
    lf = data.find(b"\n\n", start)
    if crlf < 0 and lf < 0:
        return None
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        return start, crlf, crlf + 4
    return start, lf, lf + 2


@dataclass(frozen=True, slots=True)
class RawMessage:
    """What a lenient read of a message found. Header names are canonical (compact forms expanded);
    values are trimmed and unfolded, one pair per header line (not split at commas)."""

    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    complete: bool = True  # False: no empty line ended the header section (a cut datagram)

    @property
    def is_response(self) -> bool:
        return self.start_line[:4].upper() == "SIP/"

    @property
    def status(self) -> int | None:
        """The Status-Code of a response (None for a request or a garbled status line)."""
        if not self.is_response:
            return None
        parts = self.start_line.split(" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None

    @property
    def reason(self) -> str:
        parts = self.start_line.split(" ", 2)
        return parts[2] if self.is_response and len(parts) > 2 else ""

    @property
    def method(self) -> str | None:
        """The Method of a request (None for a response)."""
        if self.is_response:
            return None
        return self.start_line.split(" ", 1)[0] or None

    @property
    def uri(self) -> str | None:
        if self.is_response:
            return None
        parts = self.start_line.split()
        return parts[1] if len(parts) > 1 else None

    def header(self, name: str) -> str | None:
        """The first value of ``name`` (any case, compact or long form), or None."""
        want = canonical_name(name).lower()
        for n, v in self.headers:
            if n.lower() == want:
                return v
        return None

    def headers_all(self, name: str) -> list[str]:
        """Every value of ``name``, one per header line, in order."""
        want = canonical_name(name).lower()
        return [v for n, v in self.headers if n.lower() == want]

    @property
    def call_id(self) -> str | None:
        value = self.header("Call-ID")
        return value.split()[0] if value else None

    @property
    def cseq_method(self) -> str | None:
        """The method in CSeq (what a response answers), or None."""
        parts = (self.header("CSeq") or "").split()
        return parts[1] if len(parts) > 1 else None


def scan(data: bytes) -> RawMessage:
    """Read ``data`` as far as it goes. Never raises on content (any bytes give a RawMessage)."""
    framing = split_head(data)
    if framing is None:
        start = len(data) - len(data.lstrip(b"\r\n"))
        head_end, body_start, complete = len(data), len(data), False
    else:
        start, head_end, body_start = framing
        complete = True
    text = data[start:head_end].decode("utf-8", "replace")
    lines = text.split("\n")
    first = lines[0].rstrip("\r").strip(" \t")
    pairs: list[tuple[str, str]] = []
    kept = False  # whether the line a continuation continues was kept
    for line in lines[1:]:
        line = line.rstrip("\r")
        if not line:
            continue
        if line[0] in " \t":
            more = line.strip(" \t")
            if kept and more:
                name, value = pairs[-1]
                pairs[-1] = (name, f"{value} {more}" if value else more)
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        kept = bool(colon) and bool(name) and " " not in name and "\t" not in name
        if kept:
            pairs.append((canonical_name(name), value.strip(" \t")))
    return RawMessage(first, tuple(pairs), data[body_start:], complete)
