"""The variables the audited command gets, and the env file for clients run another way."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from ..target import Target

ENV_FILE = "client.env"
CA_FILE = "ca.pem"
NAMES = ("API_URL", "API_LOGIN", "API_SENHA", "API_TOKEN", "API_CA")
SECRET_NAMES = ("API_SENHA", "API_TOKEN")


def client_env(target: Target, ca_file: str) -> dict[str, str]:
    """API_URL is the central's base URL: the API is ``$API_URL/api.php``. API_CA is a PEM file."""
    return {
        "API_URL": target.api_url.rstrip("/"),
        "API_LOGIN": target.login,
        "API_SENHA": target.senha,
        "API_TOKEN": target.token,
        "API_CA": ca_file,
    }


def keep_ca(ca_file: str, audit_dir: Path) -> str:
    """A copy of the CA beside the env file: the central's own lives in a temp folder."""
    audit_dir.mkdir(parents=True, exist_ok=True)
    dest = audit_dir / CA_FILE
    shutil.copyfile(ca_file, dest)
    return str(dest.resolve())


def write_env_file(path: Path, env: dict[str, str]) -> Path:
    """``KEY=value`` lines, shell-quoted (``set -a; . client.env``), mode 0600 from the start: it
    holds the senha and the token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# pbxcheck audit: the audit central's API (mode 0600: senha and token)\n")
        for name in NAMES:
            f.write(f"{name}={shlex.quote(env[name])}\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
