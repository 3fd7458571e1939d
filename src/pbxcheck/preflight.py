"""Preflight: is the target file right, before any clause is checked?

A setup mistake (an https url on a plain-HTTP port, a CA the run does not trust, a wrong senha, a
dead SIP port) used to read as dozens of central failures after a minute of timeouts. ``preflight``
probes every configured endpoint the way the checks will use it, all at once and each within a
short budget, and says what is wrong in one line per endpoint:

* the HTTPS API: a real TLS handshake with the target's CA (``[api] ca_file``), from ``[api]
  source_ip``, then one harmless authenticated call (``statusramais``, read-only);
* SIP over UDP and TCP (``[sip] host``, ``udp_port``, ``tcp_port``), WS and WSS (``ws_url``,
  ``wss_url``; WSS with ``[sip] ca_file``): an OPTIONS each, built with the sans-IO core. Any SIP
  answer counts, a 401/403/404/405 too: the point is that a SIP server is there.

``preflight(target) -> list[Problem]``; ``str(problem)`` is the line: endpoint, cause, fix. No line
ever carries a secret (every text goes through the target's redactor as well).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.sync.client import connect as ws_connect

from .client import ApiClient
from .contract import ERRO_PROTOCOLO, LOGIN_INVALIDO, STATUS, Acao
from .errors import TransportError
from .redact import Redactor
from .sip.ids import new_branch, new_call_id, new_instance_host, new_tag
from .sip.message import Response, make_request, to_bytes
from .sip.parser import StreamFramer, parse_message
from .target import Target

# Everything the probes use is imported here, in the importing thread: imports first made in the
# probes' threads at once can deadlock on the module locks (_DeadlockError).

PROBE_CAP_S = 3.0  # no probe waits longer than this, whatever the target's timeout

# OpenSSL X509_V_ERR_* codes (ssl.SSLCertVerificationError.verify_code)
_NOT_YET_VALID, _EXPIRED, _HOSTNAME_MISMATCH, _IP_MISMATCH = 9, 10, 62, 64
_UNTRUSTED = {2, 18, 19, 20, 21, 27}  # unknown issuer, self-signed (leaf or in chain), untrusted

_CREDENTIALS_FIX = "check [credentials] and that [api] source_ip is the IP the token is bound to"


@dataclass(frozen=True)
class Problem:
    """One setup problem: where, what, and what to change."""

    endpoint: str
    cause: str
    fix: str

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.cause}; {self.fix}"


class _Found(Exception):
    """A probe stops at the first problem it finds."""

    def __init__(self, cause: str, fix: str) -> None:
        super().__init__(cause)
        self.cause = cause
        self.fix = fix


class _Budget:
    """One probe's time: every step of it (connect, handshake, call, answer) shares ``total``."""

    def __init__(self, total: float) -> None:
        self.total = total
        self.deadline = time.monotonic() + total

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Found(
                f"timeout: no answer within {self.total:g} s",
                "check the host and port, and that no firewall drops the traffic",
            )
        return left


def preflight(target: Target, *, timeout: float | None = None) -> list[Problem]:
    """Every setup problem of ``target``, one per endpoint, in a fixed order; [] when all answer.

    Probes run concurrently, each within ``timeout`` (default: the target's, capped at 3 s)."""
    budget = min(target.timeout, PROBE_CAP_S) if timeout is None else timeout
    probes: list[tuple[str, Callable[[_Budget], None]]] = []
    api = urlsplit(target.api_url)
    api_port = api.port or (443 if api.scheme == "https" else 80)
    probes.append((f"API {api.scheme}://{_hostport(api.hostname or '', api_port)}", lambda b: _probe_api(target, b)))
    host = target.sip_host
    probes.append(
        (f"SIP UDP {_hostport(host, target.sip_udp_port)}", lambda b: _probe_sip_udp(host, target.sip_udp_port, b))
    )
    probes.append(
        (f"SIP TCP {_hostport(host, target.sip_tcp_port)}", lambda b: _probe_sip_tcp(host, target.sip_tcp_port, b))
    )
    if target.sip_ws_url:
        url = target.sip_ws_url
        probes.append((f"SIP WS {url}", lambda b: _probe_sip_ws(url, None, b)))
    if target.sip_wss_url:
        wss = target.sip_wss_url
        probes.append((f"SIP WSS {wss}", lambda b: _probe_sip_ws(wss, target, b)))

    def run(probe: Callable[[_Budget], None]) -> _Found | None:
        try:
            probe(_Budget(budget))
        except _Found as found:
            return found
        except Exception as exc:  # a probe must never break the run: say what happened instead
            return _Found(f"probe failed: {type(exc).__name__}: {exc}", "check this endpoint's settings")
        return None

    # Each probe keeps to its budget step by step; a step that overruns it anyway (httpx's timeout
    # is per phase) is cut off here, so that the whole preflight ends within budget + 1 s.
    pool = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="preflight")
    futures = [pool.submit(run, p) for _, p in probes]
    done, _ = wait(futures, timeout=budget + 1.0)
    pool.shutdown(wait=False, cancel_futures=True)
    late = _Found(
        f"timeout: no answer within {budget:g} s", "check the host and port, and that no firewall drops the traffic"
    )
    results = [f.result() if f in done else late for f in futures]
    redactor = Redactor(target.secrets)

    def line(text: str) -> str:  # one line, whatever an exception's text held
        return " ".join(redactor.text(text).split())

    return [
        Problem(line(endpoint), line(found.cause), line(found.fix))
        for (endpoint, _), found in zip(probes, results, strict=True)
        if found is not None
    ]


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- transport: connect, TLS ---------------------------------------------------------------


def _connect(host: str, port: int, budget: _Budget, *, source_ip: str | None = None, section: str) -> socket.socket:
    source = (source_ip, 0) if source_ip else None
    try:
        return socket.create_connection((host, port), timeout=budget.left(), source_address=source)
    except OSError as exc:
        raise _os_problem(exc, budget, source_ip=source_ip, section=section) from None


def _os_problem(exc: BaseException, budget: _Budget, *, source_ip: str | None = None, section: str) -> _Found:
    if isinstance(exc, ConnectionRefusedError):
        return _Found(
            "refused: nothing listens there", f"check the host and port in {section} and that the central is up"
        )
    if isinstance(exc, TimeoutError):
        return _Found(
            f"timeout: no answer within {budget.total:g} s",
            "check the host and port, and that no firewall drops the traffic",
        )
    if isinstance(exc, socket.gaierror):
        return _Found(f"unknown host ({exc.strerror})", f"check the host name in {section}")
    if isinstance(exc, OSError) and exc.errno in (22, 99) and source_ip:  # EINVAL, EADDRNOTAVAIL
        return _Found(
            f"cannot send from {source_ip} ({exc.strerror}): not an address of this machine that reaches the central",
            "set [api] source_ip to an address of this machine (the one the token is bound to)",
        )
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
    return _Found(f"cannot connect ({why})", f"check the host and port in {section}")


def _tls_wrap(
    sock: socket.socket,
    ctx: ssl.SSLContext,
    host: str,
    port: int,
    budget: _Budget,
    *,
    source_ip: str | None,
    section: str,
    url_key: str,
) -> ssl.SSLSocket:
    """The TLS handshake on a connected socket, or the one-line reason it failed."""
    try:
        sock.settimeout(budget.left())
        return ctx.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise _cert_problem(exc, host, port, budget, source_ip=source_ip, section=section, url_key=url_key) from None
    except TimeoutError:
        sock.close()
        raise _Found(
            f"timeout: no TLS handshake within {budget.total:g} s", f"check that {url_key} points at a TLS port"
        ) from None
    except (ssl.SSLError, ConnectionError, OSError) as exc:
        sock.close()
        if _speaks_plain_http(host, port, budget, source_ip):
            raise _Found(
                "plain HTTP answered the TLS handshake (not a TLS port)",
                f"point {url_key} at the central's TLS port"
                + (", or use ws:// as [sip] ws_url" if url_key.endswith("wss_url") else ""),
            ) from None
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise _Found(f"TLS handshake failed ({reason})", f"check that {url_key} points at a TLS port") from None


def _speaks_plain_http(host: str, port: int, budget: _Budget, source_ip: str | None) -> bool:
    """Whether the port answers a plain HTTP request with HTTP (an https url on an http port)."""
    try:
        with socket.create_connection(
            (host, port), timeout=budget.left(), source_address=(source_ip, 0) if source_ip else None
        ) as s:
            s.sendall(f"HEAD / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            s.settimeout(budget.left())
            return s.recv(16).startswith(b"HTTP/")
    except (OSError, _Found):
        return False


def _cert_problem(
    exc: ssl.SSLCertVerificationError,
    host: str,
    port: int,
    budget: _Budget,
    *,
    source_ip: str | None,
    section: str,
    url_key: str,
) -> _Found:
    code = exc.verify_code
    if code == _EXPIRED:
        when = _peer_cert_field(host, port, budget, source_ip, "not_after")
        return _Found("certificate expired" + (f" on {when}" if when else ""), "renew the central's certificate")
    if code == _NOT_YET_VALID:
        return _Found("certificate not valid yet", "check this machine's clock and the central's certificate")
    if code in (_HOSTNAME_MISMATCH, _IP_MISMATCH):
        names = _peer_cert_field(host, port, budget, source_ip, "names")
        return _Found(
            f"hostname mismatch: the certificate is for {names or 'another name'}, not {host}",
            f"use a name the certificate covers in {url_key}, or give the central a certificate for {host}",
        )
    detail = exc.verify_message or exc.reason or "verification failed"
    if code in _UNTRUSTED:
        return _Found(
            f"untrusted certificate ({detail})",
            f"set {section} ca_file to the CA that signed the central's certificate",
        )
    return _Found(f"certificate rejected ({detail})", f"check the central's certificate and {section} ca_file")


def _peer_cert_field(host: str, port: int, budget: _Budget, source_ip: str | None, what: str) -> str | None:
    """What an unverified handshake shows of the certificate: its names, or its expiry date."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(
            (host, port), timeout=budget.left(), source_address=(source_ip, 0) if source_ip else None
        ) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, _Found):
        return None
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
        if what == "not_after":
            after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after  # cryptography < 42
            return after.strftime("%Y-%m-%d %H:%M UTC")
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
            names += [str(n) for n in san.get_values_for_type(x509.IPAddress)]
        except x509.ExtensionNotFound:
            names = []
        if not names:
            names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        return ", ".join(names) or None
    except Exception:
        return None


# --- the API -----------------------------------------------------------------------------------


def _probe_api(target: Target, budget: _Budget) -> None:
    u = urlsplit(target.api_url)
    host = u.hostname or ""
    port = u.port or (443 if u.scheme == "https" else 80)
    sock = _connect(host, port, budget, source_ip=target.source_ip, section="[api] url")
    if u.scheme == "https":
        sock = _tls_wrap(
            sock,
            target.api_ssl_context(),
            host,
            port,
            budget,
            source_ip=target.source_ip,
            section="[api]",
            url_key="[api] url",
        )
    sock.close()
    with ApiClient(target, timeout=budget.left()) as client:
        try:
            ex = client.call(Acao.STATUSRAMAIS)
        except TransportError as exc:
            cause = exc.__cause__
            if cause is not None and "Timeout" in type(cause).__name__:
                raise _Found(
                    f"timeout: no answer to {Acao.STATUSRAMAIS} within {budget.total:g} s",
                    "check that [api] url is the central's API",
                ) from None
            raise _Found(
                f"the call failed ({type(cause or exc).__name__})", "check [api] url and that the central is up"
            ) from None
    if ex.status_code != 200:
        raise _Found(
            f"HTTP {ex.status_code} to POST /api.php: not the central's API", "check [api] url (scheme, host, port)"
        )
    if ex.answer is None:
        raise _Found(
            f"the answer to {Acao.STATUSRAMAIS} is not the central's JSON ({ex.parse_error})", "check [api] url"
        )
    pair = ex.answer.status_pair
    if pair is not None and pair[0] == STATUS:
        if pair[1] == ERRO_PROTOCOLO:
            raise _Found(
                f'answered ["Status","{ERRO_PROTOCOLO}"]: this is the plain-HTTP port',
                "point [api] url at the central's HTTPS port",
            )
        what = "denied" if pair[1] == LOGIN_INVALIDO else "not a success"
        raise _Found(
            f'credentials refused: {Acao.STATUSRAMAIS} answered ["Status","{pair[1]}"] ({what})', _CREDENTIALS_FIX
        )


# --- SIP -----------------------------------------------------------------------------------------


def _options(transport: str, local_host: str, local_port: int | None, uri_host: str, uri_port: int | None) -> bytes:
    uri = f"sip:{_hostport(uri_host, uri_port) if uri_port else uri_host}"
    sent_by = _hostport(local_host, local_port) if local_port else local_host
    via = f"SIP/2.0/{transport} {sent_by};rport;branch={new_branch()}"
    req = make_request(
        "OPTIONS",
        uri,
        from_=f"<sip:pbxcheck@{local_host}>;tag={new_tag()}",
        to=f"<{uri}>",
        call_id=f"{new_call_id()}@pbxcheck",
        cseq=1,
        via=via,
        headers=[("Accept", "application/sdp"), ("User-Agent", "pbxcheck-preflight")],
    )
    return to_bytes(req)


def _is_sip_response(data: bytes) -> bool:
    try:
        return isinstance(parse_message(data), Response)
    except Exception:
        return data.startswith(b"SIP/2.0 ")  # an answer we cannot fully read is still an answer


_NO_SIP = (
    "no SIP answer to OPTIONS within {t:g} s",
    "check [sip] host and {key}, and that the central listens for SIP on {proto}",
)


def _probe_sip_udp(host: str, port: int, budget: _Budget) -> None:
    endpoint_fix = _NO_SIP[1].format(key="udp_port", proto="UDP")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as exc:
        raise _Found(f"unknown host ({exc.strerror})", "check [sip] host") from None
    with socket.socket(family[0], socket.SOCK_DGRAM) as s:
        s.connect(family[4])  # connected: an ICMP port-unreachable comes back as ECONNREFUSED
        local = s.getsockname()
        s.send(_options("UDP", local[0], local[1], host, port))
        while True:
            try:
                s.settimeout(budget.left())
                data = s.recv(65535)
            except _Found:
                raise _Found(_NO_SIP[0].format(t=budget.total), endpoint_fix) from None
            except ConnectionRefusedError:
                raise _Found(
                    "refused: nothing listens on this UDP port (ICMP port unreachable)",
                    "check [sip] host and udp_port, and that the central is up",
                ) from None
            except TimeoutError:
                raise _Found(_NO_SIP[0].format(t=budget.total), endpoint_fix) from None
            if _is_sip_response(data):
                return


def _probe_sip_tcp(host: str, port: int, budget: _Budget) -> None:
    fix = _NO_SIP[1].format(key="tcp_port", proto="TCP")
    with _connect(host, port, budget, section="[sip] host and tcp_port") as s:
        local = s.getsockname()
        s.sendall(_options("TCP", local[0], local[1], host, port))
        framer = StreamFramer()
        got = b""
        while True:
            try:
                s.settimeout(budget.left())
                chunk = s.recv(65536)
            except (_Found, TimeoutError):
                raise _Found(_NO_SIP[0].format(t=budget.total), fix) from None
            except OSError as exc:
                raise _Found(f"the connection broke before a SIP answer ({exc.strerror or exc})", fix) from None
            if not chunk:
                first = got.split(b"\r\n", 1)[0][:60].decode("utf-8", "replace")
                raise _Found("closed without a SIP answer" + (f" (it said {first!r})" if first else ""), fix)
            got += chunk
            try:
                messages = framer.feed(chunk)
            except Exception:
                first = got.split(b"\r\n", 1)[0][:60].decode("utf-8", "replace")
                raise _Found(f"not a SIP server (it said {first!r})", fix) from None
            if any(_is_sip_response(m) for m in messages):
                return


def _probe_sip_ws(url: str, tls_target: Target | None, budget: _Budget) -> None:
    """WS or WSS (``tls_target`` given): for WSS our own TLS handshake with [sip]'s CA first (so
    that a failure reads as one of the causes above), and the WebSocket over that very connection.

    One connection, not a TLS probe closed at once and a second one for the WebSocket: the reference
    central's WSS listener sometimes stalled the next handshake for seconds after such a close."""
    u = urlsplit(url)
    host = u.hostname or ""
    port = u.port or (443 if u.scheme == "wss" else 80)
    key = "[sip] wss_url" if tls_target else "[sip] ws_url"
    sock: socket.socket = _connect(host, port, budget, section=key)
    if tls_target is not None:
        sock = _tls_wrap(
            sock, tls_target.sip_ssl_context(), host, port, budget, source_ip=None, section="[sip]", url_key=key
        )
    # websockets would wrap a wss:// socket again: the TLS socket goes in as a ws:// one (the
    # upgrade request carries no scheme, only the Host and the path).
    plain_url = "ws://" + url.split("://", 1)[1]
    try:
        conn = ws_connect(
            plain_url,
            sock=sock,
            subprotocols=["sip"],  # type: ignore[list-item]
            open_timeout=budget.left(),
            close_timeout=0.5,
            compression=None,
        )
    except InvalidStatus as exc:
        raise _Found(
            f"no SIP WebSocket there (HTTP {exc.response.status_code} to the upgrade)", f"check the path in {key}"
        ) from None
    except InvalidHandshake as exc:
        raise _Found(
            f"WebSocket handshake refused ({exc})",
            f"check {key}" + ("" if tls_target else " (a TLS port wants [sip] wss_url)"),
        ) from None
    except (TimeoutError, _Found):
        raise _Found(f"timeout: no WebSocket handshake within {budget.total:g} s", f"check {key}") from None
    except OSError as exc:
        raise _os_problem(exc, budget, section=key) from None
    with conn:
        local = new_instance_host()  # RFC 7118 section 5.2: the Via host of a WS client
        conn.send(_options("WSS" if tls_target else "WS", local, None, host, None).decode("utf-8"))
        while True:
            try:
                frame = conn.recv(timeout=budget.left())
            except (TimeoutError, _Found):
                raise _Found(_NO_SIP[0].format(t=budget.total), f"check {key}") from None
            except Exception as exc:
                raise _Found(
                    f"the WebSocket closed before a SIP answer ({type(exc).__name__})", f"check {key}"
                ) from None
            if _is_sip_response(frame.encode("utf-8") if isinstance(frame, str) else frame):
                return
