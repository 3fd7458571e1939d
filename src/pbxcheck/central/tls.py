"""A private CA and a server certificate for 127.0.0.1/localhost, so the central serves real,
verifiable TLS: clients trust ``ca.pem`` (the target file's ``api.ca_file``), nothing is insecure."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    ca_file: str
    cert_file: str  # the server certificate followed by its chain
    key_file: str


def ensure_tls(state_dir: str | os.PathLike[str], hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """Create the CA and server certificate in ``state_dir`` unless they exist (a restart keeps them)."""
    d = Path(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(str(d / "ca.pem"), str(d / "server.pem"), str(d / "server.key"))
    if all(Path(p).is_file() for p in (files.ca_file, files.cert_file, files.key_file)):
        return files
    ca = trustme.CA(organization_name="pbxcheck reference central")
    cert = ca.issue_cert(*hosts, "::1")
    ca.cert_pem.write_to_path(files.ca_file)
    cert.private_key_pem.write_to_path(files.key_file)
    os.chmod(files.key_file, 0o600)
    with open(files.cert_file, "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    return files
