"""sip.register.make_register: the one REGISTER builder (RFC 3261 §10.2)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcheck.sip import register
from pbxcheck.sip.message import make_request, to_bytes
from pbxcheck.sip.parser import parse_message
from pbxcheck.sip.register import make_register, register_bytes
from pbxcheck.sip.serializer import serialize
from pbxcheck.sip.transaction import client_key


def test_register_fields_and_refresh_reuse() -> None:
    req = make_register(
        "pbx.test",
        "2001",
        sent_by=("127.0.0.1", 5070),
        call_id="cid1",
        cseq=7,
        from_tag="t1",
        expires=60,
        authorization='Digest username="2001"',
    )
    assert req.method == "REGISTER" and req.uri == "sip:pbx.test"
    assert req.call_id == "cid1" and req.cseq.number == 7 and req.from_.tag == "t1" and req.to.tag is None
    assert req.headers.get("Expires") == "60" and req.headers.get("Authorization", "").startswith("Digest")
    assert str(req.contact) == "<sip:2001@127.0.0.1:5070;transport=udp>"
    assert req.top_via.transport == "UDP" and (req.branch or "").startswith("z9hG4bK")
    again = make_register("pbx.test", "2001", sent_by=("127.0.0.1", 5070), call_id="cid1", cseq=8, from_tag="t1")
    assert again.branch != req.branch


def test_register_bytes_parse_back_and_options() -> None:
    raw = register_bytes(
        "pbx.test",
        "2001",
        sent_by="abc.invalid",
        transport="WSS",
        contact="*",
        expires=0,
        authorization=[("Proxy-Authorization", "Digest x=1")],
        user_agent=None,
    )
    msg = parse_message(raw)
    assert msg.contact_star and msg.expires == 0 and "User-Agent" not in msg.headers
    assert msg.headers.get("Proxy-Authorization") == "Digest x=1" and msg.top_via.transport == "WSS"


_TEXT = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="\x7f"), min_size=1, max_size=12
)


@settings(max_examples=150, deadline=None)
@given(
    user=_TEXT,
    domain=_TEXT,
    transport=st.sampled_from(["UDP", "tcp", "WSS"]),
    cseq=st.integers(1, 2**31 - 1),
    expires=st.none() | st.integers(0, 7200),
    contact=st.none() | st.just("") | _TEXT,
    authorization=st.none() | _TEXT,
    headers=st.lists(
        st.tuples(st.sampled_from(["Allow", "supported", "k", "Content-Length", "X-Test"]), _TEXT), max_size=3
    ),
    user_agent=st.none() | _TEXT,
)
def test_the_remembered_shape_builds_what_make_request_builds(
    user: str,
    domain: str,
    transport: str,
    cseq: int,
    expires: int | None,
    contact: str | None,
    authorization: str | None,
    headers: list[tuple[str, str]],
    user_agent: str | None,
) -> None:
    """make_register writes its lines and bytes from a remembered shape; the oracle is §10.2's
    layout assembled with the generic ``make_request`` and ``serialize``."""
    kw = {
        "sent_by": ("192.0.2.7", 5062), "transport": transport, "call_id": "cid-shape", "cseq": cseq, "from_tag": "ft",
        "expires": expires, "contact": contact, "authorization": authorization, "branch": "z9hG4bK-shape",
        "headers": headers, "user_agent": user_agent,
    }  # fmt: skip
    fast = make_register(domain, user, **kw)  # type: ignore[arg-type]
    again = make_register(domain, user, **kw)  # type: ignore[arg-type]  # the same shape, remembered
    assert "_wire" in fast.__dict__
    t = transport.upper()
    aor = f"<sip:{user}@{domain}>"
    extra = [("User-Agent", user_agent)] if user_agent else []
    extra += headers
    extra += [("Expires", str(expires))] if expires is not None else []
    extra += [("Authorization", authorization)] if authorization is not None else []
    general = make_request(
        "REGISTER", f"sip:{domain}", from_=f"{aor};tag=ft", to=aor, call_id="cid-shape", cseq=cseq,
        via=f"SIP/2.0/{t} 192.0.2.7:5062;rport;branch=z9hG4bK-shape",
        contact=(f"<sip:{user}@192.0.2.7:5062;transport={t.lower()}>" if contact is None else contact) or None,
        headers=extra,
    )  # fmt: skip
    assert "_wire" not in general.__dict__
    for made in (fast, again):
        assert (made.method, made.uri, made.headers.items, made.body) == (
            general.method, general.uri, general.headers.items, general.body)  # fmt: skip
        assert to_bytes(made) == to_bytes(general) == serialize(made.start_line, made.headers.items, made.body)
    assert client_key(fast) == client_key(general) == ("z9hG4bK-shape", "REGISTER")


def test_authorization_pairs_and_fresh_identifiers_take_the_same_path() -> None:
    pairs = [("proxy-authorization", 'Digest username="2001"'), ("Proxy-Authorization", "Digest x=1")]
    req = make_register("pbx.test", "2001", sent_by="abc.invalid", transport="WSS", authorization=pairs)
    assert req.headers.get_raw("Proxy-Authorization") == ['Digest username="2001"', "Digest x=1"]
    assert to_bytes(req) == serialize(req.start_line, req.headers.items, req.body)
    other = make_register("pbx.test", "2001", sent_by="abc.invalid", transport="WSS", authorization=pairs)
    assert other.call_id != req.call_id and other.from_.tag != req.from_.tag  # drawn fresh each time


def test_a_maker_builds_what_make_register_builds() -> None:
    kw = {"sent_by": ("192.0.2.7", 5062), "call_id": "cid-maker", "from_tag": "ft", "expires": 300}
    make = register.register_maker("pbx.test", "2001", **kw)  # type: ignore[arg-type]
    made = make(3, 'Digest username="2001"')
    same = make_register("pbx.test", "2001", cseq=3, authorization='Digest username="2001"', branch=made.branch, **kw)  # type: ignore[arg-type]
    assert made.headers.items == same.headers.items and to_bytes(made) == to_bytes(same)
    assert make(4, None).branch != made.branch  # a fresh branch each time
    with pytest.raises(ValueError):
        register.register_maker("pbx.test", "2001", contact="*", **kw)  # type: ignore[arg-type]
