"""The SIP message model: ``Headers``, ``Request``, ``Response`` (frozen) and their helpers.

Header values are kept as received (unfolded, trimmed), so a parsed message serialises back to the
same meaning; the properties (``via``, ``cseq``, ``from_``...) parse on first use and cache the
result (``functools.cached_property`` stores into the instance dict, which a frozen dataclass
allows). The parser fills those caches for the headers it validates, so nothing is parsed twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pbxcheck.sip.errors import BadHeader, BadUri, MissingHeader
from pbxcheck.sip.grammar import CANONICAL, MULTI_VALUED, canonical_name, split_commas
from pbxcheck.sip.headers import CSeq, NameAddr, SipUri, Uri, Via, parse_uri
from pbxcheck.sip.serializer import serialize

SIP_VERSION = "SIP/2.0"

REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

HeaderPairs = tuple[tuple[str, str], ...]

_KEYS: dict[str, str] = {}  # header name as written -> lookup key (lower-case canonical name)


def _build_index(items: HeaderPairs) -> dict[str, tuple[str, ...]]:
    index: dict[str, tuple[str, ...]] = {}
    get = index.get
    for n, v in items:
        low = n.lower()
        seen = get(low)
        index[low] = (v,) if seen is None else (*seen, v)
    return index


class _LazyIndex(Mapping[str, tuple[str, ...]]):
    """A built message's lookup index, made on first use (it holds the items, not the Headers: no
    reference cycle for the collector)."""

    __slots__ = ("_items", "_built")

    def __init__(self, items: HeaderPairs) -> None:
        self._items = items
        self._built: dict[str, tuple[str, ...]] | None = None

    def _dict(self) -> dict[str, tuple[str, ...]]:
        if self._built is None:
            self._built = _build_index(self._items)
        return self._built

    def __getitem__(self, key: str) -> tuple[str, ...]:
        return self._dict()[key]

    def get(self, key: str, default: Any = None) -> Any:  # Mapping.get's try/except, skipped
        return self._dict().get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __contains__(self, key: object) -> bool:
        return key in self._dict()


@dataclass(frozen=True)
class Headers:
    """Ordered (name, value) pairs. Names are canonical (``v`` -> ``Via``, ``call-id`` -> ``Call-ID``);
    lookups are case-insensitive and accept compact forms. Values are unfolded and trimmed."""

    items: HeaderPairs = ()
    # lower-case name -> values in order: every lookup is one dict access. A message built to be sent
    # (a REGISTER, the central's answers) gets a _LazyIndex instead: serialised from ``items``, it is
    # mostly never looked up, and a parsed one always is (a plain dict, no indirection per lookup).
    _index: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        items = tuple((canonical_name(n), v) for n, v in self.items)
        # object.__setattr__, not __dict__[...]: touching __dict__ gives up CPython 3.11's inline
        # attribute values, and every lookup's attribute loads get slower (~15 ns each)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "_index", _LazyIndex(items))

    @classmethod
    def _trusted(cls, items: HeaderPairs, *, to_send: bool = False) -> Headers:
        """Names already canonical, skip the normalisation pass. ``to_send``: for the builders, the
        index made only if someone looks something up (the parser's messages always are)."""
        h = object.__new__(cls)
        object.__setattr__(h, "items", items)
        object.__setattr__(h, "_index", _LazyIndex(items) if to_send else _build_index(items))
        return h

    def _positions(self) -> list[str]:
        """Lower-case names by position, for the editing methods."""
        return [n.lower() for n, _ in self.items]

    @staticmethod
    def _key(name: str) -> str:
        key = _KEYS.get(name)
        if key is None:
            low = name.lower()
            key = CANONICAL.get(low, low).lower()
            if len(_KEYS) < 4096:  # names come from the wire: bound the cache
                _KEYS[name] = key
        return key

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` as received (not split at commas)."""
        values = self._index.get(self._key(name))
        return values[0] if values else default

    def get_raw(self, name: str) -> list[str]:
        """Every header line's value for ``name``, unsplit."""
        return list(self._index.get(self._key(name), ()))

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``; list-valued headers (Via, Contact, Route, Allow, ...) are split at
        commas outside quotes and <>, empty elements dropped."""
        key = self._key(name)
        raw = self._index.get(key, ())
        if key not in MULTI_VALUED:
            return list(raw)
        return [v for value in raw for v in split_commas(value) if v]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def with_(self, name: str, value: str) -> Headers:
        """Replace every ``name`` line by one, at the position of the first (appended if absent)."""
        key = self._key(name)
        out: list[tuple[str, str]] = []
        done = False
        for (n, v), low in zip(self.items, self._positions(), strict=True):
            if low == key:
                if not done:
                    out.append((canonical_name(name), value))
                    done = True
            else:
                out.append((n, v))
        if not done:
            out.append((canonical_name(name), value))
        return Headers._trusted(tuple(out))

    def without(self, name: str) -> Headers:
        key = self._key(name)
        return Headers._trusted(tuple(p for p, low in zip(self.items, self._positions(), strict=True) if low != key))

    def add(self, name: str, value: str, *, first: bool = False) -> Headers:
        """Append a line; ``first=True`` puts it before the first line of the same name (a proxy's Via)."""
        pair = (canonical_name(name), value)
        if first:
            key = self._key(name)
            for i, low in enumerate(self._positions()):
                if low == key:
                    return Headers._trusted(self.items[:i] + (pair,) + self.items[i:])
        return Headers._trusted(self.items + (pair,))

    def extend(self, pairs: Iterable[tuple[str, str]]) -> Headers:
        return Headers._trusted(self.items + tuple((canonical_name(n), v) for n, v in pairs))


def _scalar_int(value: str | None, limit: int = 2**32 - 1) -> int | None:
    """Lenient delta-seconds / Max-Forwards: None when malformed, clamped at ``limit`` when huge
    (RFC 4475 scalar02 allows treating overlarge values as absent or as the default)."""
    if value is None:
        return None
    v = value.strip(" \t")
    if not v or not v.isascii() or not v.isdigit():
        return None
    return limit if len(v) > 12 else min(int(v), limit)


class _MessageProperties:
    """Properties shared by requests and responses; parsed lazily, cached per instance."""

    headers: Headers
    body: bytes

    def _require(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise MissingHeader(f"no {name} header", name)
        return value

    @cached_property
    def call_id(self) -> str:
        return self._require("Call-ID")

    @cached_property
    def cseq(self) -> CSeq:
        return CSeq.parse(self._require("CSeq"))

    @cached_property
    def via(self) -> tuple[Via, ...]:
        return tuple(Via.parse(v) for v in self.headers.get_all("Via"))

    @property
    def top_via(self) -> Via:
        if not self.via:
            raise MissingHeader("no Via header", "Via")
        return self.via[0]

    @property
    def branch(self) -> str | None:
        return self.via[0].branch if self.via else None

    @cached_property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self._require("From"), "From")

    @cached_property
    def to(self) -> NameAddr:
        return NameAddr.parse(self._require("To"), "To")

    @cached_property
    def contacts(self) -> tuple[NameAddr, ...]:
        """Every Contact value; empty for ``Contact: *`` (see ``contact_star``)."""
        values = self.headers.get_all("Contact")
        if values == ["*"]:
            return ()
        return tuple(NameAddr.parse(v, "Contact") for v in values)

    @property
    def contact(self) -> NameAddr | None:
        return self.contacts[0] if self.contacts else None

    @property
    def contact_star(self) -> bool:
        return self.headers.get_all("Contact") == ["*"]

    @cached_property
    def route(self) -> tuple[NameAddr, ...]:
        return tuple(NameAddr.parse(v, "Route") for v in self.headers.get_all("Route"))

    @cached_property
    def record_route(self) -> tuple[NameAddr, ...]:
        return tuple(NameAddr.parse(v, "Record-Route") for v in self.headers.get_all("Record-Route"))

    @property
    def content_type(self) -> str | None:
        """The media type, lower case, without parameters (``application/sdp``)."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.partition(";")[0].strip(" \t").lower()

    @property
    def expires(self) -> int | None:
        return _scalar_int(self.headers.get("Expires"))

    @property
    def max_forwards(self) -> int | None:
        return _scalar_int(self.headers.get("Max-Forwards"), 255)

    @property
    def start_line(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return to_bytes(self).decode("utf-8", "replace")  # type: ignore[arg-type]

    def header_list(self, name: str) -> list[str]:
        """Option-tag style list (Require, Supported, Allow...), values stripped."""
        return self.headers.get_all(name)


@dataclass(frozen=True)
class Request(_MessageProperties):
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    @cached_property
    def parsed_uri(self) -> Uri:
        return parse_uri(self.uri)

    @property
    def sip_uri(self) -> SipUri:
        """The Request-URI as a SipUri; BadUri for other schemes (a UAS answers 416)."""
        u = self.parsed_uri
        if not isinstance(u, SipUri):
            raise BadUri("Request-URI is not a SIP URI", self.uri)
        return u

    @property
    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"


@dataclass(frozen=True)
class Response(_MessageProperties):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    @property
    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    @property
    def provisional(self) -> bool:
        return self.status < 200

    @property
    def final(self) -> bool:
        return self.status >= 200


Message = Request | Response


def to_bytes(msg: Message) -> bytes:
    """The wire form, with a Content-Length matching the body."""
    wire: bytes | None = msg.__dict__.get("_wire")
    if wire is not None:
        return wire
    return serialize(msg.start_line, msg.headers.items, msg.body)


def remember_wire(msg: Message, wire: bytes) -> None:
    """For a builder that wrote ``msg``'s wire form itself (exactly ``serialize``'s, from the same
    pairs): ``to_bytes`` returns it as is (messages are frozen: it cannot go stale)."""
    msg.__dict__["_wire"] = wire


def _hv(value: object) -> str:
    return str(value)


def make_request(
    method: str,
    uri: str | SipUri,
    *,
    from_: str | NameAddr,
    to: str | NameAddr,
    call_id: str,
    cseq: int,
    via: str | Via,
    contact: str | NameAddr | None = None,
    max_forwards: int = 70,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """A request with the mandatory headers of RFC 3261 8.1.1 in the conventional order."""
    pairs: list[tuple[str, str]] = [
        ("Via", _hv(via)),
        ("Max-Forwards", str(max_forwards)),
        ("From", _hv(from_)),
        ("To", _hv(to)),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact is not None:
        pairs.append(("Contact", _hv(contact)))
    pairs.extend((canonical_name(n), v) for n, v in headers)
    if content_type is not None:
        pairs.append(("Content-Type", content_type))
    return Request(method, str(uri), Headers._trusted(tuple(pairs), to_send=True), body)  # names canonical, as above


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    via: Iterable[str] | None = None,
) -> Response:
    """A response per RFC 3261 8.2.6.2: Via (all, in order), From, To, Call-ID, CSeq copied from the
    request; ``to_tag`` added to To when it has none; Timestamp echoed into a 100 (8.2.6.1).
    Values are copied byte-for-byte, not re-serialised, so the UAC's matching sees what it sent.
    ``via``: the Via header lines to echo instead of the request's (a server that stamped
    ``received``/``rport`` into the top one, RFC 3581 §4)."""
    vias = request.headers.get_raw("Via") if via is None else via
    pairs: list[tuple[str, str]] = [("Via", v) for v in vias]
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.headers.get(name)
        if value is None:
            continue
        if name == "To" and to_tag is not None and _lacks_tag(request):
            value = f"{value};tag={to_tag}"
        pairs.append((name, value))
    if status == 100 and "Timestamp" in request.headers:
        pairs.append(("Timestamp", request.headers.get("Timestamp") or ""))
    pairs.extend((canonical_name(n), v) for n, v in headers)
    if content_type is not None:
        pairs.append(("Content-Type", content_type))
    reason = reason if reason is not None else REASONS.get(status, "Unknown")
    return Response(status, reason, Headers._trusted(tuple(pairs), to_send=True), body)  # names canonical, as above


def _lacks_tag(request: Request) -> bool:
    try:
        return request.to.tag is None
    except (BadHeader, MissingHeader):
        return True
