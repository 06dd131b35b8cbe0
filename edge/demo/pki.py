"""The demo's credentials: made once with ``cloud_sync.certs`` / ``cloud_sync.keys``, then reused.

The first run does what ``gatehouse certs init``, ``certs central`` and ``trust e2e-key`` do: a
private CA (which central also uses to sign the gateway's certificate at enrolment), the broker's
certificate, central's client certificate and broker password, central's Ed25519 signing key
(which the gateway pins at enrolment) and its X25519 key for end-to-end encryption. The gateway
gets nothing here: it enrols with a one-time token (``edge.demo.enrolment``), as a real one does.
Later runs load the same files, so central's enrolments and the broker's persistent sessions stay
valid across restarts. Only what is missing (or a certificate about to expire) is made again.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography import x509

from cloud_sync.certs import (
    CENTRAL_USER,
    CertificateAuthority,
    PkiLayout,
    check_password,
    create_ca,
    issue_client,
    issue_server,
    load_ca,
    set_password,
    validate_client_name,
)
from cloud_sync.e2e import new_private_key
from cloud_sync.keys import (
    ensure_signing_key,
    save_x25519_private,
    save_x25519_public,
)

__all__ = ["ClientFiles", "DemoCredentials", "ensure_api_token", "ensure_credentials"]

_LOG = structlog.get_logger(__name__)

# Re-issue a leaf certificate this close to its end, rather than fail on a later run.
_RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class ClientFiles:
    name: str
    cert: Path
    key: Path
    password_file: Path


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    layout: PkiLayout
    central: ClientFiles
    central_signing_key: Path  # central signs acks and commands with it; the gateway pins it
    central_e2e_key: Path  # central's X25519 key: the gateway encrypts its batches to it
    created: tuple[str, ...]  # what this run made (empty: everything was reused)


def _expires_soon(cert_path: Path, now: dt.datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return True
    return cert.not_valid_after_utc - now < _RENEW_BEFORE


def _password_registered(password_file: Path, user: str, password: str) -> bool:
    try:
        lines = password_file.read_text().splitlines()
    except FileNotFoundError:
        return False
    return any(line.split(":", 1)[0] == user and check_password(line, password) for line in lines)


def _client(
    ca: CertificateAuthority, layout: PkiLayout, name: str, now: dt.datetime, created: list[str]
) -> ClientFiles:
    folder = layout.client_dir(name)
    cert, key, password_path = folder / "client.crt", folder / "client.key", folder / "password"
    if cert.exists() and key.exists() and password_path.exists() and not _expires_soon(cert, now):
        password = password_path.read_text().strip()
        # The broker's password file may have been replaced since: put the line back.
        if not _password_registered(layout.password_file, name, password):
            set_password(layout.password_file, name, password)
            created.append(f"broker password entry for {name}")
        return ClientFiles(name, cert, key, password_path)
    creds = issue_client(ca, layout, name, now=now)
    created.append(f"client certificate and password for {name}")
    return ClientFiles(name, creds.cert_path, creds.key_path, creds.password_path)


def ensure_credentials(pki_dir: Path, gateway_id: str, *, now: dt.datetime | None = None) -> DemoCredentials:
    """Load the demo PKI under ``pki_dir``, creating whatever is missing."""
    now = now or dt.datetime.now(dt.UTC)
    validate_client_name(gateway_id)
    layout = PkiLayout(pki_dir)
    created: list[str] = []
    if layout.ca_cert.exists():
        ca = load_ca(layout)
    else:
        ca = create_ca(layout, now=now, common_name="Gatehouse demo CA")
        created.append("private CA")
    if not layout.broker_key.exists() or _expires_soon(layout.broker_cert, now):
        issue_server(ca, layout, now=now)
        created.append("broker certificate")
    central = _client(ca, layout, CENTRAL_USER, now, created)
    _central_key, central_created = ensure_signing_key(layout.central_signing_key, layout.central_signing_pub)
    if central_created:
        created.append("central signing key")
    e2e_key = layout.root / "central-e2e.key"
    if not e2e_key.exists():
        private = new_private_key()
        save_x25519_private(private, e2e_key)
        save_x25519_public(private.public_key(), layout.root / "central-e2e.pub")
        created.append("central end-to-end key")
    _LOG.debug("demo credentials ready", created=created, pki=str(pki_dir))
    return DemoCredentials(
        layout=layout,
        central=central,
        central_signing_key=layout.central_signing_key,
        central_e2e_key=e2e_key,
        created=tuple(created),
    )


def ensure_api_token(path: Path) -> str:
    """Central's API bearer token for the demo: made once, kept 0600 next to central.yaml."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token
