"""The one REGISTER builder (RFC 3261 §10.2): every REGISTER the harness sends is made here.

The user agent, the blocking client (``drivers.blocking.register_once``), the Locust SIP user, the
probes and the exact-bytes senders (``drivers.craft.register_bytes``, the registration bench) all
call :func:`make_register`; bytes come from ``message.to_bytes(make_register(...))``.

§10.2 in short: Request-URI ``sip:<domain>`` (no user part), To = From = the address of record,
From with a tag, one Call-ID and increasing CSeq numbers for every REGISTER to one registrar
(§10.2.4: a refresh reuses Call-ID, From tag and bumps CSeq: pass them in), Contact the binding
(``*`` with ``Expires: 0`` removes all), Expires the asked duration, and a fresh branch every time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pbxcheck.sip.grammar import canonical_name
from pbxcheck.sip.headers import NameAddr
from pbxcheck.sip.ids import new_branch, new_call_id, new_tag
from pbxcheck.sip.message import Headers, Request, remember_wire, to_bytes
from pbxcheck.sip.transaction import remember_client_key

__all__ = ["make_register", "register_bytes", "register_maker"]

Auth = str | Iterable[tuple[str, str]] | None


def make_register(
    domain: str,
    user: str,
    *,
    sent_by: str | tuple[str, int],
    transport: str = "UDP",
    call_id: str | None = None,
    cseq: int = 1,
    from_tag: str | None = None,
    expires: int | None = 90,
    contact: str | NameAddr | None = None,
    authorization: Auth = None,
    uri: str | None = None,
    aor: str | NameAddr | None = None,
    branch: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    user_agent: str | None = "pbxcheck",
) -> Request:
    """A REGISTER of ``user@domain`` sent from ``sent_by`` (``"host:port"``, ``(ip, port)`` or a
    WebSocket's ``<random>.invalid``) over ``transport``.

    - ``call_id``/``from_tag``/``cseq``: pass the previous ones (CSeq + 1) for a refresh; fresh ones
      are drawn from ``sip.ids`` when None.
    - ``contact``: the binding; None builds ``<sip:user@sent_by;transport=t>``; ``"*"`` for a removal;
      ``""`` writes none (a fetch of the bindings, §10.2.3).
    - ``expires``: the Expires header (None: none written).
    - ``authorization``: an Authorization value, or (name, value) pairs (``Proxy-Authorization``,
      one per realm), written last.
    - ``uri``: the Request-URI (default ``sip:<domain>``); ``aor``: To/From without tag
      (default ``<sip:user@domain>``); ``branch``: the Via branch (default a fresh one);
      ``headers``: extra pairs written after Contact (Allow, Supported...).
    """
    host = sent_by if isinstance(sent_by, str) else f"{sent_by[0]}:{sent_by[1]}"
    # Given Call-ID and tag (a refresh, a load generator's next REGISTER): the lines are the same as
    # last time but for Via, CSeq and Authorization, and the shape made then is used again.
    remembered = call_id is not None and from_tag is not None
    shape = _shape(domain, user, host, transport, call_id or new_call_id(), from_tag or new_tag(), expires, contact,
                   uri, aor, tuple(headers), user_agent, remember=remembered)  # fmt: skip
    return shape.make(branch or new_branch(), cseq, authorization)


def register_maker(
    domain: str,
    user: str,
    *,
    sent_by: str | tuple[str, int],
    call_id: str,
    from_tag: str,
    transport: str = "UDP",
    expires: int | None = 90,
    contact: str | None = None,
    uri: str | None = None,
    aor: str | None = None,
    user_agent: str | None = "pbxcheck",
) -> Callable[[int, str | None], Request]:
    """``make(cseq, authorization)``: ``make_register`` with these arguments and a fresh branch, its
    lines looked up once here instead of once per REGISTER (a load generator's extension)."""
    host = sent_by if isinstance(sent_by, str) else f"{sent_by[0]}:{sent_by[1]}"
    if contact == "*":
        raise ValueError("register_maker: a removal (Contact: *) is made by make_register")
    make = _shape(domain, user, host, transport, call_id, from_tag, expires, contact, uri, aor, (), user_agent).make
    return lambda cseq, authorization: make(new_branch(), cseq, authorization)


def register_bytes(domain: str, user: str, *, sent_by: str | tuple[str, int], **kw: object) -> bytes:
    """``to_bytes(make_register(...))``: the same REGISTER as wire bytes (floods, replays, benches)."""
    return to_bytes(make_register(domain, user, sent_by=sent_by, **kw))  # type: ignore[arg-type]


class _Shape:
    """A REGISTER's lines but Via, CSeq and Authorization, made once: the header pairs and the wire
    text around the branch, the CSeq number and the Authorization. ``make``'s bytes are exactly
    ``serialize``'s for its pairs (``tests/unit/sip/test_sip_register_builder.py`` compares them
    with ``make_request`` + ``serialize``), remembered on the request so that ``to_bytes`` does not
    join them again."""

    __slots__ = ("uri", "via", "middle", "after", "start", "mid_text", "after_text")

    def __init__(self, uri: str, via: str, middle: tuple[tuple[str, str], ...], after: tuple[tuple[str, str], ...]):
        self.uri, self.via, self.middle, self.after = uri, via, middle, after
        self.start = f"REGISTER {uri} SIP/2.0\r\nVia: {via}"
        self.mid_text = _lines(middle) + "\r\nCSeq: "
        self.after_text = " REGISTER" + _lines(after)

    def make(self, branch: str, cseq: int, authorization: Auth) -> Request:
        pairs = (("Via", f"{self.via}{branch}"), *self.middle, ("CSeq", f"{cseq} REGISTER"), *self.after)
        auth: tuple[tuple[str, str], ...] = ()
        auth_text = ""
        if isinstance(authorization, str):  # the common case, written without a loop
            auth = (("Authorization", authorization),)
            auth_text = f"\r\nAuthorization: {authorization}"
        elif authorization is not None:
            auth = tuple((canonical_name(n), v) for n, v in authorization)
            auth_text = _lines(auth)
        wire = f"{self.start}{branch}{self.mid_text}{cseq}{self.after_text}{auth_text}\r\nContent-Length: 0\r\n\r\n"
        request = Request("REGISTER", self.uri, Headers._trusted(pairs + auth, to_send=True), b"")
        remember_wire(request, wire.encode("utf-8", "surrogateescape"))
        # the branch is the Via's last parameter, as written: the engine's matching needs no parse of it
        return remember_client_key(request, branch)


def _lines(pairs: tuple[tuple[str, str], ...]) -> str:
    # as serialize writes them; a Content-Length among them is dropped (the body's is written last)
    return "".join(f"\r\n{n}: {v}" for n, v in pairs if n != "Content-Length")


_SHAPES: dict[tuple[object, ...], _Shape] = {}
_SHAPES_MAX = 4096


def _shape(
    domain: str,
    user: str,
    host: str,
    transport: str,
    call_id: str,
    from_tag: str,
    expires: int | None,
    contact: str | NameAddr | None,
    uri: str | None,
    aor: str | NameAddr | None,
    headers: tuple[tuple[str, str], ...],
    user_agent: str | None,
    *,
    remember: bool = True,
) -> _Shape:
    """make_register's lines for these arguments, remembered (``remember``) for the next call with
    the same ones."""
    key = (domain, user, host, transport, call_id, from_tag, expires, contact, uri, aor, headers, user_agent)
    if remember:
        try:
            return _SHAPES[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable header value: made each time
            remember = False
    t = transport.upper()
    if aor is None:
        aor = f"<sip:{user}@{domain}>"
    from_ = aor.with_tag(from_tag) if isinstance(aor, NameAddr) else f"{aor};tag={from_tag}"
    if contact is None:
        contact = f"<sip:{user}@{host};transport={t.lower()}>"
    middle = (("Max-Forwards", "70"), ("From", str(from_)), ("To", str(aor)), ("Call-ID", call_id))
    after: list[tuple[str, str]] = [("Contact", str(contact))] if contact else []  # "": none (a fetch)
    if user_agent:
        after.append(("User-Agent", user_agent))
    after.extend((canonical_name(n), v) for n, v in headers)
    if expires is not None:
        after.append(("Expires", str(expires)))
    shape = _Shape(uri or f"sip:{domain}", f"SIP/2.0/{t} {host};rport;branch=", middle, tuple(after))
    if remember:
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()  # a long run's refreshes keep few distinct shapes; junk never grows it
        _SHAPES[key] = shape
    return shape
