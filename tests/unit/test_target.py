"""Target files: every problem is one clear TargetError naming the key; never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pbxcheck.errors import TargetError
from pbxcheck.target import dump_target, load_target, parse_target

GOOD = {
    "name": "staging",
    "api": {"url": "https://127.0.0.1:8443", "plain_url": "http://127.0.0.1:8080", "source_ip": "127.0.0.1"},
    "credentials": {"login": "root", "senha": "${PBX_TEST_SENHA}", "token": "abc123"},
    "foreign": {"token": "def456", "source_ip": "127.0.0.2"},
    "disposable": {"campaign": 900, "classe5_client": "teste"},
    "sip": {"host": "127.0.0.1", "udp_port": 7048, "ws_url": "ws://127.0.0.1:8088/ws"},
    "extensions": [{"number": "2001", "password": "p2001"}, {"number": "7777", "password": "p7", "ramal_web": True}],
    "pins": {"AUTH-2.token": '["Status","Token Invalido"]'},
    "findings": {"fail_on": ["AUTH-6"]},
}


def _with(path: str, value: object) -> dict:
    import copy

    data = copy.deepcopy(GOOD)
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    if value is None:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


def test_good_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PBX_TEST_SENHA", "s3cret")
    t = parse_target(GOOD)
    assert t.senha == "s3cret"
    assert t.disposable_campaign == "900"
    assert t.api_endpoint == "https://127.0.0.1:8443/api.php"
    assert t.extension("7777").ramal_web
    assert set(t.secrets) == {"s3cret", "abc123", "def456", "p2001", "p7"}
    assert t.fail_on_findings == ("AUTH-6",)


def test_round_trip_through_dump(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PBX_TEST_SENHA", 's"q\\x')
    t = parse_target(GOOD)
    f = tmp_path / "t.toml"
    f.write_text(dump_target(t))
    again = load_target(f)
    assert again.with_(path=None) == t.with_(path=None)


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        ("api.url", None, "api.url"),
        ("api.url", "ftp://x", "api.url"),
        ("api.plain_url", "https://x", "api.plain_url"),
        ("api.source_ip", "not-an-ip", "api.source_ip"),
        ("api.timeout", -1, "api.timeout"),
        ("credentials.login", None, "credentials.login"),
        ("credentials.token", "", "credentials.token"),
        ("credentials.senha", ["x"], "credentials.senha"),
        ("credentials.senha", "${PBX_DEFINITELY_UNSET_VAR}", "credentials.senha"),
        ("disposable.campaign", None, "disposable.campaign"),
        ("disposable.classe5_client", None, "disposable.classe5_client"),
        ("sip.udp_port", 70000, "sip.udp_port"),
        ("sip.ws_url", "http://x/ws", "sip.ws_url"),
        ("extensions", {"a": 1}, "extensions"),
        ("pins", {"NOPE-1": "x"}, "pins.NOPE-1"),
        ("findings.fail_on", ["NOPE"], "findings.fail_on"),
        ("bogus", "x", "bogus"),
    ],
)
def test_bad_key_is_named(monkeypatch: pytest.MonkeyPatch, path: str, value: object, key: str) -> None:
    monkeypatch.setenv("PBX_TEST_SENHA", "s")
    with pytest.raises(TargetError) as info:
        parse_target(_with(path, value), path="t.toml")
    assert info.value.key == key
    assert str(info.value).startswith(f"t.toml: {key}: ")


def test_extension_missing_password_is_named() -> None:
    data = _with("extensions", [{"number": "2001"}])
    data["credentials"]["senha"] = "x"
    with pytest.raises(TargetError) as info:
        parse_target(data)
    assert info.value.key == "extensions[0].password"


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="file not found"):
        load_target(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(TargetError, match="not valid TOML"):
        load_target(bad)
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TargetError, match="cannot read"):
        load_target(bad)


def test_ca_file_relative_to_target(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    data = _with("api.ca_file", "ca.pem")
    data["credentials"]["senha"] = "x"
    f = tmp_path / "t.toml"
    f.write_text(dump_target(parse_target(data, base_dir=tmp_path)))
    assert load_target(f).ca_file == str(tmp_path / "ca.pem")
    data["api"]["ca_file"] = "nope.pem"
    with pytest.raises(TargetError) as info:
        parse_target(data, base_dir=tmp_path)
    assert info.value.key == "api.ca_file"


def test_cli_bad_target_one_line_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "t.toml"
    f.write_text('[api]\nurl = "https://127.0.0.1"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "pbxcheck", "run", "--target", str(f)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "api.plain_url: missing (required)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


MINIMAL = {
    "api": {"url": "https://127.0.0.1:8443", "plain_url": "http://127.0.0.1:8080"},
    "credentials": {"login": "root", "senha": "s3cret-senha", "token": "abc123abc123"},
    "disposable": {"campaign": "900", "classe5_client": "teste"},
}


def test_the_documented_example_target_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "staging.toml"
    for name in ("PBX_SENHA", "PBX_TOKEN", "EXT_2001", "EXT_2002"):
        monkeypatch.setenv(name, f"value-of-{name}")
    t = load_target(example)
    assert t.name == "staging" and len(t.extensions) == 2
    assert t.senha == "value-of-PBX_SENHA" and t.gate_require == ()


def test_sip_tls_settings_apart_from_the_api(tmp_path: Path) -> None:
    ca_api, ca_sip = tmp_path / "api.pem", tmp_path / "sip.pem"
    ca_api.write_text("x")
    ca_sip.write_text("y")
    data = {**MINIMAL, "api": {**MINIMAL["api"], "ca_file": "api.pem"}}
    same = parse_target(data, base_dir=tmp_path)
    assert (same.sip_ca_file, same.sip_insecure) == (str(ca_api), False)  # [sip] silent: the API's
    apart = parse_target({**data, "sip": {"ca_file": "sip.pem"}}, base_dir=tmp_path)
    assert apart.ca_file == str(ca_api) and apart.sip_ca_file == str(ca_sip)
    assert parse_target({**data, "sip": {"insecure": True}}, base_dir=tmp_path).sip_ca_file is None


def test_gate_require_takes_clause_ids_only() -> None:
    assert parse_target({**MINIMAL, "gate": {"require": ["SIP-WS-1"]}}).gate_require == ("SIP-WS-1",)
    with pytest.raises(TargetError, match="gate.require"):
        parse_target({**MINIMAL, "gate": {"require": ["NOPE-1"]}})
    with pytest.raises(TargetError, match="gate.requires"):
        parse_target({**MINIMAL, "gate": {"requires": []}})


def test_no_secret_in_the_repr() -> None:
    """pytest's -l locals and Hypothesis's falsifying examples print a Target by its repr."""
    t = parse_target(
        {
            **MINIMAL,
            "foreign": {"token": "foreign-token-value"},
            "extensions": [{"number": "2001", "password": "extension-password"}],
        }
    )
    shown = repr(t)
    for secret in t.secrets:
        assert secret not in shown
    assert "root" in shown  # the login is an identifier
