"""SIP-REG-1..3: REGISTER on the SIP port, over UDP and over TCP ("Registro de Ramais - Método TCP/UDP").

The document's device sends REGISTER, gets ``401 Unauthorized``, sends the same REGISTER again with
its credentials and gets ``200 OK`` (Expires 90). These probes do exactly that with each transport,
then push on the edges: a wrong password, an unknown extension (which must look exactly like a wrong
password), and the binding's lifetime (Expires honoured, Expires 0 removes it).
"""

from __future__ import annotations

import re

import pytest

from pbxcheck.checks import Observe, blocked_by, sipkit
from pbxcheck.checks.sipsession import SipSession
from pbxcheck.contract import ClauseId
from pbxcheck.sip.message import Response
from pbxcheck.sip.scan import RawMessage

TRANSPORTS = ["UDP", "TCP"]


def _summary(responses: list[RawMessage] | list[Response]) -> str:
    return " → ".join(r.start_line for r in responses) or "(no answer)"


@pytest.mark.clause(ClauseId.SIP_REG_1)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_register_challenge_then_200(sip: SipSession, observe: Observe, transport: str) -> None:
    """REGISTER without credentials → 401 with a Digest challenge; with them → 200 OK."""
    (ext,) = sip.extensions(1)

    async def scenario() -> None:
        phone = await sip.phone(ext, transport)
        reg = await sipkit.register(phone, 90)
        sip.check(reg, ClauseId.SIP_REG_1, f"no final answer to an unauthenticated REGISTER over {transport}")
        assert reg is not None
        f = reg.first
        sip.check(
            f.status == 401,
            ClauseId.SIP_REG_1,
            f"the first REGISTER (no credentials) must get 401 Unauthorized; got {f.start_line!r}",
        )
        chal_text = f.headers.get("WWW-Authenticate") or ""
        chal = sipkit.challenge_params(chal_text)
        sip.check(
            chal.get("scheme", "").lower() == "digest",
            ClauseId.SIP_REG_1,
            f"the 401 must carry WWW-Authenticate: Digest; got {chal_text!r}",
        )
        for key in ("realm", "nonce"):
            sip.check(chal.get(key), ClauseId.SIP_REG_1, f"the Digest challenge has no {key}: {chal_text!r}")
        qops = [q.strip().lower() for q in chal.get("qop", "").split(",") if q.strip()]
        sip.check("auth" in qops, ClauseId.SIP_REG_1, f'the Digest challenge must offer qop="auth"; got {chal_text!r}')
        algorithm = chal.get("algorithm", "MD5")
        sip.check(
            algorithm.upper() == "MD5",
            ClauseId.SIP_REG_1,
            f"the Digest challenge must use algorithm=MD5 (the document's device); got {algorithm!r}",
        )
        observe(ClauseId.SIP_REG_1, f"challenge.{transport}.opaque", "present" if "opaque" in chal else "absent")
        observe(ClauseId.SIP_REG_1, f"challenge.{transport}.realm", chal.get("realm"))
        sip.check(
            reg.challenges and reg.status == 200,
            ClauseId.SIP_REG_1,
            f"the REGISTER with a correct Authorization must get 200 OK; got {reg.response.start_line}",
        )
        await sipkit.register(phone, 0)

    sip.run(scenario())


def _registrar_answer_shape(m: RawMessage | None) -> tuple[object, ...]:
    """What a caller can compare between two answers: status, reason, header names, challenge keys."""
    if m is None:
        return ("silence",)
    chal = sipkit.challenge_params(m.header("WWW-Authenticate") or m.header("Proxy-Authenticate") or "")
    names = tuple(sorted({k.lower() for k, _ in m.headers} - {"content-length"}))
    return (
        m.status,
        m.reason,
        names,
        tuple(sorted(k for k in chal if k != "nonce")),
        chal.get("realm"),
        chal.get("qop"),
        chal.get("stale"),
    )


@pytest.mark.clause(ClauseId.SIP_REG_2)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_password_and_unknown_extension(sip: SipSession, transport: str) -> None:
    """A wrong password never gets 200; an unknown extension is answered exactly like a wrong password."""
    (ext,) = sip.extensions(1)
    unknown = sip.never_valid_extension()

    async def scenario() -> None:
        ch = await sip.channel(transport)
        wrong = await sipkit.register_as(ch, ext.number, sipkit.wrong_password(ext.password))
        if (first := sipkit.final(wrong.first)) is not None and first.status == 200:
            await sipkit.register_as(ch, ext.number, ext.password, 0)
            blocked_by(
                ClauseId.SIP_REG_1,
                "the registrar accepts a REGISTER without any credentials: no password is "
                "ever checked, so neither a wrong one nor an unknown extension can be told apart",
            )
        sip.check(
            wrong.status != 200,
            ClauseId.SIP_REG_2,
            f"extension {ext.number} registered with a WRONG password: {_summary(wrong.first + wrong.second)}",
        )
        sip.check(
            wrong.status is not None and wrong.status >= 400,
            ClauseId.SIP_REG_2,
            f"a wrong password must be refused with an error; got {_summary(wrong.second or wrong.first)}",
        )
        # the same, for an extension that does not exist (same password guess, same shape of request)
        stranger = await sipkit.register_as(ch, unknown, sipkit.wrong_password(ext.password))
        sip.check(stranger.status != 200, ClauseId.SIP_REG_2, f"unknown extension {unknown} got 200")
        for step, a, b in (
            ("without credentials", wrong.first, stranger.first),
            ("with (wrong) credentials", wrong.second, stranger.second),
        ):
            fa, fb = sipkit.final(a), sipkit.final(b)
            sip.check(
                _registrar_answer_shape(fa) == _registrar_answer_shape(fb),
                ClauseId.SIP_REG_2,
                f"an unknown extension is answered differently from a wrong password ({step}), so "
                f"extensions can be enumerated:\n    existing {ext.number}: "
                f"{fa.start_line if fa else 'silence'}\n    unknown {unknown}: {fb.start_line if fb else 'silence'}\n"
                f"    shapes: {_registrar_answer_shape(fa)} vs {_registrar_answer_shape(fb)}",
            )

    sip.run(scenario())


def _granted(m: RawMessage | None, contact_uri: str) -> int | None:
    """The expiry the registrar granted our contact in a 200 (contact param, else the Expires header)."""
    if m is None:
        return None
    host = re.escape(contact_uri)
    for value in m.headers_all("Contact"):
        for part in re.split(r",(?=\s*(?:<|\"|sip))", value):
            if re.search(host, part, re.IGNORECASE):
                e = re.search(r";\s*expires\s*=\s*(\d+)", part, re.IGNORECASE)
                if e:
                    return int(e.group(1))
                h = m.header("Expires")
                return int(h) if h and h.isdigit() else None
    return None


def _lists_contact(m: RawMessage | None, contact_uri: str) -> bool:
    return m is not None and any(contact_uri.lower() in v.lower() for v in m.headers_all("Contact"))


@pytest.mark.clause(ClauseId.SIP_REG_3)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_expires_honoured_and_zero_removes(sip: SipSession, observe: Observe, transport: str) -> None:
    """Expires 90 → a binding of at most 90 s; Expires 0 → the binding is gone (a fetch no longer lists it)."""
    (ext,) = sip.extensions(1)

    async def scenario() -> None:
        phone = await sip.phone(ext, transport)
        contact_uri = re.search(r"<([^>;]+)", str(phone.contact())).group(1)  # type: ignore[union-attr]
        reg = await sipkit.register(phone, 90)  # unchallenged 200: SIP-REG-1's business
        sip.check(
            reg and reg.status == 200,
            ClauseId.SIP_REG_3,
            f"could not register {ext.number} to test Expires: {reg.response.start_line if reg else '(no answer)'}",
        )
        assert reg is not None
        granted = reg.expires  # our Contact's expires, else the Expires header
        observe(ClauseId.SIP_REG_3, f"granted.{transport}", granted)
        sip.check(
            granted is not None,
            ClauseId.SIP_REG_3,
            f"the 200 OK does not say how long our contact {contact_uri} is bound (no ;expires=, no Expires)",
        )
        sip.check(
            granted is not None and 0 < granted <= 90,
            ClauseId.SIP_REG_3,
            f"REGISTER asked Expires: 90 and the registrar granted {granted} s: Expires not honoured",
        )
        un = await sipkit.register(phone, 0)
        sip.check(
            un and un.status == 200,
            ClauseId.SIP_REG_3,
            f"REGISTER with Expires: 0 must get 200 OK; got {un.response.start_line if un else '(no answer)'}",
        )
        assert un is not None
        sip.check(
            not un.expires,
            ClauseId.SIP_REG_3,
            f"after Expires: 0 the 200 OK still binds our contact {contact_uri} for {un.expires} s",
        )
        # RFC 3261 10.2.3: a REGISTER without Contact fetches the current bindings
        fetch = await _fetch_bindings(await sip.channel(transport), ext.number, ext.password)
        if fetch is not None and fetch.status == 200:
            sip.check(
                not _lists_contact(fetch, contact_uri) or _granted(fetch, contact_uri) == 0,
                ClauseId.SIP_REG_3,
                f"a fetch after Expires: 0 still lists our contact {contact_uri}",
            )
        observe(ClauseId.SIP_REG_3, f"fetch-after-unregister.{transport}", fetch.start_line if fetch else "silence")

    sip.run(scenario())


async def _fetch_bindings(ch: sipkit.Channel, user: str, password: str) -> RawMessage | None:
    ex = await sipkit.register_as(ch, user, password, None, contact=False)
    first = sipkit.final(ex.first)
    return sipkit.final(ex.second) if first is not None and first.status in (401, 407) else first
