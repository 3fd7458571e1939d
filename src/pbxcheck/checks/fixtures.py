"""The fixtures the suites and probes use: ``target``, ``redactor``, the API clients (``api``,
``plain_api``, ``foreign_ip_api``), ``check``, ``recorder`` (``observe``, ``finding``) and ``run_tag``;
with the helpers behind them. The plugin registers this module at pytest_configure."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ..client import ApiClient, ssl_context
from ..contract import ClauseId
from ..errors import TargetError
from ..redact import Redactor
from ..target import Target
from .checker import Checker
from .recorder import Recorder
from .session import state


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    """The central under test: --target FILE, or the embedded reference central (started once)."""
    try:
        return state(pytestconfig).load()
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def redactor(target: Target, pytestconfig: pytest.Config) -> Redactor:
    return state(pytestconfig).redactor


_SSL_CONTEXTS: dict[tuple[str | None, bool], Any] = {}


def new_client(target: Target, *, source_ip: str | None, plain: bool = False) -> ApiClient:
    """An ApiClient sharing one TLS context per CA setting: building a context (loading the system
    store) costs more than the handful of calls a check makes."""
    key = (target.ca_file, target.insecure)
    if key not in _SSL_CONTEXTS:
        _SSL_CONTEXTS[key] = ssl_context(target)
    transport = httpx.HTTPTransport(verify=_SSL_CONTEXTS[key], local_address=source_ip, retries=0)
    return ApiClient(target, source_ip=source_ip, plain=plain, transport=transport)


def _client(
    request: pytest.FixtureRequest, target: Target, *, source_ip: str | None, plain: bool = False
) -> Iterator[ApiClient]:
    client = state(request.config).watch(request.node.nodeid, new_client(target, source_ip=source_ip, plain=plain))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def api(request: pytest.FixtureRequest, target: Target) -> Iterator[ApiClient]:
    """A client with the target's credentials, bound to the source IP its token belongs to."""
    yield from _client(request, target, source_ip=target.source_ip)


@pytest.fixture
def plain_api(request: pytest.FixtureRequest, target: Target) -> Iterator[ApiClient]:
    """The same credentials over the plain-http URL (AUTH-4)."""
    yield from _client(request, target, source_ip=target.source_ip, plain=True)


def is_loopback(host: str | None) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def target_is_local(target: Target) -> bool:
    """Both ends on loopback: the reference central, or one a test started."""
    return is_loopback(urlsplit(target.api_url).hostname) and is_loopback(target.source_ip)


def other_loopback(ip: str) -> str:
    """A loopback address other than ``ip`` (all of 127/8 reaches lo on Linux without setup)."""
    return "127.0.0.2" if ip != "127.0.0.2" else "127.0.0.3"


@dataclass(frozen=True)
class ForeignProbe:
    """How 'valid credentials, wrong source IP' is produced against this target (AUTH-3)."""

    client: ApiClient
    how: str
    # A client for which the same token IS valid from where it connects, when we can build one:
    # the positive control that proves the denial is about the IP, not about a dead token.
    control: ApiClient | None


def foreign_probe(request: pytest.FixtureRequest, target: Target) -> ForeignProbe | None:
    session = state(request.config)

    def register(c: ApiClient) -> ApiClient:
        request.addfinalizer(c.close)
        return session.watch(request.node.nodeid, c)

    if target_is_local(target):
        other = target.foreign_source_ip or other_loopback(target.source_ip)
        if other == target.source_ip:
            other = other_loopback(target.source_ip)
        client = register(new_client(target, source_ip=other))
        control = None
        if target.foreign_token and target.foreign_source_ip == other:
            control = register(new_client(target.with_(token=target.foreign_token), source_ip=other))
        return ForeignProbe(client, f"our token, sent from {other} instead of {target.source_ip}", control)
    if target.foreign_token:
        client = register(new_client(target.with_(token=target.foreign_token), source_ip=target.source_ip))
        return ForeignProbe(
            client,
            f"the foreign token (bound to {target.foreign_source_ip or 'another IP'}), "
            f"sent from our IP {target.source_ip}",
            None,
        )
    return None


@pytest.fixture
def foreign_ip_api(request: pytest.FixtureRequest, target: Target) -> ForeignProbe:
    """Valid credentials from the wrong source IP; skips when the target gives no way to produce that."""
    probe = foreign_probe(request, target)
    if probe is None:
        pytest.skip("remote target without [foreign] token: cannot send valid credentials from a foreign IP")
    return probe


@pytest.fixture
def recorder(request: pytest.FixtureRequest, target: Target) -> Recorder:
    return Recorder(state(request.config), target, request.node.nodeid)


Observe = Callable[[ClauseId, str, Any], None]  # the type of the ``observe`` fixture
Finding = Callable[[ClauseId, str, str], None]  # the type of the ``finding`` fixture


@pytest.fixture
def observe(recorder: Recorder) -> Observe:
    """observe(clause, what, value): record what the target did on an [unspecified] point (a pin in
    the target file turns it into an assertion)."""
    return recorder.observe


@pytest.fixture
def finding(recorder: Recorder) -> Finding:
    """finding(clause, severity, text): a hardening result; fails the check only if the target asks."""
    return recorder.finding


@pytest.fixture
def check(target: Target, redactor: Redactor, recorder: Recorder) -> Checker:
    return Checker(target, redactor, recorder)


@dataclass
class RunTag:
    """A short tag unique to this run, put in inserted values so a persistent central's old data never
    matches. Derandomised Hypothesis examples repeat across runs; the tag does not."""

    value: str
    counter: int = 0

    def next(self, prefix: str = "pbx") -> str:
        self.counter += 1
        return f"{prefix}{self.value}{self.counter:04d}"


@pytest.fixture(scope="session")
def run_tag() -> RunTag:
    return RunTag(format(int(time.time() * 1000) % 36**6, "x"))


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def is_datetime_text(value: Any) -> bool:
    return isinstance(value, str) and bool(_DATE.match(value))
