"""Digest: RFC 2617 / RFC 7616 test vectors, parse/format, build/verify, the document's INVITE."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcheck.contract import SIP_REALM
from pbxcheck.sip import samples
from pbxcheck.sip.digest import (
    Challenge,
    Credentials,
    build_authorization,
    challenge_header,
    compute_ha1,
    compute_response,
    credentials_header,
    verify,
)
from pbxcheck.sip.errors import DigestError
from pbxcheck.sip.parser import parse_message


def test_rfc2617_section_3_5_example() -> None:
    auth = (
        'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", '
        'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    c = Credentials.parse(auth)
    assert c.response == compute_response(
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nonce=c.nonce,
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert verify(c, "Circle Of Life", "GET") and not verify(c, "circle of life", "GET")
    assert not verify(c, "Circle Of Life", "POST")


RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


@pytest.mark.parametrize(
    "algorithm, response",
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1(algorithm: str, response: str) -> None:
    got = compute_response(
        algorithm=algorithm,
        username="Mufasa",
        realm="http-auth@example.org",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        nonce=RFC7616_NONCE,
        qop="auth",
        nc="00000001",
        cnonce=RFC7616_CNONCE,
    )
    assert got == response


def test_challenge_parse_and_format() -> None:
    ch = Challenge.parse('Digest realm="xhand", nonce="n1", opaque="o", algorithm=MD5, qop="auth,auth-int", stale=TRUE')
    assert (ch.realm, ch.nonce, ch.opaque, ch.algorithm, ch.qop, ch.stale) == (
        "xhand",
        "n1",
        "o",
        "MD5",
        ("auth", "auth-int"),
        True,
    )
    assert Challenge.parse(str(ch)) == ch
    text = str(Challenge(SIP_REALM, "abc", opaque="op"))
    assert text == 'Digest realm="xhand", nonce="abc", opaque="op", algorithm=MD5, qop="auth"'
    assert Challenge.parse('Digest realm="r", nonce="n"').qop == ()
    for bad in ('Basic realm="r"', 'Digest nonce="n"', "Digest", 'Digest realm="r", nonce="n", algorithm=SHA-1'):
        with pytest.raises(DigestError):
            Challenge.parse(bad)


@pytest.mark.parametrize("algorithm", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"])
@pytest.mark.parametrize("qop", [("auth",), ()])
def test_build_then_verify_round_trip(algorithm: str, qop: tuple[str, ...]) -> None:
    ch = Challenge("xhand", "nonce-1", opaque="op", algorithm=algorithm, qop=qop)
    creds = build_authorization(ch, "6961", "s3cret", "INVITE", "sip:944511712@pbx", nc=3, cnonce="cn")
    assert creds.nc == ("00000003" if qop else None) and creds.opaque == "op"
    parsed = Credentials.parse(str(creds))
    assert parsed == creds
    assert verify(parsed, "s3cret", "INVITE", realm="xhand")
    assert verify(parsed, None, "INVITE", ha1=compute_ha1(algorithm.removesuffix("-sess"), "6961", "xhand", "s3cret"))
    assert not verify(parsed, "wrong", "INVITE") and not verify(parsed, "s3cret", "INVITE", realm="other")


def test_auth_int_uses_the_body() -> None:
    kw = dict(
        username="u",
        realm="r",
        password="p",
        method="MESSAGE",
        uri="sip:a@b",
        nonce="n",
        qop="auth-int",
        nc="00000001",
        cnonce="c",
    )
    assert compute_response(**kw, body=b"x") != compute_response(**kw, body=b"y")  # type: ignore[arg-type]


def test_document_invite_authorization_parses() -> None:
    m = parse_message(samples.INVITE_AUTH)
    c = Credentials.parse(m.headers.get("Authorization") or "")
    assert (c.username, c.realm, c.algorithm, c.qop, c.nc) == ("6961", SIP_REALM, "MD5", "auth", "00000001")
    assert c.uri == "sip:944511712@widecloud.intelbras.com.br:7048;transport=udp"


def test_regaut01_unknown_scheme_is_a_digest_error() -> None:
    data = (Path(__file__).resolve().parents[3] / "fixtures" / "rfc4475" / "regaut01.dat").read_bytes()
    m = parse_message(data)
    with pytest.raises(DigestError, match="NoOneKnowsThisScheme"):
        Credentials.parse(m.headers.get("Authorization") or "")


def test_credentials_with_qop_need_cnonce_and_nc() -> None:
    with pytest.raises(DigestError):
        Credentials.parse('Digest username="u", realm="r", nonce="n", uri="sip:a", response="x", qop=auth')
    with pytest.raises(DigestError):
        compute_response(username="u", realm="r", method="M", uri="u", nonce="n")


def test_header_names() -> None:
    assert (challenge_header(401), challenge_header(407)) == ("WWW-Authenticate", "Proxy-Authenticate")
    assert (credentials_header(401), credentials_header(407)) == ("Authorization", "Proxy-Authorization")
