"""Running the reference central: HTTPS API, plain-HTTP port, dialer, and room for the SIP side.

Everything runs on one event loop (uvloop) in one thread: the uvicorn servers, the dialer task,
the click-to-call timers and, once it exists, the SIP side. Sockets are bound here, before the
servers start, so port 0 works and the target file carries the real ports.

The SIP side plugs in through ``pbxcheck.central.sip.create_service(central) -> (service, engine)``,
called after the store, the dialer and the CallEngine exist and before the API is built; the
central puts the returned engine (one that rings real devices) in place of its own.
``central.sip_sockets`` holds the SIP sockets already bound (UDP and TCP on one port, the WSS and WS
listeners, ``central/sockets.py``); without a SIP service (``services=[]``) they are closed once the
ports are known.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import uvicorn

from ..target import Extension, Target, dump_target
from .app import Api, plain_app
from .calls import CallEngine
from .cork import CorkedHttpToolsProtocol
from .dialer import Dialer
from .faults import validate
from .seed import seed
from .sip import create_service
from .sockets import SipSockets, sip_pair, tcp_socket
from .store import Store, default_db_path
from .tls import TlsFiles, ensure_tls

log = logging.getLogger("pbxcheck.central")


@dataclass
class CentralConfig:
    host: str = "127.0.0.1"
    api_port: int = 8443
    plain_port: int = 8080
    sip_port: int = 7048
    ws_port: int = 8089
    ws_plain_port: int = 8088
    db_path: str | None = None
    state_dir: str | None = None
    faults: frozenset[str] = frozenset()
    clock_speed: float = 1.0
    # `pbxcheck audit`: wraps the HTTPS app and the plain-HTTP app ("https", "http") to record every
    # request and, in its chaos phase, answer some itself. None: the apps serve as they are.
    wrap_app: Callable[[Any, str], Any] | None = None


class Service(Protocol):
    """An extra part of the central on the same loop (the SIP side)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# A service and, when it places calls itself, the CallEngine the API is to use instead of the central's.
ServiceFactory = Callable[["Central"], tuple[Service, CallEngine | None]]


def default_services() -> list[ServiceFactory]:
    return [create_service]


def _public_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


class Central:
    def __init__(self, config: CentralConfig, *, services: list[ServiceFactory] | None = None) -> None:
        self.config = config
        self.faults = validate(config.faults)
        self._service_factories = default_services() if services is None else services
        self.services: list[Service] = []
        self.store: Store | None = None
        self.calls: CallEngine | None = None
        self.dialer: Dialer | None = None
        self.tls: TlsFiles | None = None
        self.sip_sockets: SipSockets | None = None
        self.api_port = 0
        self.plain_port = 0
        self._servers: list[tuple[uvicorn.Server, socket.socket]] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._tmp_state: tempfile.TemporaryDirectory[str] | None = None
        self._tmp_db: str | None = None

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def clock_speed(self) -> float:
        return self.config.clock_speed

    @property
    def state_dir(self) -> str:
        if self.config.state_dir:
            return self.config.state_dir
        if self._tmp_state is None:
            self._tmp_state = tempfile.TemporaryDirectory(prefix="pbxcheck-central-")
        return self._tmp_state.name

    async def start(self) -> None:
        cfg = self.config
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)
        self.tls = ensure_tls(self.state_dir)
        db_path = cfg.db_path
        if db_path is None:
            db_path = self._tmp_db = default_db_path(self.state_dir)
        self.store = Store(db_path, faults=self.faults)
        seed(self.store)
        self.calls = CallEngine(self.store, clock_speed=cfg.clock_speed, faults=self.faults)
        self.dialer = Dialer(self.store, clock_speed=cfg.clock_speed, faults=self.faults)

        udp, tcp = sip_pair(cfg.host, cfg.sip_port)
        self.sip_sockets = SipSockets(
            udp, tcp, tcp_socket(cfg.host, cfg.ws_port), tcp_socket(cfg.host, cfg.ws_plain_port)
        )
        self.sip_sockets.ports = {
            "udp": udp.getsockname()[1],
            "tcp": tcp.getsockname()[1],
            "wss": self.sip_sockets.wss.getsockname()[1],
            "ws": self.sip_sockets.ws.getsockname()[1],
        }
        for factory in self._service_factories:
            service, engine = factory(self)
            self.services.append(service)
            if engine is not None:
                if self.calls is not None:
                    self.calls.close()
                self.calls = engine
        if not self.services:
            self.sip_sockets.close()  # ports stay described; nothing answers on them yet

        api = Api(self.store, self.dialer, self.calls, self.faults).asgi()
        api_sock = tcp_socket(cfg.host, cfg.api_port)
        plain_sock = tcp_socket(cfg.host, cfg.plain_port)
        self.api_port = api_sock.getsockname()[1]
        self.plain_port = plain_sock.getsockname()[1]
        plain = api if "plain-http-accepted" in self.faults else plain_app
        if cfg.wrap_app is not None:
            api, plain = cfg.wrap_app(api, "https"), cfg.wrap_app(plain, "http")
        await self._serve(api, api_sock, tls=True)
        await self._serve(plain, plain_sock, tls=False)
        for service in self.services:
            await service.start()
        self._tasks.append(asyncio.create_task(self.dialer.run(), name="dialer"))

    async def _serve(self, app: Any, sock: socket.socket, *, tls: bool) -> None:
        assert self.tls is not None
        config = uvicorn.Config(
            app,
            http=CorkedHttpToolsProtocol,
            ws="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=2,
            ssl_certfile=self.tls.cert_file if tls else None,
            ssl_keyfile=self.tls.key_file if tls else None,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._servers.append((server, sock))
        self._tasks.append(asyncio.create_task(server.main_loop(), name="uvicorn-tick"))

    async def stop(self) -> None:
        for service in reversed(self.services):
            with contextlib.suppress(Exception):
                await service.stop()
        for server, _ in self._servers:
            server.should_exit = True
        for task in self._tasks:
            if task.get_name() == "dialer":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server, sock in self._servers:
            with contextlib.suppress(Exception):
                await server.shutdown(sockets=[sock])
        self._servers.clear()
        self._tasks.clear()
        if self.calls:
            self.calls.close()
        if self.store:
            self.store.close()
        if self._tmp_db:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._tmp_db + suffix)
        if self._tmp_state is not None:
            self._tmp_state.cleanup()

    def target(self) -> Target:
        """The central described as a target file would (real ports, CA, credentials)."""
        assert self.store is not None and self.tls is not None and self.sip_sockets is not None
        host = _public_host(self.config.host)
        main = self.store.instance("main")
        foreign = self.store.instance("foreign")
        ports = self.sip_sockets.ports
        return Target(
            name="reference-central",
            api_url=f"https://{host}:{self.api_port}",
            plain_url=f"http://{host}:{self.plain_port}",
            source_ip=main.source_ip,
            login=main.login,
            senha=main.senha,
            token=main.token,
            foreign_token=foreign.token,
            foreign_source_ip=foreign.source_ip,
            disposable_campaign=self.store.meta("disposable_campaign") or "900",
            disposable_classe5=self.store.meta("disposable_classe5") or "teste",
            ca_file=self.tls.ca_file,
            sip_ca_file=self.tls.ca_file,  # WSS is served with the API's certificate
            sip_host=host,
            sip_udp_port=ports["udp"],
            sip_tcp_port=ports["tcp"],
            sip_ws_url=f"ws://{host}:{ports['ws']}/ws",
            sip_wss_url=f"wss://{host}:{ports['wss']}/ws",
            extensions=tuple(Extension(e.number, e.password, e.ramal_web, e.classe5) for e in self.store.extensions()),
        )


def write_target_file(target: Target, path: str) -> None:
    """Atomically: a reader never sees half a file (tests poll for it)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + f".{os.getpid()}.tmp")
    tmp.write_text(dump_target(target), encoding="utf-8")
    os.chmod(tmp, 0o600)  # it holds the credentials
    os.replace(tmp, p)


async def serve(
    config: CentralConfig,
    *,
    write_target: str | None = None,
    on_ready: Callable[[Central], None] | None = None,
    stop: asyncio.Event | None = None,
    services: list[ServiceFactory] | None = None,
    parent_pid: int | None = None,
) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM/SIGHUP in the main thread, or ``parent_pid`` is gone)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
    watchdog = asyncio.create_task(_watch_parent(parent_pid, stop)) if parent_pid else None
    central = Central(config, services=services)
    try:
        await central.start()
        if write_target:
            write_target_file(central.target(), write_target)
        if on_ready:
            on_ready(central)
        await stop.wait()
    finally:
        if watchdog:
            watchdog.cancel()
        await central.stop()


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    # A harness killed with SIGKILL cannot stop its central; without this the central (and its
    # ports, its temp files) would outlive it. When the parent dies we are re-parented, so
    # getppid() changes: polling it works whatever thread started us (PR_SET_PDEATHSIG would not).
    while os.getppid() == parent_pid:
        await asyncio.sleep(1.0)
    stop.set()


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # uvloop is part of uvicorn[standard]; plain asyncio still works
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_forever(
    config: CentralConfig,
    write_target: str | None = None,
    on_ready: Callable[[Central], None] | None = None,
    parent_pid: int | None = None,
) -> None:
    """Blocking; returns after SIGINT/SIGTERM/SIGHUP (or the death of ``parent_pid``) once everything
    is closed (its temp state folder removed, when it made one)."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(serve(config, write_target=write_target, on_ready=on_ready, parent_pid=parent_pid))
