"""Kamailio 5.6 as a real registrar + proxy with digest auth, started and stopped by our code.

    from pbxcheck.peers.kamailio import KamailioProcess, find_kamailio

    with KamailioProcess({"2001": "pw1", "2002": "pw2"}) as kam:   # port=0: a free port
        kam.host, kam.port          # listening on UDP and TCP there
        kam.aor("2001")             # 'sip:2001@127.0.0.1:PORT'
        kam.log_tail()              # Kamailio's stderr log, for a failing test's message

What it is (``fixtures/peers/kamailio/kamailio.cfg``, rendered with ``-A`` defines):

- listens on ``host:port`` over UDP and TCP (default in the cfg: 127.0.0.1:7048);
- digest auth from a db_text ``subscriber`` table (``auth`` + ``auth_db``, plain-text passwords,
  ``calculate_ha1``), MD5, ``qop=auth``, nonce counts checked (a replayed nc is refused), realm
  ``realm`` (default ``pbxcheck``). REGISTER is challenged with 401, every other out-of-dialog
  request with 407 (``invite_challenge="401"`` makes them 401/WWW-Authenticate too, Asterisk-style);
- usrloc in memory, ``registrar`` ``save``/``lookup``; INVITEs between registered users are routed
  with ``record_route`` + ``t_relay``; TCP registrations are reached back over their own connection
  (nathelper ``fix_nated_register``/``set_contact_alias``);
- an OPTIONS to the server itself (no user part) gets 200 without a challenge (liveness check);
- ``leak_extensions=True`` (``-A LEAK_EXTENSIONS``): an unknown user (To user on REGISTER, From user
  otherwise) is answered 404 before any challenge — a deliberate enumeration leak. By default an
  unknown user and a wrong password are answered alike (a fresh challenge);
- ``wrong_password_403=True`` (``-A WRONG_PASSWORD_403``): a wrong password or an unknown user gets
  403 Forbidden at once, every time, with no rate limit (what SIP-SEC-1 must not take for throttling).

The process runs in the foreground (``-DD -E``), memory ``-m 64 -M 8``, runtime dir, pid file, db
files and log in a temp dir, in its own process group; ``__exit__`` stops the whole group.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

from pbxcheck.bundled import bundled_dir
from pbxcheck.peers import ManagedPeer, PeerError, find_binary, free_port, log_tail, stop_process_group
from pbxcheck.sip.ids import new_branch, new_call_id, new_tag

__all__ = ["KamailioProcess", "find_kamailio", "kamailio_cfg_path"]

_USER_RE = re.compile(r"^[A-Za-z0-9._+-]{1,64}$")
_SUBSCRIBER_SCHEMA = (
    "id(int,auto) username(string) domain(string,null) password(string) ha1(string,null) ha1b(string,null) \n"
)
_VERSION_TABLE = "id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n"


def find_kamailio() -> str | None:
    """Path of the ``kamailio`` binary, or None."""
    return find_binary("kamailio")


def kamailio_cfg_path() -> Path:
    """The project's Kamailio config (``fixtures/peers/kamailio/kamailio.cfg``)."""
    return bundled_dir("fixtures") / "peers" / "kamailio" / "kamailio.cfg"


def _dbtext_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("\n", "\\n").replace("\r", "\\r")


def render_subscriber_table(users: dict[str, str], domain: str) -> str:
    """The db_text ``subscriber`` file for ``users`` (username → plain-text password)."""
    rows = [_SUBSCRIBER_SCHEMA]
    for i, (user, password) in enumerate(users.items(), start=1):
        if not _USER_RE.match(user):
            raise ValueError(f"kamailio user name {user!r} must match {_USER_RE.pattern}")
        rows.append(f"{i}:{_dbtext_escape(user)}:{_dbtext_escape(domain)}:{_dbtext_escape(password)}::\n")
    return "".join(rows)


class KamailioProcess(ManagedPeer):
    """A Kamailio registrar/proxy with digest auth on ``host:port`` (UDP and TCP), as a context manager.

    ``port=0`` picks a port free on both UDP and TCP. ``start_timeout`` bounds the wait for its first
    answer to an OPTIONS; a failed start raises ``PeerError`` with the tail of Kamailio's log.
    """

    def __init__(
        self,
        users: dict[str, str],
        host: str = "127.0.0.1",
        port: int = 0,
        leak_extensions: bool = False,
        *,
        realm: str = "pbxcheck",
        invite_challenge: str = "407",
        wrong_password_403: bool = False,
        start_timeout: float = 10.0,
        binary: str | None = None,
    ) -> None:
        if invite_challenge not in ("401", "407"):
            raise ValueError("invite_challenge must be '401' or '407'")
        if not re.match(r"^[A-Za-z0-9._-]+$", realm):
            raise ValueError(f"realm {realm!r}: letters, digits, '.', '_' and '-' only")
        self.users = dict(users)
        self.host = host
        self.port = port
        self._port_arg = port
        self.leak_extensions = leak_extensions
        self.realm = realm
        self.invite_challenge = invite_challenge
        self.wrong_password_403 = wrong_password_403
        self.start_timeout = start_timeout
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None

    # -- public --------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path | None:
        return self.workdir / "kamailio.log" if self.workdir else None

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines) if self.log_path else ""

    def aor(self, user: str) -> str:
        return f"sip:{user}@{self.host}:{self.port}"

    def write_target(self, path: Path, *, name: str = "kamailio", api_port: int = 9) -> Path:
        """A SIP-only target file for this registrar: its users as [[extensions]], and an API at
        127.0.0.1:``api_port`` that nothing answers (the SIP probes and sip-register never call it;
        senha and token are random, so nothing real sits in the file)."""
        from ..sip.ids import random_hex
        from ..target import Extension, Target, dump_target

        api = f"127.0.0.1:{api_port}"
        target = Target(
            name=name,
            api_url=f"https://{api}",
            plain_url=f"http://{api}",
            source_ip="127.0.0.1",
            login="unused",
            senha=random_hex(6),
            token=random_hex(16),
            disposable_campaign="0",
            disposable_classe5="none",
            timeout=1.0,
            sip_host=self.host,
            sip_udp_port=self.port,
            sip_tcp_port=self.port,
            extensions=tuple(Extension(number, password) for number, password in self.users.items()),
        )
        path.write_text(dump_target(target), encoding="utf-8")
        return path

    def command_line(self) -> list[str]:
        """The kamailio command line (valid once started, or after ``_prepare``)."""
        assert self.workdir is not None
        binary = self.binary or find_kamailio()
        if not binary:
            raise PeerError("kamailio not found (Debian package 'kamailio')")
        defines = [
            f"SIP_HOST={self.host}",
            f"SIP_PORT={self.port}",
            f'DBURL="text://{self.workdir / "db"}"',
            f'REALM="{self.realm}"',
        ]
        if self.leak_extensions:
            defines.append("LEAK_EXTENSIONS")
        if self.invite_challenge == "401":
            defines.append("WWW_AUTH_ALL")
        if self.wrong_password_403:
            defines.append("WRONG_PASSWORD_403")
        cmd = [
            binary,
            "-f",
            str(kamailio_cfg_path()),
            "-DD",
            "-E",
            "-m",
            "64",
            "-M",
            "8",
            "-Y",
            str(self.workdir / "run"),
            "-P",
            str(self.workdir / "run" / "kamailio.pid"),
            "-w",
            str(self.workdir),
        ]
        for d in defines:
            cmd += ["-A", d]
        return cmd

    def _start_once(self) -> None:
        workdir = self._acquire("pbxcheck-kamailio-")
        try:
            self._prepare()
            with open(workdir / "kamailio.log", "wb") as log:
                self.proc = subprocess.Popen(
                    self.command_line(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    start_new_session=True,
                )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _repick_ports(self) -> bool:
        if self._port_arg != 0:
            return False
        self.port = 0
        return True

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)
            self.proc = None
        self._release()

    # -- internals -----------------------------------------------------------------------------
    def _prepare(self) -> None:
        assert self.workdir is not None
        if self.port == 0:
            self.port = free_port(self.host, udp=True, tcp=True)
        (self.workdir / "run").mkdir()
        db = self.workdir / "db"
        db.mkdir()
        (db / "version").write_text(_VERSION_TABLE)
        (db / "subscriber").write_text(render_subscriber_table(self.users, self.host))

    def _wait_ready(self) -> None:
        """Until Kamailio answers an OPTIONS over UDP and accepts a TCP connection."""
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((self.host, 0))
            s.settimeout(0.2)
            lport = s.getsockname()[1]
            udp_ok = False
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise PeerError(f"kamailio exited with {self.proc.returncode} at start:\n{self.log_tail()}")
                if not udp_ok:
                    s.sendto(self._options(lport), (self.host, self.port))
                    try:
                        data, _ = s.recvfrom(65535)
                        udp_ok = data.startswith(b"SIP/2.0 ")
                    except (TimeoutError, ConnectionRefusedError):
                        continue
                if udp_ok:
                    try:
                        socket.create_connection((self.host, self.port), timeout=0.5).close()
                        return
                    except OSError:
                        time.sleep(0.05)
        raise PeerError(
            f"kamailio did not answer on {self.host}:{self.port} within {self.start_timeout}s:\n{self.log_tail()}"
        )

    def _options(self, lport: int) -> bytes:
        branch = new_branch()
        return (
            f"OPTIONS sip:{self.host}:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{lport};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:ping@{self.host}>;tag={new_tag()}\r\n"
            f"To: <sip:{self.host}:{self.port}>\r\n"
            f"Call-ID: {new_call_id()}@pbxcheck\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()


if __name__ == "__main__":  # pragma: no cover - by hand: python -m pbxcheck.peers.kamailio [PORT]
    import sys

    _port = int(sys.argv[1]) if len(sys.argv) > 1 else 7048
    with KamailioProcess({"2001": "2001pw", "2002": "2002pw", "5545": "5545pw"}, port=_port) as _k:
        print(f"kamailio on {_k.host}:{_k.port} (udp+tcp), users {_k.users}; Ctrl-C to stop", flush=True)
        _k.wait_until_exit_or_interrupt()
    os._exit(0)
