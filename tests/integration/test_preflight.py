"""Preflight: a setup mistake in the target file is one line naming the endpoint, the cause and the
fix, and exit 2 within 5 s, with no clause checked (issue 9, problems 2 and 4).

One embedded central for the module; each case writes a variant of its target file. Certificates
the central does not have (another CA, expired, for another name) are served by a small TLS front
on loopback, which forwards to the central when a case needs real answers behind it (WSS).
"""

from __future__ import annotations

import datetime as dt
import io
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trustme

from pbxcheck import report, runner
from pbxcheck.central.process import CentralProcess
from pbxcheck.peers import free_port
from pbxcheck.preflight import preflight
from pbxcheck.target import Target, dump_target, load_target

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def central() -> Iterator[Target]:
    with CentralProcess() as target:
        yield target


@contextmanager
def tls_front(cert: trustme.LeafCert, upstream: tuple[str, int] | None = None) -> Iterator[int]:
    """A TLS server on 127.0.0.1 with ``cert``; forwards each connection to ``upstream`` if given."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()  # both directions end here; close is idempotent (ResourceWarning otherwise)

    def serve(raw: socket.socket) -> None:
        raw.settimeout(5)
        try:
            tls = ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        if upstream is None:
            tls.close()
            return
        up = socket.create_connection(upstream, timeout=5)
        tls.settimeout(None)
        up.settimeout(None)
        threading.Thread(target=pipe, args=(up, tls), daemon=True).start()
        pipe(tls, up)

    def accept() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(raw,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def write(t: Target, path: Path) -> Path:
    path.write_text(dump_target(t), encoding="utf-8")
    return path


def ca_pem(ca: trustme.CA, path: Path) -> str:
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def leaks(text: str, target: Target, n: int = 8) -> list[str]:
    """Any secret of ``target``, or any ``n``-character piece of one, found in ``text``."""
    found = []
    for s in target.secrets:
        if s in text or any(s[i : i + n] in text for i in range(max(0, len(s) - n + 1))):
            found.append(f"a secret of {len(s)} characters")
    return found


def run_bad(path: Path, tmp_path: Path) -> tuple[int, list[str], float, str]:
    out = io.StringIO()
    started = time.monotonic()
    code = runner.run(str(path), str(tmp_path / "reports"), out=out)
    return code, out.getvalue().strip().splitlines(), time.monotonic() - started, out.getvalue()


def expect_one_problem(path: Path, tmp_path: Path, endpoint: str, *causes: str) -> None:
    code, lines, took, text = run_bad(path, tmp_path)
    assert code == runner.EXIT_USAGE, text
    assert took < 5.0, f"{took:.1f} s\n{text}"
    assert all(line.startswith("pbxcheck: ") for line in lines), lines
    assert len(lines) == 2 and "no clause was checked" in lines[1], lines  # one problem, one summary
    assert endpoint in lines[0], lines
    for cause in causes:
        assert cause in lines[0], lines
    assert not leaks(text, load_target(path))
    assert not (tmp_path / "reports" / report.CLAUSES_JSON).exists()
    assert not (tmp_path / "reports" / report.CLAUSES_MD).exists()


def test_healthy_central_has_no_problem_and_costs_well_under_a_second(central: Target) -> None:
    preflight(central)  # warm: imports, the first TLS context
    started = time.monotonic()
    problems = preflight(central)
    took = time.monotonic() - started
    assert [str(p) for p in problems] == []
    assert took < 0.5, f"preflight took {took:.2f} s against the embedded central"


def test_https_url_on_the_plain_http_port(central: Target, tmp_path: Path) -> None:
    https_on_plain = central.plain_url.replace("http://", "https://")
    path = write(central.with_(api_url=https_on_plain), tmp_path / "t.toml")
    expect_one_problem(path, tmp_path, f"API {https_on_plain}", "plain HTTP", "[api] url")


def test_no_ca_file_is_untrusted(central: Target, tmp_path: Path) -> None:
    # [sip] keeps the central's CA, so that only the API is wrong
    path = write(central.with_(ca_file=None, sip_ca_file=central.ca_file), tmp_path / "t.toml")
    expect_one_problem(path, tmp_path, f"API {central.api_url}", "untrusted certificate", "[api] ca_file")


def test_a_ca_from_elsewhere_is_untrusted(central: Target, tmp_path: Path) -> None:
    other = ca_pem(trustme.CA(), tmp_path / "other-ca.pem")
    path = write(central.with_(ca_file=other, sip_ca_file=central.ca_file), tmp_path / "t.toml")
    expect_one_problem(path, tmp_path, f"API {central.api_url}", "untrusted certificate", "[api] ca_file")


def test_expired_certificate(central: Target, tmp_path: Path) -> None:
    ca = trustme.CA()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    cert = ca.issue_cert("127.0.0.1", not_before=past - dt.timedelta(days=30), not_after=past)
    with tls_front(cert) as port:
        url = f"https://127.0.0.1:{port}"
        path = write(
            central.with_(api_url=url, ca_file=ca_pem(ca, tmp_path / "ca.pem"), sip_ca_file=central.ca_file),
            tmp_path / "t.toml",
        )
        expect_one_problem(path, tmp_path, f"API {url}", "certificate expired", past.strftime("%Y-%m-%d"))


def test_hostname_mismatch_names_what_the_certificate_is_for(central: Target, tmp_path: Path) -> None:
    ca = trustme.CA()
    with tls_front(ca.issue_cert("central.example")) as port:
        url = f"https://127.0.0.1:{port}"
        path = write(
            central.with_(api_url=url, ca_file=ca_pem(ca, tmp_path / "ca.pem"), sip_ca_file=central.ca_file),
            tmp_path / "t.toml",
        )
        expect_one_problem(path, tmp_path, f"API {url}", "hostname mismatch", "central.example")


def test_wrong_senha_is_credentials_refused(central: Target, tmp_path: Path) -> None:
    path = write(central.with_(senha="wrong-" + central.senha[::-1]), tmp_path / "t.toml")
    expect_one_problem(
        path, tmp_path, "API", "credentials refused", "Login/Senha Invalido", "[credentials]", "[api] source_ip"
    )


def test_wss_url_on_the_plain_ws_port(central: Target, tmp_path: Path) -> None:
    assert central.sip_ws_url
    wss_on_ws = central.sip_ws_url.replace("ws://", "wss://")
    path = write(central.with_(sip_wss_url=wss_on_ws), tmp_path / "t.toml")
    expect_one_problem(path, tmp_path, f"SIP WSS {wss_on_ws}", "plain HTTP", "[sip] wss_url")


@pytest.mark.parametrize("transport", ["TCP", "UDP"])
def test_dead_sip_port(central: Target, tmp_path: Path, transport: str) -> None:
    dead = free_port()
    change = {"sip_tcp_port": dead} if transport == "TCP" else {"sip_udp_port": dead}
    path = write(central.with_(**change), tmp_path / "t.toml")
    expect_one_problem(path, tmp_path, f"SIP {transport} 127.0.0.1:{dead}", "refused")


def test_silent_api_port_is_a_timeout_within_the_target_timeout(central: Target, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), never speaks TLS
        url = f"https://127.0.0.1:{silent.getsockname()[1]}"
        path = write(central.with_(api_url=url, timeout=1.0), tmp_path / "t.toml")
        expect_one_problem(path, tmp_path, f"API {url}", "timeout", "1 s")


def test_silent_sip_udp_port_is_no_sip_answer(central: Target, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound: no ICMP, no answer
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        path = write(central.with_(sip_udp_port=port, timeout=1.0), tmp_path / "t.toml")
        expect_one_problem(path, tmp_path, f"SIP UDP 127.0.0.1:{port}", "no SIP answer", "udp_port")


@pytest.fixture
def wss_front(central: Target, tmp_path: Path) -> Iterator[Callable[[bool], Path]]:
    """A WSS url behind another CA than the API's, forwarding to the central's plain WS port:
    the target file with or without ``[sip] ca_file`` naming that CA."""
    assert central.sip_ws_url
    ca = trustme.CA()
    ws = central.sip_ws_url.removeprefix("ws://").split("/")[0].rsplit(":", 1)
    with tls_front(ca.issue_cert("127.0.0.1"), upstream=(ws[0], int(ws[1]))) as port:
        sip_ca = ca_pem(ca, tmp_path / "sip-ca.pem")

        def variant(with_sip_ca: bool) -> Path:
            t = central.with_(
                sip_wss_url=f"wss://127.0.0.1:{port}/ws", sip_ca_file=sip_ca if with_sip_ca else central.ca_file
            )
            return write(t, tmp_path / f"wss-{with_sip_ca}.toml")

        yield variant


def test_wss_behind_another_ca_passes_with_its_sip_ca_file(wss_front: Callable[[bool], Path]) -> None:
    target = load_target(wss_front(True))
    assert target.sip_ca_file != target.ca_file
    assert [str(p) for p in preflight(target)] == []


def test_wss_behind_another_ca_fails_without_sip_ca_file(wss_front: Callable[[bool], Path], tmp_path: Path) -> None:
    path = wss_front(False)
    target = load_target(path)
    expect_one_problem(path, tmp_path, f"SIP WSS {target.sip_wss_url}", "untrusted certificate", "[sip] ca_file")


def test_a_chosen_subset_warns_and_runs(central: Target, tmp_path: Path) -> None:
    """A SIP-only subset against a target whose API is wrong: warnings, then the chosen checks."""
    dead = free_port(udp=False)
    path = write(central.with_(api_url=f"https://127.0.0.1:{dead}"), tmp_path / "t.toml")
    out = io.StringIO()
    runner.run(
        str(path), str(tmp_path / "reports"), paths=["test_auth.py"], extra_args=["-k", "no_such_check_name"], out=out
    )
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0].startswith("pbxcheck: warning: API ") and "refused" in lines[0], lines
    assert "running the chosen checks anyway" in lines[1], lines
    assert "deselected" in text, text  # pytest did run (-k chose nothing: nothing failed either)


def test_cli_exits_2_on_a_bad_target(central: Target, tmp_path: Path) -> None:
    path = write(central.with_(senha="wrong-" + central.senha[::-1]), tmp_path / "bad.toml")
    proc = subprocess.run(
        [sys.executable, "-m", "pbxcheck", "run", "--target", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "credentials refused" in proc.stdout and "Traceback" not in proc.stderr
    assert not leaks(proc.stdout + proc.stderr, load_target(path))
    assert not (tmp_path / "reports" / report.CLAUSES_JSON).exists()
