"""Preflight without a network: the line's shape, the OPTIONS it sends, how errors read, that the
probes run at once, and that no line carries a secret. (Real endpoints: tests/integration.)"""

from __future__ import annotations

import ssl
import time
from typing import Any

import pytest

from pbxcheck import preflight as pf
from pbxcheck.preflight import Problem, preflight
from pbxcheck.sip.message import Request
from pbxcheck.sip.parser import parse_message
from pbxcheck.target import Extension, Target

TARGET = Target(
    name="t",
    api_url="https://127.0.0.1:8443",
    plain_url="http://127.0.0.1:8080",
    source_ip="127.0.0.1",
    login="root",
    senha="s3nha-very-secret",
    token="0123456789abcdef0123",
    disposable_campaign="900",
    disposable_classe5="teste",
    sip_host="127.0.0.1",
    sip_ws_url="ws://127.0.0.1:8088/ws",
    sip_wss_url="wss://127.0.0.1:8089/ws",
    extensions=(Extension("2001", "ext-password-2001"),),
)


def test_problem_is_one_line_endpoint_cause_fix() -> None:
    p = Problem("SIP TCP 127.0.0.1:7048", "refused: nothing listens there", "check [sip] tcp_port")
    assert str(p) == "SIP TCP 127.0.0.1:7048: refused: nothing listens there; check [sip] tcp_port"
    assert "\n" not in str(p)


@pytest.mark.parametrize("transport,port", [("UDP", 5060), ("TCP", 5060), ("WSS", None)])
def test_options_is_a_well_formed_request(transport: str, port: int | None) -> None:
    local = "abc.invalid" if port is None else "127.0.0.1"
    msg = parse_message(pf._options(transport, local, port, "pbx.example", 7048))
    assert isinstance(msg, Request) and msg.method == "OPTIONS"
    assert msg.uri == "sip:pbx.example:7048"
    assert msg.top_via.transport == transport
    assert (msg.branch or "").startswith("z9hG4bK")
    assert msg.cseq.method == "OPTIONS"


def test_is_sip_response() -> None:
    assert pf._is_sip_response(b"SIP/2.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
    assert not pf._is_sip_response(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    exc.verify_code = code
    exc.verify_message = message
    return exc


def test_untrusted_certificate_names_the_sections_ca_file() -> None:
    found = pf._cert_problem(
        _verify_error(20, "unable to get local issuer certificate"),
        "127.0.0.1",
        1,
        pf._Budget(1),
        source_ip=None,
        section="[sip]",
        url_key="[sip] wss_url",
    )
    assert "untrusted certificate" in found.cause and "[sip] ca_file" in found.fix


def test_expired_and_mismatch_say_what_the_certificate_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = {"not_after": "2020-01-02 03:04 UTC", "names": "central.example"}
    monkeypatch.setattr(pf, "_peer_cert_field", lambda host, port, budget, source_ip, what: shown[what])
    kw: dict[str, Any] = {"source_ip": None, "section": "[api]", "url_key": "[api] url"}
    expired = pf._cert_problem(_verify_error(10, "certificate has expired"), "127.0.0.1", 1, pf._Budget(1), **kw)
    assert expired.cause == "certificate expired on 2020-01-02 03:04 UTC"
    mismatch = pf._cert_problem(_verify_error(62, "Hostname mismatch"), "127.0.0.1", 1, pf._Budget(1), **kw)
    assert "hostname mismatch" in mismatch.cause and "central.example" in mismatch.cause
    assert "127.0.0.1" in mismatch.cause


def test_os_errors_read_as_causes() -> None:
    b = pf._Budget(2)
    assert pf._os_problem(ConnectionRefusedError(111, "Connection refused"), b, section="[api] url").cause.startswith(
        "refused"
    )
    assert pf._os_problem(TimeoutError(), b, section="[api] url").cause.startswith("timeout")
    bind = pf._os_problem(OSError(99, "Cannot assign requested address"), b, source_ip="10.9.9.9", section="x")
    assert "10.9.9.9" in bind.cause and "[api] source_ip" in bind.fix


def test_an_exhausted_budget_is_a_timeout() -> None:
    with pytest.raises(pf._Found, match="timeout"):
        pf._Budget(0).left()


def _stub_probes(monkeypatch: pytest.MonkeyPatch, **behaviour: object) -> None:
    def make(name: str) -> object:
        def probe(*args: object) -> None:
            action = behaviour.get(name)
            if callable(action):
                action()

        return probe

    for name in ("_probe_api", "_probe_sip_udp", "_probe_sip_tcp", "_probe_sip_ws"):
        monkeypatch.setattr(pf, name, make(name))


def test_probes_run_at_the_same_time(monkeypatch: pytest.MonkeyPatch) -> None:
    _stub_probes(
        monkeypatch,
        **{n: (lambda: time.sleep(0.4)) for n in ("_probe_api", "_probe_sip_udp", "_probe_sip_tcp", "_probe_sip_ws")},
    )
    started = time.monotonic()
    assert preflight(TARGET) == []
    assert time.monotonic() - started < 0.9  # five probes of 0.4 s each, at once


def test_problems_come_in_endpoint_order_and_never_carry_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    def leaky() -> None:
        raise pf._Found(f"answered {TARGET.senha} and {TARGET.token[:10]}", f"not {TARGET.extensions[0].password}")

    def broken() -> None:
        raise RuntimeError("boom")

    _stub_probes(monkeypatch, _probe_api=leaky, _probe_sip_tcp=broken)
    problems = preflight(TARGET)
    assert [p.endpoint for p in problems] == ["API https://127.0.0.1:8443", "SIP TCP 127.0.0.1:7048"]
    assert "probe failed: RuntimeError: boom" in problems[1].cause
    text = "\n".join(str(p) for p in problems)
    for secret in TARGET.secrets:
        assert secret[:8] not in text and secret[-8:] not in text


def test_what_the_probes_use_is_imported_before_their_threads_start() -> None:
    """Probes import nothing in their threads: first imports made by several threads at once can
    deadlock on the module locks (a fresh `pbxcheck run --target` once said "_DeadlockError")."""
    import subprocess
    import sys

    needed = [
        "pbxcheck.sip.parser",
        "pbxcheck.sip.message",
        "pbxcheck.client",
        "websockets.sync.client",
        "cryptography.x509",
    ]
    code = f"import sys, pbxcheck.preflight; print([m for m in {needed!r} if m not in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_probe_that_overruns_its_budget_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    _stub_probes(monkeypatch, _probe_sip_udp=lambda: time.sleep(2.0))
    started = time.monotonic()
    problems = preflight(TARGET, timeout=0.3)
    assert time.monotonic() - started < 1.8
    assert [(p.endpoint, p.cause) for p in problems] == [("SIP UDP 127.0.0.1:7048", "timeout: no answer within 0.3 s")]
