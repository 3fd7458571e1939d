"""RFC 4475 torture messages: parse outcome per file, values of the valid ones, the UAS answer.

Where RFC 4475 lets an element either reject or parse leniently, the choice is stated in the
table (``lenient``). Application-layer messages (section 3.3) parse; ``uas_precheck`` gives the
answer the RFC names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcheck.sip.errors import (
    BadContentLength,
    BadCSeq,
    BadNameAddr,
    BadStartLine,
    BadUri,
    BadVia,
    SipParseError,
)
from pbxcheck.sip.headers import AbsoluteUri, SipUri, unescape
from pbxcheck.sip.message import Request, Response, to_bytes
from pbxcheck.sip.parser import StreamFramer, parse_message
from pbxcheck.sip.validate import reject_unparseable, uas_precheck

DIR = Path(__file__).resolve().parents[3] / "fixtures" / "rfc4475"

# file -> (RFC section, expected: SipParseError subclass | "parsed" | "lenient", precheck status or None)
# "lenient": RFC 4475 says the message is invalid but allows ignoring the fault; we parse it.
EXPECTED: dict[str, tuple[str, type[SipParseError] | str, int | None]] = {
    # 3.1.1 valid
    "wsinv": ("3.1.1.1", "parsed", None),
    "intmeth": ("3.1.1.2", "parsed", None),
    "esc01": ("3.1.1.3", "parsed", None),
    "escnull": ("3.1.1.4", "parsed", None),
    "esc02": ("3.1.1.5", "parsed", None),
    "lwsdisp": ("3.1.1.6", "parsed", None),
    "longreq": ("3.1.1.7", "parsed", None),
    "dblreq": ("3.1.1.8", "parsed", None),
    "semiuri": ("3.1.1.9", "parsed", None),
    "transports": ("3.1.1.10", "parsed", None),
    # multipart/mixed is well formed; our UAS takes only application/sdp bodies -> 415 (the RFC only
    # requires that the parser accept it "even if the application above does not support" it).
    "mpart01": ("3.1.1.11", "parsed", 415),
    "unreason": ("3.1.1.12", "parsed", None),
    "noreason": ("3.1.1.13", "parsed", None),
    # 3.1.2 invalid
    "badinv01": ("3.1.2.1", BadVia, None),
    "clerr": ("3.1.2.2", BadContentLength, None),
    "ncl": ("3.1.2.3", BadContentLength, None),
    "scalar02": ("3.1.2.4", BadCSeq, None),
    "scalarlg": ("3.1.2.5", BadCSeq, None),
    "quotbal": ("3.1.2.6", BadNameAddr, None),
    "ltgtruri": ("3.1.2.7", BadUri, None),
    "lwsruri": ("3.1.2.8", BadStartLine, None),
    "lwsstart": ("3.1.2.9", "lenient", None),  # extra SP ignored, as the RFC allows
    "trws": ("3.1.2.10", "lenient", None),  # trailing SP ignored, as the RFC allows
    "escruri": ("3.1.2.11", BadUri, None),
    "baddate": ("3.1.2.12", "lenient", None),  # Date is not interpreted, so its zone does not matter
    "regbadct": ("3.1.2.13", BadNameAddr, None),
    "badaspec": ("3.1.2.14", "lenient", None),  # spaces inside <> ignored, as the RFC allows
    "baddn": ("3.1.2.15", BadNameAddr, None),
    "badvers": ("3.1.2.16", "parsed", 505),
    "mismatch01": ("3.1.2.17", BadCSeq, None),
    "mismatch02": ("3.1.2.18", BadCSeq, None),
    "bigcode": ("3.1.2.19", BadStartLine, None),
    # 3.2 transaction layer
    "badbranch": ("3.2.1", "parsed", None),
    # 3.3 application layer
    "insuf": ("3.3.1", "parsed", 400),
    "unkscm": ("3.3.2", "parsed", 416),
    "novelsc": ("3.3.3", "parsed", 416),
    "unksm2": ("3.3.4", "parsed", 400),
    "bext01": ("3.3.5", "parsed", 420),
    "invut": ("3.3.6", "parsed", 415),
    "regaut01": ("3.3.7", "parsed", None),  # answered 401 by the registrar's digest layer
    "multi01": ("3.3.8", "parsed", 400),
    "mcl01": ("3.3.9", "parsed", 400),
    "bcast": ("3.3.10", "parsed", None),
    "zeromf": ("3.3.11", "parsed", 483),
    "cparam01": ("3.3.12", "parsed", None),
    "cparam02": ("3.3.13", "parsed", None),
    "regescrt": ("3.3.14", "parsed", None),
    "sdp01": ("3.3.15", "parsed", 406),
    # 3.4 backward compatibility
    "inv2543": ("3.4.1", "parsed", None),
    # in the archive, referenced by no section: a Request-Line without SIP-Version
    "test": ("-", BadStartLine, None),
}


def _load(name: str) -> bytes:
    return (DIR / f"{name}.dat").read_bytes()


def test_table_covers_every_file() -> None:
    assert sorted(p.stem for p in DIR.glob("*.dat")) == sorted(EXPECTED)
    assert len(EXPECTED) == 50  # 49 referenced + test.dat


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_outcome(name: str) -> None:
    _, expected, status = EXPECTED[name]
    data = _load(name)
    if isinstance(expected, type):
        with pytest.raises(expected) as exc:
            parse_message(data)
        assert type(exc.value) is expected
        answer = reject_unparseable(data, exc.value)
        if data.startswith(b"SIP/") or name == "test":
            assert answer is None or name == "test"  # responses are dropped
        else:
            assert answer is not None and answer.startswith(b"SIP/2.0 400 Bad Request")
            # headers are copied verbatim (even the faulty ones), so check the bytes, not a parse
            assert f"\r\nCall-ID: {raw_call_id(data)}\r\n".encode() in answer
        return
    msg = parse_message(data)
    assert parse_message(to_bytes(msg)) == parse_message(to_bytes(parse_message(to_bytes(msg))))
    if isinstance(msg, Request):
        rejection = uas_precheck(msg)
        assert (rejection.status if rejection else None) == status, rejection
    else:
        assert status is None


def raw_call_id(data: bytes) -> str:
    for line in data.split(b"\r\n"):
        if line.lower().startswith((b"call-id:", b"i:")):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError("no Call-ID")


# --- values of the valid ones ---------------------------------------------------------------------


def _req(name: str) -> Request:
    m = parse_message(_load(name))
    assert isinstance(m, Request)
    return m


def test_wsinv_values() -> None:
    m = _req("wsinv")
    assert m.sip_uri.params == (("unknownparam", None),)
    assert m.to.tag == "1918181833n" and str(m.to.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert m.from_.display == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    assert m.max_forwards == 68 and m.cseq == (9, "INVITE") and m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert [(v.transport, v.host, v.branch) for v in m.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert (
        m.headers.get("s") == "" and m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    )
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    c = m.contact
    assert c is not None and c.display == 'Quoted string ""' and c.param("newparam") == "newvalue"
    assert c.has_param("secondparam") and c.param("q") == "0.33"
    assert m.route[0].sip_uri.params[-1] == ("unknown-no-value", None)
    assert len(m.body) == 150 and m.content_type == "application/sdp"


def test_intmeth_values() -> None:
    m = _req("intmeth")
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~" == m.cseq.method
    u = m.sip_uri
    assert u.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert u.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)" and u.host == "example.com"
    assert m.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_.display == "token1~` token2'+_ token3*%!.-" and m.from_.tag == "_token~1'+`*%!-."
    assert m.from_.param("fromParam''~+*_!.-%") == "работающий"
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~" and m.max_forwards == 255


def test_escapes() -> None:
    m = _req("esc01")
    assert m.sip_uri.user == "sips%3Auser%40example.com" and unescape(m.sip_uri.user or "") == "sips:user@example.com"
    assert unescape(m.to.sip_uri.user or "") == "user" and unescape(m.from_.sip_uri.user or "") == "I have spaces"
    c = m.contact
    assert c is not None and c.sip_uri.params == (("%6C%72", None), ("n%61me", "v%61lue%25%34%31"))
    assert m.content_type == "application/sdp"
    n = _req("escnull")
    assert unescape(n.to.sip_uri.user or "") == "null-\x00-null"
    assert [unescape(c.sip_uri.user or "") for c in n.contacts] == ["\x00", "\x00\x00"]
    e = _req("esc02")
    assert e.method == "RE%47IST%45R" and e.method != "REGISTER"
    assert e.to.display == "%Z%45" and e.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert [c.sip_uri.user for c in e.contacts] == ["alias1", "alias3"]  # C%6Fntact is another header


def test_small_valid_ones() -> None:
    assert _req("lwsdisp").from_.display == "caller"
    longreq = _req("longreq")
    assert len(longreq.via) > 10 and longreq.to.display is not None and len(longreq.body) > 0
    d = _req("dblreq")
    assert d.method == "REGISTER" and d.body == b"" and d.call_id.startswith("dblreq.0ha0isndaksdj99")
    s = _req("semiuri")
    assert (s.sip_uri.user, s.sip_uri.host, s.sip_uri.params) == ("user;par=u%40example.net", "example.com", ())
    assert len(s.headers.get_all("Accept")) == 6
    t = _req("transports")
    assert [v.transport for v in t.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    mp = _req("mpart01")
    assert len(mp.body) == 553 and b"\x00" in mp.body
    r = parse_message(_load("unreason"))
    assert isinstance(r, Response) and r.status == 200 and "простое" in r.reason
    nr = parse_message(_load("noreason"))
    assert isinstance(nr, Response) and (nr.status, nr.reason) == (100, "")


def test_lenient_ones() -> None:
    assert _req("lwsstart").uri == "sip:user@example.com"
    assert _req("trws").version == "SIP/2.0"
    assert str(_req("badaspec").to.uri) == "sip:t.watson@example.org"
    assert _req("baddate").headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"
    assert _req("badvers").version == "SIP/7.0"


def test_application_layer_values() -> None:
    assert not _req("badbranch").top_via.rfc3261_branch
    assert isinstance(_req("unkscm").parsed_uri, AbsoluteUri) and isinstance(_req("novelsc").parsed_uri, AbsoluteUri)
    u = _req("unksm2")
    assert str(u.to.uri) == "isbn:2983792873" and str(u.from_.uri) == "http://www.example.com"
    assert u.contact is not None and u.contact.uri == AbsoluteUri("name", "John_Smith")
    bext = uas_precheck(_req("bext01"))
    assert bext is not None and ("Unsupported", "nothingSupportsThis, nothingSupportsThisEither") in bext.headers
    invut = uas_precheck(_req("invut"))
    assert invut is not None and ("Accept", "application/sdp") in invut.headers
    resp = invut.response(_req("invut"), to_tag="t1")
    assert resp.status == 415 and resp.to.tag == "t1" and resp.headers.get("Accept") == "application/sdp"
    c1, c2 = _req("cparam01").contact, _req("cparam02").contact
    assert c1 is not None and c1.has_param("unknownparam") and isinstance(c1.uri, SipUri) and c1.uri.params == ()
    assert c2 is not None and not c2.has_param("unknownparam") and c2.sip_uri.has_param("unknownparam")
    rc = _req("regescrt").contact
    assert rc is not None and rc.sip_uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)
    b = parse_message(_load("bcast"))
    assert isinstance(b, Response) and b.via[1].host == "255.255.255.255"
    inv = _req("inv2543")
    assert inv.branch is None and inv.max_forwards is None and inv.to.tag is None and len(inv.body) > 0


def test_stream_framing_of_dblreq_and_mcl01() -> None:
    # On a stream, dblreq's INVITE (Content-Length 150) is followed by 5 stray bytes that start
    # a message which cannot be framed: two messages, then the framer gives up on the stream.
    data = _load("dblreq")
    framer = StreamFramer()
    msgs = framer.feed(data[:-5])
    assert [parse_message(m).cseq.method for m in msgs] == ["REGISTER", "INVITE"]
    with pytest.raises(BadContentLength):
        framer.feed(data[-5:])
    with pytest.raises(BadContentLength):
        StreamFramer().feed(_load("mcl01"))
