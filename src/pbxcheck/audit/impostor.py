"""CL-TLS-2's impostor: a TLS server on 127.0.0.1 whose certificate a second CA signed, not API_CA.

A client that verifies the certificate aborts the handshake and sends nothing; one that does not
sends its call, credentials included, and is answered ``["Status","OK"]`` as the real central would.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from types import TracebackType

import trustme

from .recorder import IMPOSTOR, Exchange

READ_TIMEOUT_S = 5.0
MAX_REQUEST = 1 << 20
OK_ANSWER = b'["Status","OK"]'


def parse_request(raw: bytes, phase: str) -> Exchange | None:
    """One HTTP/1.1 request as read off the socket (None when not even a request line came)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        return None
    target = parts[1]
    path, _, query = target.partition("?")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    return Exchange(phase, IMPOSTOR, parts[0], path, query, headers, body, time.monotonic())


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            with contextlib.suppress(ValueError):
                return min(int(value.strip()), MAX_REQUEST)
    return 0


class Impostor:
    """``with Impostor("impostor") as imp:`` serves on ``imp.url`` until the block ends."""

    def __init__(self, phase: str) -> None:
        self.phase = phase
        ca = trustme.CA(organization_name="pbxcheck audit impostor (not API_CA)")
        self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._ctx)
        self.connections = 0  # TCP connections accepted
        self.handshakes = 0  # TLS handshakes the client completed (it accepted the certificate)
        self.refusals: list[str] = []  # why the other handshakes failed
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        assert self._sock is not None
        return f"https://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> Impostor:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        accept = threading.Thread(target=self._accept, name="audit-impostor", daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for t in list(self._threads):
            t.join(READ_TIMEOUT_S + 1)
        if self._sock is not None:
            self._sock.close()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(READ_TIMEOUT_S)
        try:
            tls = self._ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            conn.close()
            with self._lock:
                self.refusals.append(type(exc).__name__ + ": " + str(exc).splitlines()[0][:120])
            return
        with tls:
            with self._lock:
                self.handshakes += 1
            raw = self._read(tls)
            ex = parse_request(raw, self.phase) if raw else None
            if ex is None:
                return
            with self._lock:
                self.exchanges.append(ex)
            ex.status = 200
            ex.chunks.append(OK_ANSWER)
            with contextlib.suppress(OSError):
                tls.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(OK_ANSWER)}\r\n\r\n".encode()
                    + OK_ANSWER
                )

    @staticmethod
    def _read(tls: ssl.SSLSocket) -> bytes:
        raw = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in raw and len(raw) < MAX_REQUEST:
                chunk = tls.recv(65536)
                if not chunk:
                    return raw
                raw += chunk
            head, _, body = raw.partition(b"\r\n\r\n")
            want = _content_length(head)
            while len(body) < want:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                body += chunk
            raw = head + b"\r\n\r\n" + body
        return raw
