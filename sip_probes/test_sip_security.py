"""SIP-SEC-1 (hardening), in the manner of SIPVicious: svmap, svwar, svcrack, replays, torture.

Every result here is a *finding* with a severity (``finding`` fixture): it goes into the report and
fails the run only when the target file lists SIP-SEC-1 under ``[findings] fail_on``. Severities:

* critical: someone got in who must not (a wrong password, a replayed Authorization, a wrong nc, a
  stale or foreign nonce answered 200), or the SIP side stopped answering after the torture messages;
* high: extensions can be enumerated by response difference (svwar);
* medium: no throttling measured after a bounded run of wrong passwords (no growing delay, no drops,
  and the right password accepted right after: a 403 to every guess is an answer, not a rate limit);
* low / info: a nonce valid from another source IP; the server's fingerprint.

Every run is bounded: a fixed number of requests, each with a short timeout, from loopback only. The
guessing runs from a loopback address of its own (127.0.0.5), so that a central that throttles by
source IP does not lock out the other checks.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from pbxcheck.bundled import bundled_dir
from pbxcheck.checks import Finding, Observe, sipkit
from pbxcheck.checks.sipsession import SipSession
from pbxcheck.contract import ClauseId
from pbxcheck.sip import digest
from pbxcheck.sip.dialog import Dialog
from pbxcheck.sip.message import Headers, Request, Response
from pbxcheck.sip.scan import RawMessage, scan
from pbxcheck.sip.sdp import make_offer
from pbxcheck.wrong import answers_delayed

GUESSES = 12  # per svcrack mode: enough to meet a sane throttle, few enough to stay under a second
MAX_SILENT = 3  # a mode stops after this many unanswered guesses (each costs its 1 s timeout)
LOCKOUT_WAIT_S = 15.0  # a lockout seen after the burst is waited out (polled) at most this long
DOC_NONCE = "1609521111/e77ebd577852317e85e4cfd479d3c3"  # the document's own (years old) nonce
GUESS_IP = "127.0.0.5"
TORTURE_SRC = ("127.0.0.6", 0)


def _first(responses: list[RawMessage]) -> str:
    f = sipkit.final(responses)
    return f.start_line if f else "(silence)"


# --- svmap -------------------------------------------------------------------------------------------


@pytest.mark.clause(ClauseId.SIP_SEC_1)
def test_options_fingerprint(sip: SipSession, observe: Observe, finding: Finding) -> None:
    """svmap: what an OPTIONS ping tells a scanner about the server."""

    async def scenario() -> None:
        ch = await sip.channel("UDP")
        _, options = ch.dialog("probe", ch.server_uri).make_request_in_dialog(
            "OPTIONS", via=ch.via, headers=[*sipkit.HEADERS, ("Accept", "application/sdp")]
        )
        f = sipkit.final(await ch.request(options, timeout=1.5))
        print_ = {
            "answer": f.start_line if f else "silence",
            "server": (f.header("Server") or f.header("User-Agent")) if f else None,
            "allow": f.header("Allow") if f else None,
        }
        observe(ClauseId.SIP_SEC_1, "svmap.options", print_)
        banner = print_["server"] or ""
        if any(ch.isdigit() for ch in banner):
            finding(ClauseId.SIP_SEC_1, "info", f"the SIP server announces its product and version: {banner!r}")

    sip.run(scenario())


# --- svwar -------------------------------------------------------------------------------------------


def _shape(m: RawMessage | None) -> tuple[object, ...]:
    if m is None:
        return ("silence",)
    chal = sipkit.challenge_params(m.header("WWW-Authenticate") or m.header("Proxy-Authenticate") or "")
    return (m.status, m.reason, tuple(sorted(k for k in chal if k != "nonce")))


@pytest.mark.clause(ClauseId.SIP_SEC_1)
def test_extension_enumeration(sip: SipSession, observe: Observe, finding: Finding) -> None:
    """svwar: REGISTER, INVITE and OPTIONS for a real extension and for a random never-valid one."""
    (ext,) = sip.extensions(1)
    baseline = sip.never_valid_extension()

    async def scenario() -> None:
        ch = await sip.channel("UDP")
        leaks: list[str] = []
        seen: dict[str, dict[str, str]] = {}
        for method in ("REGISTER", "INVITE", "OPTIONS"):
            answers: dict[str, RawMessage | None] = {}
            for user in (ext.number, baseline):
                if method == "REGISTER":
                    req = ch.register(user, 60)
                else:
                    body = make_offer(ch.local[0], 10_000).to_bytes() if method == "INVITE" else b""
                    _, req = ch.dialog(user).make_request_in_dialog(
                        method,
                        via=ch.via,
                        headers=sipkit.HEADERS,
                        body=body,
                        content_type="application/sdp" if body else None,
                    )
                f = sipkit.final(await ch.request(req, timeout=1.0))
                answers[user] = f
                await _clean_up(ch, req, f)
            a, b = answers[ext.number], answers[baseline]
            seen[method] = {
                "existing": a.start_line if a else "silence",
                "never-valid": b.start_line if b else "silence",
            }
            if _shape(a) != _shape(b):
                leaks.append(
                    f"{method}: existing {ext.number} → {seen[method]['existing']!r}, "
                    f"never-valid {baseline} → {seen[method]['never-valid']!r}"
                )
        observe(ClauseId.SIP_SEC_1, "svwar", seen)
        if leaks:
            finding(
                ClauseId.SIP_SEC_1,
                "high",
                "extensions can be enumerated by response difference (svwar): " + "; ".join(leaks),
            )

    sip.run(scenario())


async def _clean_up(ch: sipkit.Channel, sent: Request, f: RawMessage | None) -> None:
    """ACK and BYE an INVITE that was accepted, so no call is left behind (the engine ACKs an error)."""
    if sent.method == "INVITE" and f is not None and f.status == 200:
        assert ch.flow is not None
        accepted = Response(200, f.reason, Headers(f.headers), f.body)  # the core's message of what was read
        d, ack = Dialog.uac(sent, accepted).make_request_in_dialog("ACK", via=ch.via)
        ch.endpoint.send_ack(ack, ch.flow)  # the engine answers the 2xx's retransmissions with it
        await ch.request(d.make_request_in_dialog("BYE", via=ch.via)[1], timeout=1.0)


# --- svcrack -----------------------------------------------------------------------------------------


@pytest.mark.clause(ClauseId.SIP_SEC_1)
def test_password_guessing(sip: SipSession, observe: Observe, finding: Finding) -> None:
    """svcrack: a bounded run of wrong passwords (fresh nonce each time, then one nonce reused), then the
    right password from the same address.

    Throttling is *measured*, never read off a status code (Kamailio answers every wrong password 403
    at full speed; svcrack recovers a password from it in under a second): later guesses delayed (the
    median of the last four 3x the first four's and 200 ms more), guesses dropped (silence), or a
    lockout: right after the burst the *right* password is refused too, until a window has passed
    (polled at most LOCKOUT_WAIT_S). Otherwise: a medium "no throttling" finding."""
    (ext,) = sip.extensions(1)

    async def scenario() -> None:
        ch = await sip.channel("UDP", local=(GUESS_IP, 0))
        results: dict[str, list[str]] = {"fresh-nonce": [], "reused-nonce": []}
        times: list[float] = []
        got_in: list[str] = []
        start = time.monotonic()
        # mode 1: REGISTER → 401 → REGISTER with a wrong password, a fresh challenge every time
        for i in range(GUESSES):
            t0 = time.monotonic()
            ex = await sipkit.register_as(ch, ext.number, sipkit.wrong_password(ext.password), 60, timeout=1.0)
            line = _first(ex.second or ex.first)
            results["fresh-nonce"].append(line)
            if ex.status is not None:
                times.append(time.monotonic() - t0)
            if ex.status == 200:
                got_in.append(f"fresh-nonce guess {i}")
            if results["fresh-nonce"].count("(silence)") >= MAX_SILENT:
                break
        # mode 2: one challenge, then every guess reuses its nonce with a growing nc (svcrack -n)
        ex = await sipkit.register_as(ch, ext.number, sipkit.wrong_password(ext.password), 60, timeout=1.0)
        if (chal := ex.challenge) is not None:
            for i in range(GUESSES):
                auth = sipkit.authorization(chal, ext.number, sipkit.wrong_password(ext.password), ch.server_uri)
                t0 = time.monotonic()
                req = ch.register(ext.number, 60, [("Authorization", auth)])
                f = sipkit.final(await ch.request(req, timeout=1.0))
                results["reused-nonce"].append(f.start_line if f else "(silence)")
                if f is not None:
                    times.append(time.monotonic() - t0)
                if f is not None and f.status == 200:
                    got_in.append(f"reused-nonce guess {i}")
                if results["reused-nonce"].count("(silence)") >= MAX_SILENT:
                    break
        elapsed = time.monotonic() - start
        # the right password, from the guessing address: refused now = a lockout (then timed until lifted)
        right_after, lockout_s = await _right_password_after(ch, ext.number, ext.password)
        lines = results["fresh-nonce"] + results["reused-nonce"]
        dropped = lines.count("(silence)")
        delayed = answers_delayed(times)
        measured = [
            w
            for w, on in (
                ("later guesses delayed", delayed),
                (f"{dropped} guesses dropped", dropped),
                (f"lockout: the right password refused for {lockout_s or 0:.1f} s", lockout_s is not None),
            )
            if on
        ]
        observe(
            ClauseId.SIP_SEC_1,
            "svcrack",
            {k: _counts(v) for k, v in results.items()}
            | {
                "seconds": round(elapsed, 2),
                "first_ms": [round(t * 1000) for t in times[:4]],
                "last_ms": [round(t * 1000) for t in times[-4:]],
                "right_password_after": right_after,
                "throttling": ", ".join(measured) or "none measured",
            },
        )
        if got_in:
            finding(ClauseId.SIP_SEC_1, "critical", f"wrong passwords got 200 OK for {ext.number}: {', '.join(got_in)}")
        if not measured:
            finding(
                ClauseId.SIP_SEC_1,
                "medium",
                f"{len(lines)} wrong-password attempts from {GUESS_IP} in {elapsed:.2f} s met no throttling: "
                f"every one answered ({_counts(lines)}) without growing delay, and the right password was "
                f"accepted right after ({right_after}); a status code alone (403 included) is not a rate limit",
            )

    sip.run(scenario())


async def _right_password_after(ch: sipkit.Channel, user: str, password: str) -> tuple[str, float | None]:
    """REGISTER with the right password right after the burst; while refused, again every second (at most
    LOCKOUT_WAIT_S). Returns (the first answer, how long it stayed refused or None). Unregisters after."""
    started = time.monotonic()
    first = ""
    refused_for: float | None = None
    while True:
        ex = await sipkit.register_as(ch, user, password, 60, timeout=1.0)
        first = first or _first(ex.second or ex.first)
        if ex.status == 200:
            await sipkit.register_as(ch, user, password, 0, timeout=1.0)
            return first, refused_for
        refused_for = time.monotonic() - started
        if refused_for >= LOCKOUT_WAIT_S:
            return first, refused_for
        await asyncio.sleep(1.0)


def _code(line: str) -> int | None:
    parts = line.split(" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _counts(lines: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for ln in lines:
        out[ln] = out.get(ln, 0) + 1
    return out


# --- replays, wrong nc, stale and foreign nonces -----------------------------------------------------------


@pytest.mark.clause(ClauseId.SIP_SEC_1)
def test_nonce_replay_and_wrong_nc(sip: SipSession, observe: Observe, finding: Finding) -> None:
    """A captured Authorization replayed; nc reused; nc 0; the document's stale nonce; a nonce from another IP."""
    (ext,) = sip.extensions(1)

    async def scenario() -> None:
        phone, ch = await sip.phone(ext, "UDP"), await sip.channel("UDP")
        reg = await sipkit.register(phone, 60)
        sip.check(
            reg and reg.status == 200 and reg.challenges,
            ClauseId.SIP_SEC_1,
            f"could not register {ext.number} after a challenge to start: {reg and reg.response.start_line}",
        )
        assert reg is not None
        chal = digest.Challenge.parse(reg.first.headers.get(digest.challenge_header(reg.first.status)) or "")
        sent = [scan(e.data) for e in sip.log.entries if e.direction == "out"]
        captured = next((a for m in reversed(sent) if (a := m.header("Authorization"))), "")
        outcomes: dict[str, str] = {}
        breaches: list[str] = []

        async def attempt(name: str, auth: str, channel: sipkit.Channel = ch) -> None:
            req = channel.register(ext.number, 60, [("Authorization", auth)])
            f = sipkit.final(await channel.request(req, timeout=1.0))
            outcomes[name] = f.start_line if f else "(silence)"
            if f is not None and f.status == 200:
                breaches.append(name)

        def knob(nc: int | None = None, nonce: str | None = None) -> str:  # the right password, one thing wrong
            return sipkit.authorization(chal, ext.number, ext.password, ch.server_uri, nc=nc, nonce=nonce)

        # 1. the exact captured header, replayed in a new request (an eavesdropper's replay)
        await attempt("replayed-authorization", captured)
        # 2. a correct response (fresh cnonce), but the nc the successful REGISTER already spent
        await attempt("reused-nc", knob(nc=int(sipkit.challenge_params(captured).get("nc", "1"), 16)))
        # 3. nc = 0, which no client may send (counts start at 1)
        await attempt("nc-zero", knob(nc=0))
        # 4. the document's years-old nonce, with a correct response for it (stale / never issued here)
        await attempt("stale-nonce", knob(nonce=DOC_NONCE))
        # 5. a fresh nonce issued to 127.0.0.1, used from 127.0.0.7 (a nonce captured and carried away)
        other = await sip.channel("UDP", local=("127.0.0.7", 0))
        fresh = await sipkit.register_as(ch, ext.number, None, 60, timeout=1.0)
        foreign = ""
        if fresh.challenge is not None:
            auth = sipkit.authorization(fresh.challenge, ext.number, ext.password, other.server_uri)
            await attempt("nonce-from-other-ip", auth, other)
            foreign = outcomes["nonce-from-other-ip"]
        observe(ClauseId.SIP_SEC_1, "nonce-handling", outcomes)
        serious = [b for b in breaches if b != "nonce-from-other-ip"]
        if serious:
            finding(
                ClauseId.SIP_SEC_1,
                "critical",
                "accepted with 200 OK: " + ", ".join(f"{b} ({outcomes[b]})" for b in serious),
            )
        if "nonce-from-other-ip" in breaches:
            finding(ClauseId.SIP_SEC_1, "low", f"a nonce issued to one source IP is accepted from another ({foreign})")
        await sipkit.register(phone, 0)

    sip.run(scenario())


# --- RFC 4475 torture, then a valid REGISTER ---------------------------------------------------------


def torture_files() -> list[Path]:
    return sorted((bundled_dir("fixtures") / "rfc4475").glob("*.dat"))


@pytest.mark.clause(ClauseId.SIP_SEC_1)
def test_torture_then_register(sip: SipSession, observe: Observe, finding: Finding) -> None:
    """The 49 RFC 4475 messages (crafted with scapy from 127.0.0.6), then a valid REGISTER must be answered."""
    files = torture_files()
    if not files:
        pytest.skip("fixtures/rfc4475/*.dat missing from this installation")
    (ext,) = sip.extensions(1)

    async def scenario() -> None:
        answers: dict[str, str] = {}
        sink = await sip.channel("UDP", local=TORTURE_SRC)  # where answers to our source come back
        src = sink.local
        dst = (sip.target.sip_host, sip.target.sip_udp_port)
        how = "scapy"
        try:
            from pbxcheck.sip.drivers.craft import CraftError, RawSender

            try:
                sender = RawSender()
            except CraftError as exc:
                sender = None
                how = f"plain socket ({exc})"
        except ImportError:
            sender = None
            how = "plain socket (no craft module)"
        for path in files:
            data = path.read_bytes()
            sink.log.record("out", "UDP", src, dst, data)
            if sender is not None:
                sender.send_udp(data, src, dst)
                sip.crafted = True
            else:
                assert sink.flow is not None
                sink.flow.send(data)
            await asyncio.sleep(0.002)
        if sender is not None:
            sender.close()
        await asyncio.sleep(0.4)  # answers (or silence) to the last messages
        for m in sink.received:
            answers.setdefault(m.call_id or "?", m.start_line)
        observe(ClauseId.SIP_SEC_1, "torture", {"sent": len(files), "answered": len(sink.received), "via": how})
        # the proof of life: a well-formed REGISTER, from our usual address, must still be answered
        phone = await sip.phone(ext, "UDP")
        ex = await sipkit.register(phone, 60)
        if ex is None:
            finding(
                ClauseId.SIP_SEC_1,
                "critical",
                f"after the {len(files)} RFC 4475 torture messages the SIP side no longer answers a "
                f"well-formed REGISTER (silence for 2 s)",
            )
        elif ex.status != 200:
            finding(
                ClauseId.SIP_SEC_1,
                "high",
                f"after the torture messages a correct REGISTER is answered {ex.status}, not 200",
            )
        else:
            await sipkit.register(phone, 0)

    sip.run(scenario())
