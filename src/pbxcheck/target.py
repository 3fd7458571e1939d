"""Targets: one TOML file describes one central.

The format (every key, its default, which checks need it, the exit codes) is documented in
``docs/target-format.md``; a commented example for a staging central is ``examples/staging.toml``.
``${VAR}`` in a value is replaced from the environment, so secrets stay out of the file. Every
problem is one :class:`TargetError` naming the file and the dotted key.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .contract import CLAUSES
from .errors import TargetError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Extension:
    number: str
    password: str = field(repr=False)
    ramal_web: bool = False
    classe5_client: str | None = None


@dataclass(frozen=True)
class LoadSettings:
    """``[load]``: what `pbxcheck load` may do to this central (docs/target-format.md)."""

    max_rate: float | None = None  # requests/s cap; required (with destinations) for a non-loopback target
    destinations: tuple[str, str] | None = None  # first, last number of the test range (same width)
    p99_ms: float | None = None
    fail_ratio: float | None = None
    lost: int | None = None
    think_time: float | None = None
    tolerance: dict[str, float] = field(default_factory=dict)  # metric -> allowed ratio (0.1 = 10 %)


@dataclass(frozen=True)
class Target:
    name: str
    api_url: str
    plain_url: str
    source_ip: str
    login: str
    # Secrets stay out of the repr: pytest's -l locals and Hypothesis's falsifying examples print it.
    senha: str = field(repr=False)
    token: str = field(repr=False)
    disposable_campaign: str
    disposable_classe5: str
    foreign_token: str | None = field(default=None, repr=False)
    foreign_source_ip: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    timeout: float = 10.0
    sip_host: str = "127.0.0.1"
    sip_udp_port: int = 7048
    sip_tcp_port: int = 7048
    sip_ws_url: str | None = None
    sip_wss_url: str | None = None
    extensions: tuple[Extension, ...] = ()
    sip_ca_file: str | None = None
    sip_insecure: bool = False
    pins: dict[str, str] = field(default_factory=dict)
    fail_on_findings: tuple[str, ...] = ()
    gate_require: tuple[str, ...] = ()
    load: LoadSettings = field(default_factory=LoadSettings)
    path: str | None = None

    @property
    def api_endpoint(self) -> str:
        return self.api_url.rstrip("/") + "/api.php"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every value that must never reach a report or the terminal, nor any part of one.

        The login is not among them: it is an identifier (shown in every curl line), and a short
        one such as ``root`` would otherwise be cut out of every path that happens to contain it."""
        values = [self.senha, self.token, self.foreign_token]
        values += [e.password for e in self.extensions]
        return tuple(sorted({v for v in values if v}, key=len, reverse=True))

    @property
    def named_secrets(self) -> dict[str, str]:
        """The secrets by name, for a leak report that says *which* secret leaked (never its value)."""
        named = {"[credentials] senha": self.senha, "[credentials] token": self.token}
        if self.foreign_token:
            named["[foreign] token"] = self.foreign_token
        for e in self.extensions:
            named[f"extension {e.number}'s password"] = e.password
        return {k: v for k, v in named.items() if v}

    def api_ssl_context(self) -> ssl.SSLContext:
        """The client TLS context for the HTTPS API: ``[api] ca_file`` added to the system store,
        or no verification at all when ``[api] insecure`` (every report then says so)."""
        return _client_context(self.ca_file, self.insecure)

    def sip_ssl_context(self) -> ssl.SSLContext:
        """The client TLS context for SIP over WSS (``[sip] ca_file``/``insecure``)."""
        return _client_context(self.sip_ca_file, self.sip_insecure)

    def extension(self, number: str) -> Extension:
        for ext in self.extensions:
            if ext.number == number:
                return ext
        raise TargetError(f"no extension {number!r} in [[extensions]]", path=self.path, key="extensions")

    def with_(self, **changes: Any) -> Target:
        return replace(self, **changes)


def _client_context(ca_file: str | None, insecure: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _expand(value: Any, key: str, path: str | None) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise TargetError(f"environment variable {name} is not set", path=path, key=key)
            return os.environ[name]

        return _ENV.sub(sub, value)
    return value


class _Reader:
    """Typed access to the parsed TOML that names the dotted key in every complaint."""

    def __init__(self, data: dict[str, Any], path: str | None) -> None:
        self.data = data
        self.path = path

    def _get(self, dotted: str) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def text(self, dotted: str, *, required: bool = True, default: str | None = None) -> Any:
        value = self._get(dotted)
        if value is None:
            if required:
                raise TargetError("missing (required)", path=self.path, key=dotted)
            return default
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # campaign = 900 is as good as "900"
        if not isinstance(value, str):
            raise TargetError(f"must be a string, not {type(value).__name__}", path=self.path, key=dotted)
        value = _expand(value, dotted, self.path)
        if required and not value:
            raise TargetError("must not be empty", path=self.path, key=dotted)
        return value

    def port(self, dotted: str, default: int) -> int:
        value = self._get(dotted)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise TargetError(f"must be a port number 1-65535, not {value!r}", path=self.path, key=dotted)
        return value

    def positive(self, dotted: str, default: float) -> float:
        value = self._get(dotted)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise TargetError(f"must be a positive number, not {value!r}", path=self.path, key=dotted)
        return float(value)

    def flag(self, dotted: str, default: bool) -> bool:
        value = self._get(dotted)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise TargetError(f"must be true or false, not {value!r}", path=self.path, key=dotted)
        return value


def _check_url(value: str, schemes: tuple[str, ...], key: str, path: str | None) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise TargetError(f"must be a {' or '.join(schemes)} URL, not {value!r}", path=path, key=key)
    return value


def _check_ip(value: str, key: str, path: str | None) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise TargetError(f"must be an IP address, not {value!r}", path=path, key=key) from None
    return value


_KNOWN_TOP = {
    "name",
    "api",
    "credentials",
    "foreign",
    "disposable",
    "sip",
    "extensions",
    "pins",
    "findings",
    "gate",
    "load",
}
_LOAD_KEYS = {"max_rate", "destinations", "p99_ms", "fail_ratio", "lost", "think_time", "tolerance"}
_DESTINATIONS = re.compile(r"^\+?(\d{4,20})\s*-\s*\+?(\d{4,20})$")


def _load_settings(r: _Reader, path: str | None) -> LoadSettings:
    raw = r._get("load")
    if raw is None:
        return LoadSettings()
    if not isinstance(raw, dict):
        raise TargetError("must be a table", path=path, key="load")
    unknown = sorted(set(raw) - _LOAD_KEYS)
    if unknown:
        raise TargetError(f"unknown key (known: {', '.join(sorted(_LOAD_KEYS))})", path=path, key=f"load.{unknown[0]}")

    def num(key: str) -> float | None:
        return r.positive(f"load.{key}", 0.0) or None if key in raw else None

    destinations = None
    if "destinations" in raw:
        m = _DESTINATIONS.match(str(raw["destinations"]).strip()) if isinstance(raw["destinations"], str) else None
        if not m or len(m.group(1)) != len(m.group(2)) or int(m.group(1)) > int(m.group(2)):
            raise TargetError(
                'must be a number range of one width, "FIRST-LAST" (e.g. "1130000000-1130000099")',
                path=path,
                key="load.destinations",
            )
        destinations = (m.group(1), m.group(2))
    lost = raw.get("lost")
    if lost is not None and (isinstance(lost, bool) or not isinstance(lost, int) or lost < 0):
        raise TargetError(f"must be a whole number 0 or more, not {lost!r}", path=path, key="load.lost")
    fail_ratio = raw.get("fail_ratio")
    if fail_ratio is not None and (
        isinstance(fail_ratio, bool) or not isinstance(fail_ratio, (int, float)) or not 0 <= fail_ratio <= 1
    ):
        raise TargetError(f"must be a ratio 0-1, not {fail_ratio!r}", path=path, key="load.fail_ratio")
    think = raw.get("think_time")
    if think is not None and (isinstance(think, bool) or not isinstance(think, (int, float)) or think < 0):
        raise TargetError(f"must be seconds, 0 or more, not {think!r}", path=path, key="load.think_time")
    tol_raw = raw.get("tolerance", {})
    if isinstance(tol_raw, (int, float)) and not isinstance(tol_raw, bool):
        tol_raw = {"p99_ms": tol_raw, "throughput": tol_raw}
    if not isinstance(tol_raw, dict) or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in tol_raw.values()
    ):
        raise TargetError("must be a ratio (0.1 = 10 %) or a table metric = ratio", path=path, key="load.tolerance")
    return LoadSettings(
        max_rate=num("max_rate"),
        destinations=destinations,
        p99_ms=num("p99_ms"),
        fail_ratio=float(fail_ratio) if fail_ratio is not None else None,
        lost=lost,
        think_time=float(think) if think is not None else None,
        tolerance={str(k): float(v) for k, v in tol_raw.items()},
    )


def _ca_path(r: _Reader, key: str, base_dir: Path | None) -> str | None:
    ca_file = r.text(key, required=False)
    if not ca_file:
        return None
    ca = Path(ca_file)
    if not ca.is_absolute() and base_dir is not None:
        ca = base_dir / ca
    if not ca.is_file():
        raise TargetError(f"CA file {str(ca)!r} does not exist", path=r.path, key=key)
    return str(ca)


def parse_target(data: dict[str, Any], *, path: str | None = None, base_dir: Path | None = None) -> Target:
    """Build a Target from parsed TOML; every problem is one TargetError naming its key."""
    unknown = sorted(set(data) - _KNOWN_TOP)
    if unknown:
        raise TargetError(f"unknown key (known: {', '.join(sorted(_KNOWN_TOP))})", path=path, key=unknown[0])
    r = _Reader(data, path)
    api_url = _check_url(r.text("api.url"), ("https", "http"), "api.url", path)
    plain_url = _check_url(r.text("api.plain_url"), ("http",), "api.plain_url", path)
    ca_file = _ca_path(r, "api.ca_file", base_dir)
    insecure = r.flag("api.insecure", False)
    # WSS falls back to the API's TLS settings only when [sip] says nothing about its own: a central
    # whose API sits behind another TLS front names the SIP side's CA apart.
    if r._get("sip.ca_file") is None and r._get("sip.insecure") is None:
        sip_ca_file, sip_insecure = ca_file, insecure
    else:
        sip_ca_file, sip_insecure = _ca_path(r, "sip.ca_file", base_dir), r.flag("sip.insecure", False)

    extensions: list[Extension] = []
    raw_ext = data.get("extensions", [])
    if not isinstance(raw_ext, list):
        raise TargetError("must be an array of tables ([[extensions]])", path=path, key="extensions")
    for i, item in enumerate(raw_ext):
        key = f"extensions[{i}]"
        if not isinstance(item, dict):
            raise TargetError("must be a table", path=path, key=key)
        er = _Reader(item, path)
        try:
            extensions.append(
                Extension(
                    number=er.text("number"),
                    password=er.text("password"),
                    ramal_web=er.flag("ramal_web", False),
                    classe5_client=er.text("classe5_client", required=False),
                )
            )
        except TargetError as exc:
            raise TargetError(str(exc).split(": ", 2)[-1], path=path, key=f"{key}.{exc.key}") from None

    pins_raw = data.get("pins", {})
    if not isinstance(pins_raw, dict):
        raise TargetError("must be a table", path=path, key="pins")
    pins: dict[str, str] = {}
    for k, v in pins_raw.items():
        if k.split(".")[0] not in CLAUSES:
            raise TargetError(f"pin must start with a clause ID from CLAUSES.md, not {k!r}", path=path, key=f"pins.{k}")
        if not isinstance(v, str):
            raise TargetError("must be a string", path=path, key=f"pins.{k}")
        pins[k] = v

    fail_on = r._get("findings.fail_on") or []
    if not isinstance(fail_on, list) or any(x not in CLAUSES for x in fail_on):
        raise TargetError("must be a list of clause IDs", path=path, key="findings.fail_on")
    require = r._get("gate.require") or []
    if not isinstance(require, list) or any(x not in CLAUSES for x in require):
        raise TargetError("must be a list of clause IDs from CLAUSES.md", path=path, key="gate.require")
    unknown_gate = sorted(set(data.get("gate", {}) if isinstance(data.get("gate"), dict) else {}) - {"require"})
    if unknown_gate:
        raise TargetError("unknown key (known: require)", path=path, key=f"gate.{unknown_gate[0]}")

    ws_url = r.text("sip.ws_url", required=False)
    wss_url = r.text("sip.wss_url", required=False)
    if ws_url:
        _check_url(ws_url, ("ws",), "sip.ws_url", path)
    if wss_url:
        _check_url(wss_url, ("wss",), "sip.wss_url", path)
    foreign_ip = r.text("foreign.source_ip", required=False)

    return Target(
        name=r.text("name", required=False, default=None) or (Path(path).stem if path else "target"),
        api_url=api_url,
        plain_url=plain_url,
        source_ip=_check_ip(r.text("api.source_ip", required=False, default="127.0.0.1"), "api.source_ip", path),
        ca_file=ca_file,
        insecure=insecure,
        timeout=r.positive("api.timeout", 10.0),
        login=r.text("credentials.login"),
        senha=r.text("credentials.senha"),
        token=r.text("credentials.token"),
        foreign_token=r.text("foreign.token", required=False),
        foreign_source_ip=_check_ip(foreign_ip, "foreign.source_ip", path) if foreign_ip else None,
        disposable_campaign=r.text("disposable.campaign"),
        disposable_classe5=r.text("disposable.classe5_client"),
        sip_host=r.text("sip.host", required=False, default=urlsplit(api_url).hostname),
        sip_udp_port=r.port("sip.udp_port", 7048),
        sip_tcp_port=r.port("sip.tcp_port", 7048),
        sip_ws_url=ws_url,
        sip_wss_url=wss_url,
        sip_ca_file=sip_ca_file,
        sip_insecure=sip_insecure,
        extensions=tuple(extensions),
        pins=pins,
        fail_on_findings=tuple(fail_on),
        gate_require=tuple(require),
        load=_load_settings(r, path),
        path=path,
    )


def load_target(path: str | os.PathLike[str]) -> Target:
    """Read and validate a target file. Raises TargetError, never anything else."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetError("file not found", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"cannot read: {exc}", path=str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"not valid TOML: {exc}", path=str(p)) from None
    return parse_target(data, path=str(p), base_dir=p.parent)


def dump_target(t: Target) -> str:
    """A target as TOML text (used by the reference central to describe itself)."""

    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        f"name = {q(t.name)}",
        "",
        "[api]",
        f"url = {q(t.api_url)}",
        f"plain_url = {q(t.plain_url)}",
        f"source_ip = {q(t.source_ip)}",
    ]
    if t.ca_file:
        lines.append(f"ca_file = {q(t.ca_file)}")
    lines += [
        f"insecure = {'true' if t.insecure else 'false'}",
        f"timeout = {t.timeout}",
        "",
        "[credentials]",
        f"login = {q(t.login)}",
        f"senha = {q(t.senha)}",
        f"token = {q(t.token)}",
        "",
    ]
    if t.foreign_token:
        lines += ["[foreign]", f"token = {q(t.foreign_token)}"]
        if t.foreign_source_ip:
            lines.append(f"source_ip = {q(t.foreign_source_ip)}")
        lines.append("")
    lines += [
        "[disposable]",
        f"campaign = {q(t.disposable_campaign)}",
        f"classe5_client = {q(t.disposable_classe5)}",
        "",
        "[sip]",
        f"host = {q(t.sip_host)}",
        f"udp_port = {t.sip_udp_port}",
        f"tcp_port = {t.sip_tcp_port}",
    ]
    if t.sip_ws_url:
        lines.append(f"ws_url = {q(t.sip_ws_url)}")
    if t.sip_wss_url:
        lines.append(f"wss_url = {q(t.sip_wss_url)}")
    if (t.sip_ca_file, t.sip_insecure) != (t.ca_file, t.insecure):
        if t.sip_ca_file:
            lines.append(f"ca_file = {q(t.sip_ca_file)}")
        lines.append(f"insecure = {'true' if t.sip_insecure else 'false'}")
    lines.append("")
    for e in t.extensions:
        lines += [
            "[[extensions]]",
            f"number = {q(e.number)}",
            f"password = {q(e.password)}",
            f"ramal_web = {'true' if e.ramal_web else 'false'}",
        ]
        if e.classe5_client:
            lines.append(f"classe5_client = {q(e.classe5_client)}")
        lines.append("")
    if t.pins:
        lines.append("[pins]")
        lines += [f"{q(k)} = {q(v)}" for k, v in t.pins.items()]
        lines.append("")
    if t.fail_on_findings:
        lines += ["[findings]", "fail_on = [" + ", ".join(q(x) for x in t.fail_on_findings) + "]", ""]
    if t.gate_require:
        lines += ["[gate]", "require = [" + ", ".join(q(x) for x in t.gate_require) + "]", ""]
    if t.load != LoadSettings():
        ld = t.load
        lines.append("[load]")
        lines += [
            f"{k} = {v!r}"
            for k, v in (
                ("max_rate", ld.max_rate),
                ("p99_ms", ld.p99_ms),
                ("fail_ratio", ld.fail_ratio),
                ("lost", ld.lost),
                ("think_time", ld.think_time),
            )
            if v is not None
        ]
        if ld.destinations:
            lines.append(f"destinations = {q('-'.join(ld.destinations))}")
        if ld.tolerance:
            lines.append("tolerance = { " + ", ".join(f"{k} = {v!r}" for k, v in ld.tolerance.items()) + " }")
        lines.append("")
    return "\n".join(lines)
