"""SDP (RFC 4566 subset) for audio offer/answer (RFC 3264): parse, build, make_offer, make_answer.

Lenient on input: unknown line types and attributes are kept; a line that is not ``<type>=<value>``
(the document's ``aptime:20``, AMB-9) is skipped and reported in ``Session.anomalies`` rather than
failing the call. Strict only where offer/answer needs it (an m= line, a connection address).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pbxcheck.sip.errors import SdpError

# RFC 3551 static payload types the central's codecs use (G729.A, G711a, G711u, GSM) and a few more.
STATIC_PAYLOADS: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    18: ("G729", 8000),
}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


@dataclass(frozen=True, slots=True)
class Origin:
    # o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>
    username: str
    sess_id: str
    sess_version: str
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return f"{self.username} {self.sess_id} {self.sess_version} {self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Connection:
    # c=<nettype> <addrtype> <connection-address>
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class RtpMap:
    # a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]
    payload: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        ch = f"/{self.channels}" if self.channels else ""
        return f"{self.payload} {self.encoding}/{self.clock_rate}{ch}"


Attribute = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class Media:
    # m=<media> <port> <proto> <fmt> ...
    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: Connection | None = None
    attributes: tuple[Attribute, ...] = ()

    def attribute(self, name: str) -> str | None:
        return next((v for k, v in self.attributes if k == name), None)

    def attributes_named(self, name: str) -> list[str]:
        return [v or "" for k, v in self.attributes if k == name]

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """Declared rtpmaps, plus the RFC 3551 defaults for static payloads listed without one."""
        out: dict[int, RtpMap] = {}
        for value in self.attributes_named("rtpmap"):
            pt_s, _, enc = value.partition(" ")
            parts = enc.strip().split("/")
            if not pt_s.isdigit() or len(parts) < 2 or not parts[1].isdigit():
                continue
            ch = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
            out[int(pt_s)] = RtpMap(int(pt_s), parts[0], int(parts[1]), ch)
        for f in self.formats:
            if f.isdigit() and int(f) in STATIC_PAYLOADS and int(f) not in out:
                name, rate = STATIC_PAYLOADS[int(f)]
                out[int(f)] = RtpMap(int(f), name, rate)
        return out

    @property
    def fmtp(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for value in self.attributes_named("fmtp"):
            pt_s, _, params = value.partition(" ")
            if pt_s.isdigit():
                out[int(pt_s)] = params.strip()
        return out

    @property
    def payloads(self) -> tuple[int, ...]:
        return tuple(int(f) for f in self.formats if f.isdigit())

    @property
    def direction(self) -> str:
        for k, _ in self.attributes:
            if k in DIRECTIONS:
                return k
        return "sendrecv"  # RFC 4566 6: the default

    @property
    def ptime(self) -> int | None:
        v = self.attribute("ptime")
        return int(v) if v and v.isdigit() else None

    @property
    def telephone_event(self) -> int | None:
        for pt, rm in self.rtpmaps.items():
            if rm.encoding.lower() == "telephone-event":
                return pt
        return None


@dataclass(frozen=True, slots=True)
class Session:
    version: int
    origin: Origin
    name: str
    connection: Connection | None
    media: tuple[Media, ...]
    times: tuple[str, ...] = ("0 0",)
    attributes: tuple[Attribute, ...] = ()
    other: tuple[tuple[str, str], ...] = ()  # session-level lines we do not model (b=, i=, u=...)
    anomalies: tuple[str, ...] = field(default=(), compare=False)

    def connection_for(self, media: Media) -> Connection | None:
        """The effective c= of a media section (its own, else the session's)."""
        return media.connection or self.connection

    @property
    def audio(self) -> Media:
        for m in self.media:
            if m.media == "audio":
                return m
        raise SdpError("no audio m= line")

    def to_bytes(self) -> bytes:
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.name or '-'}"]
        lines += [f"{k}={v}" for k, v in self.other if k in "iue"]
        if self.connection:
            lines.append(f"c={self.connection}")
        lines += [f"{k}={v}" for k, v in self.other if k == "b"]
        lines += [f"t={t}" for t in self.times]
        lines += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        for m in self.media:
            lines.append(f"m={m.media} {m.port} {m.proto} {' '.join(m.formats)}")
            if m.connection:
                lines.append(f"c={m.connection}")
            lines += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in m.attributes]
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _attr(value: str) -> Attribute:
    # a=<attribute> / a=<attribute>:<value>
    name, colon, v = value.partition(":")
    return (name, v if colon else None)


def _connection(value: str, lineno: int) -> Connection:
    parts = value.split()
    if len(parts) != 3:
        raise SdpError(f"line {lineno}: c= is not <nettype> <addrtype> <address>: {value!r}")
    return Connection(*parts)


def parse_sdp(body: bytes | str) -> Session:
    """Parse an SDP body. Raises ``SdpError`` when there is no v=/o=, a bad c=/m= line or no media."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    anomalies: list[str] = []
    version: int | None = None
    origin: Origin | None = None
    name = ""
    conn: Connection | None = None
    times: list[str] = []
    attrs: list[Attribute] = []
    other: list[tuple[str, str]] = []
    media: list[Media] = []
    cur: Media | None = None  # the m= section being read; its attributes collect in cur_attrs
    cur_attrs: list[Attribute] = []

    for lineno, raw in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        line = raw.rstrip("\r")
        if not line:
            continue
        # every line is <type>=<value>, <type> one letter (RFC 4566 5); anything else is reported
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            anomalies.append(f"line {lineno}: {line!r} is not <type>=<value>; ignored")
            continue
        kind, value = line[0], line[2:]
        if kind == "v":
            if not value.strip().isdigit():
                raise SdpError(f"line {lineno}: bad v= {value!r}")
            version = int(value.strip())
        elif kind == "o":
            parts = value.split()
            if len(parts) != 6:
                raise SdpError(f"line {lineno}: o= needs 6 fields: {value!r}")
            origin = Origin(*parts)
        elif kind == "s":
            name = value
        elif kind == "c":
            if cur is None:
                conn = _connection(value, lineno)
            else:
                cur = replace(cur, connection=_connection(value, lineno))
        elif kind == "t":
            times.append(value)
        elif kind == "m":
            if cur is not None:
                media.append(replace(cur, attributes=tuple(cur_attrs)))
            cur_attrs = []
            parts = value.split()
            if len(parts) < 4 or not parts[1].partition("/")[0].isdigit():
                raise SdpError(f"line {lineno}: m= is not <media> <port> <proto> <fmt>...: {value!r}")
            port = int(parts[1].partition("/")[0])
            if port > 65535:
                raise SdpError(f"line {lineno}: m= port out of range: {value!r}")
            cur = Media(parts[0], port, parts[2], tuple(parts[3:]))
        elif kind == "a":
            (attrs if cur is None else cur_attrs).append(_attr(value))
        else:
            if kind not in "iuepbzkr":
                anomalies.append(f"line {lineno}: unknown type {kind!r}; kept")
            if cur is None:
                other.append((kind, value))
    if cur is not None:
        media.append(replace(cur, attributes=tuple(cur_attrs)))
    if version is None or origin is None:
        raise SdpError("SDP without v= or o=")
    if not media:
        raise SdpError("SDP without m= line")
    return Session(
        version,
        origin,
        name,
        conn,
        tuple(media),
        tuple(times) or ("0 0",),
        tuple(attrs),
        tuple(other),
        tuple(anomalies),
    )


def _codec_attrs(payloads: list[int], rtpmaps: dict[int, RtpMap], fmtps: dict[int, str]) -> list[Attribute]:
    out: list[Attribute] = []
    for pt in payloads:
        if pt in rtpmaps:
            out.append(("rtpmap", str(rtpmaps[pt])))
        if pt in fmtps:
            out.append(("fmtp", f"{pt} {fmtps[pt]}"))
    return out


def make_offer(
    ip: str,
    rtp_port: int,
    codecs: tuple[int, ...] = (18, 0, 8, 3),
    telephone_event: int | None = 101,
    *,
    session_id: int = 0,
    ptime: int | None = 20,
    direction: str = "sendrecv",
    username: str = "-",
) -> Session:
    """An audio offer like the document's device: static codecs in preference order, optionally
    telephone-event (RFC 4733) on a dynamic payload type."""
    rtpmaps = {pt: RtpMap(pt, *STATIC_PAYLOADS[pt]) for pt in codecs if pt in STATIC_PAYLOADS}
    fmtps = {18: "annexb=no"} if 18 in codecs else {}
    payloads = list(codecs)
    if telephone_event is not None:
        payloads.append(telephone_event)
        rtpmaps[telephone_event] = RtpMap(telephone_event, "telephone-event", 8000)
        fmtps[telephone_event] = "0-16"
    attrs = _codec_attrs(payloads, rtpmaps, fmtps)
    if ptime:
        attrs.append(("ptime", str(ptime)))
    attrs.append((direction, None))
    addrtype = "IP6" if ":" in ip else "IP4"
    return Session(
        0,
        Origin(username, str(session_id), str(session_id), "IN", addrtype, ip),
        "pbxcheck",
        Connection("IN", addrtype, ip),
        (Media("audio", rtp_port, "RTP/AVP", tuple(map(str, payloads)), None, tuple(attrs)),),
    )


def make_answer(
    offer: Session,
    supported: tuple[int, ...] = (18, 8, 0, 3),
    *,
    ip: str,
    rtp_port: int,
    session_id: int = 0,
    username: str = "-",
) -> Session:
    """The RFC 3264 answer: for the first audio stream, the first *offered* payload we support
    (offer order wins), plus the offer's telephone-event payload echoed; other streams rejected
    with port 0. Raises ``SdpError`` when no codec is common (answer 488)."""
    answered: list[Media] = []
    chosen_any = False
    addrtype = "IP6" if ":" in ip else "IP4"
    for m in offer.media:
        if m.media != "audio" or m.port == 0 or chosen_any:
            answered.append(Media(m.media, 0, m.proto, m.formats[:1]))
            continue
        maps = m.rtpmaps
        choice = next((pt for pt in m.payloads if pt in supported and pt < 96), None)
        if choice is None:
            # a dynamic payload whose encoding is one of ours (e.g. PCMU on 96)
            wanted = {STATIC_PAYLOADS[s][0].lower() for s in supported if s in STATIC_PAYLOADS}
            choice = next((pt for pt in m.payloads if pt in maps and maps[pt].encoding.lower() in wanted), None)
        if choice is None:
            raise SdpError(f"no common codec: offered {m.formats}, supported {supported}")
        chosen_any = True
        payloads = [choice]
        te = m.telephone_event
        if te is not None:
            payloads.append(te)
        maps.setdefault(choice, RtpMap(choice, *STATIC_PAYLOADS.get(choice, ("unknown", 8000))))
        attrs = _codec_attrs(payloads, maps, m.fmtp)
        if m.ptime:
            attrs.append(("ptime", str(m.ptime)))
        attrs.append((_REVERSE[m.direction], None))
        answered.append(Media("audio", rtp_port, m.proto, tuple(map(str, payloads)), None, tuple(attrs)))
    if not chosen_any:
        raise SdpError("no audio stream to answer")
    return Session(
        0,
        Origin(username, str(session_id), str(session_id), "IN", addrtype, ip),
        "pbxcheck",
        Connection("IN", addrtype, ip),
        tuple(answered),
    )


def with_version(session: Session, version: int) -> Session:
    """The same session description with o= sess-version bumped (RFC 3264 8: re-offers)."""
    return replace(session, origin=replace(session.origin, sess_version=str(version)))
