"""sip.register.make_register: the one REGISTER builder (RFC 3261 §10.2)."""

from pbxcheck.sip.parser import parse_message
from pbxcheck.sip.register import make_register, register_bytes


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
