"""A small private PKI for one site: CA, broker certificate, client certificates, broker passwords.

Everything lives under one directory (``PkiLayout``)::

    DIR/ca.crt  ca.key                      the private CA; ca.key is encrypted with a passphrase
                                             (PKCS#8, ``create_ca(passphrase=...)``) and best kept
                                             offline after set-up
    DIR/broker/broker.crt  broker.key       the Mosquitto server certificate (SANs: localhost,
                                             127.0.0.1 and the hostnames given)
    DIR/broker/passwd                        Mosquitto password file (``$7$`` PBKDF2-SHA512 lines)
    DIR/clients/<name>/client.crt  client.key  password
                                             one folder per gateway id, plus ``central``
    DIR/clients/<name>/dashboard.crt  dashboard.key
                                             the gateway's LAN dashboard HTTPS certificate
    DIR/central-signing.key  .pub            central's Ed25519 key that signs acks; gateways
                                             pin the .pub (``uplink.central_key``)

Keys are ECDSA P-256: Mosquitto 2.0.11 on OpenSSL accepts them for both the server and client
side, and they are much cheaper to create than RSA. Ed25519 X.509 certificates are *not* used
because TLS stacks of older brokers and clients still reject them.

The password file format is Mosquitto 2.x's ``user:$7$ITERATIONS$SALT_B64$HASH_B64`` with a
12-byte salt and a 64-byte PBKDF2-HMAC-SHA512 hash (checked against ``mosquitto_passwd``'s output),
so no external tool is needed.

The CA key is the one secret that can mint every other credential of the site, so it is written
encrypted (PKCS#8 with the best encryption ``cryptography`` offers: AES-256-CBC under a
PBKDF2-SHA256-derived key) whenever a passphrase is given; ``load_ca`` needs the same passphrase.
An unencrypted key is still read (older installs, the demo and test PKIs), and
``protect_ca_key`` encrypts one in place.

Time is passed in (``now``) so that tests can make certificates for any moment.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CENTRAL_USER",
    "CertificateAuthority",
    "ClientCredentials",
    "PkiError",
    "PkiLayout",
    "ca_key_encrypted",
    "check_password",
    "create_ca",
    "issue_client",
    "issue_dashboard",
    "issue_server",
    "build_crl",
    "certificate_pem",
    "load_ca",
    "load_ca_files",
    "protect_ca_key",
    "new_password",
    "password_line",
    "set_password",
    "sign_csr",
    "validate_client_name",
]

_LOG = structlog.get_logger(__name__)

# The central service's broker user. A gateway may not take this name (see validate_client_name).
CENTRAL_USER = "central"
# Gateway ids become MQTT usernames and topic levels (ACL patterns use %u), so they must not
# contain topic separators or wildcards; the same rule as docs/protocol.md §1.
_CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Mosquitto 2.0's own default; the broker hashes on every password login, so more costs CPU there.
_PBKDF2_ITERATIONS = 101
_SALT_BYTES = 12
_HASH_BYTES = 64


class PkiError(Exception):
    """The PKI directory is missing something or a name is not acceptable."""


@dataclass(frozen=True, slots=True)
class PkiLayout:
    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def broker_dir(self) -> Path:
        return self.root / "broker"

    @property
    def broker_cert(self) -> Path:
        return self.broker_dir / "broker.crt"

    @property
    def broker_key(self) -> Path:
        return self.broker_dir / "broker.key"

    @property
    def password_file(self) -> Path:
        return self.broker_dir / "passwd"

    def client_dir(self, name: str) -> Path:
        return self.root / "clients" / name

    def dashboard_cert(self, name: str) -> Path:
        """The LAN dashboard's HTTPS certificate of gateway ``name``."""
        return self.client_dir(name) / "dashboard.crt"

    def dashboard_key(self, name: str) -> Path:
        return self.client_dir(name) / "dashboard.key"

    @property
    def central_signing_key(self) -> Path:
        """Central's Ed25519 key for signing acks (stays with central, 0600)."""
        return self.root / "central-signing.key"

    @property
    def central_signing_pub(self) -> Path:
        """Its public key, which every gateway pins (``uplink.central_key``)."""
        return self.root / "central-signing.pub"


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    name: str  # gateway id or CENTRAL_USER; also the certificate CN and the broker username
    cert_path: Path
    key_path: Path
    password: str
    password_path: Path


def validate_client_name(name: str, *, allow_central: bool = False) -> str:
    if not _CLIENT_NAME.fullmatch(name):
        raise PkiError(
            f"{name!r} is not a usable gateway id: 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit"
        )
    if name == CENTRAL_USER and not allow_central:
        raise PkiError(f"{CENTRAL_USER!r} is reserved for the central service")
    return name


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret with mode 0600 from the start (no window where it is world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if passphrase is not None:
        encryption = serialization.BestAvailableEncryption(passphrase)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


MIN_PASSPHRASE = 8


def _check_passphrase(passphrase: bytes | None) -> None:
    if passphrase is not None and len(passphrase) < MIN_PASSPHRASE:
        raise PkiError(f"the CA passphrase must have at least {MIN_PASSPHRASE} characters")


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gatehouse"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(now: dt.datetime, valid_days: int) -> tuple[dt.datetime, dt.datetime]:
    # Back-date a little: a gateway whose clock is slightly behind must still accept the broker.
    return now - dt.timedelta(hours=1), now + dt.timedelta(days=valid_days)


def create_ca(
    layout: PkiLayout,
    *,
    now: dt.datetime,
    common_name: str = "Gatehouse private CA",
    valid_days: int = 3650,
    overwrite: bool = False,
    passphrase: bytes | None = None,
) -> CertificateAuthority:
    """A new CA; its key is encrypted with ``passphrase`` (None: written in the clear)."""
    _check_passphrase(passphrase)
    if layout.ca_cert.exists() and not overwrite:
        raise PkiError(f"{layout.ca_cert} exists; refusing to replace a CA that certificates hang off")
    key = _new_key()
    not_before, not_after = _validity(now, valid_days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(layout.ca_key, _key_pem(key, passphrase))
    _write_public(layout.ca_cert, _cert_pem(cert))
    _LOG.info("pki.ca_created", path=str(layout.ca_cert), encrypted=passphrase is not None)
    return CertificateAuthority(cert=cert, key=key)


def ca_key_encrypted(layout: PkiLayout) -> bool:
    """True when ``ca.key`` is an encrypted PKCS#8 key (False also when there is none)."""
    try:
        return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in layout.ca_key.read_bytes()
    except FileNotFoundError:
        return False


def load_ca(layout: PkiLayout, *, passphrase: bytes | None = None) -> CertificateAuthority:
    """The CA; ``passphrase`` is needed when its key is encrypted (and ignored when it is not)."""
    if not layout.ca_cert.exists() or not layout.ca_key.exists():
        raise PkiError(f"no CA in {layout.root}: run `gatehouse certs init` first")
    return load_ca_files(layout.ca_cert, layout.ca_key, passphrase=passphrase)


def load_ca_files(
    cert_path: Path, key_path: Path, *, passphrase: bytes | None = None
) -> CertificateAuthority:
    """The CA from its two files wherever they are (central.yaml's ``trust: ca_cert, ca_key``)."""
    try:
        key_pem = key_path.read_bytes()
        cert_pem = cert_path.read_bytes()
    except FileNotFoundError as exc:
        raise PkiError(f"CA file missing: {exc.filename}") from exc
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in key_pem
    if encrypted and passphrase is None:
        raise PkiError(
            f"{key_path} is encrypted: give its passphrase (--ca-passphrase-file, "
            "GATEHOUSE_CA_PASSPHRASE or the prompt)"
        )
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=passphrase if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise PkiError(f"{key_path}: wrong passphrase (or the file is damaged)") from exc
        raise PkiError(f"CA files {cert_path}, {key_path} are not readable PEM: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{key_path} is not an EC key")
    return CertificateAuthority(cert=cert, key=key)


def protect_ca_key(ca: CertificateAuthority, layout: PkiLayout, passphrase: bytes | None) -> None:
    """Write the CA key again under ``passphrase`` (None: in the clear), replacing the file
    atomically so that a crash leaves the old key, never half a key."""
    _check_passphrase(passphrase)
    tmp = layout.ca_key.with_name(layout.ca_key.name + ".new")
    _write_private(tmp, _key_pem(ca.key, passphrase))
    os.replace(tmp, layout.ca_key)
    _LOG.info("pki.ca_key_rewritten", path=str(layout.ca_key), encrypted=passphrase is not None)


def _leaf(
    ca: CertificateAuthority,
    *,
    common_name: str,
    public_key: ec.EllipticCurvePublicKey,
    usage: x509.ObjectIdentifier,
    now: dt.datetime,
    valid_days: int,
    san: x509.SubjectAlternativeName | None,
) -> x509.Certificate:
    not_before, not_after = _validity(now, valid_days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def _san(hostnames: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in ("localhost", "127.0.0.1", *hostnames):
        if host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue_server(
    ca: CertificateAuthority,
    layout: PkiLayout,
    *,
    hostnames: Sequence[str] = (),
    now: dt.datetime,
    valid_days: int = 825,
    cert_path: Path | None = None,
    key_path: Path | None = None,
) -> tuple[Path, Path]:
    """A server certificate with SANs ``localhost``, ``127.0.0.1`` and ``hostnames``: the
    broker's unless ``cert_path`` and ``key_path`` say where else to write it."""
    cert_path = cert_path or layout.broker_cert
    key_path = key_path or layout.broker_key
    key = _new_key()
    common_name = hostnames[0] if hostnames else "localhost"
    cert = _leaf(
        ca,
        common_name=common_name,
        public_key=key.public_key(),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        now=now,
        valid_days=valid_days,
        san=_san(hostnames),
    )
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, _cert_pem(cert))
    _LOG.info("pki.server_issued", path=str(cert_path), hostnames=list(hostnames))
    return cert_path, key_path


def issue_dashboard(
    ca: CertificateAuthority,
    layout: PkiLayout,
    name: str,
    *,
    hostnames: Sequence[str] = (),
    now: dt.datetime,
    valid_days: int = 825,
) -> tuple[Path, Path]:
    """The HTTPS certificate of gateway ``name``'s LAN dashboard (browsers that trust ``ca.crt``
    accept it for ``hostnames``, ``localhost`` and ``127.0.0.1``)."""
    validate_client_name(name)
    return issue_server(
        ca,
        layout,
        hostnames=hostnames,
        now=now,
        valid_days=valid_days,
        cert_path=layout.dashboard_cert(name),
        key_path=layout.dashboard_key(name),
    )


def issue_client(
    ca: CertificateAuthority,
    layout: PkiLayout,
    name: str,
    *,
    now: dt.datetime,
    valid_days: int = 825,
    password: str | None = None,
) -> ClientCredentials:
    """Client certificate (CN = ``name``), a random broker password, and its password-file line."""
    validate_client_name(name, allow_central=True)
    folder = layout.client_dir(name)
    key = _new_key()
    cert = _leaf(
        ca,
        common_name=name,
        public_key=key.public_key(),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        now=now,
        valid_days=valid_days,
        san=None,
    )
    cert_path, key_path, password_path = folder / "client.crt", folder / "client.key", folder / "password"
    secret = password if password is not None else new_password()
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, _cert_pem(cert))
    _write_private(password_path, (secret + "\n").encode())
    set_password(layout.password_file, name, secret)
    _LOG.info("pki.client_issued", name=name, path=str(cert_path))
    return ClientCredentials(
        name=name, cert_path=cert_path, key_path=key_path, password=secret, password_path=password_path
    )


def new_password() -> str:
    return secrets.token_urlsafe(24)


def password_line(
    username: str, password: str, *, salt: bytes | None = None, iterations: int = _PBKDF2_ITERATIONS
) -> str:
    """One Mosquitto 2.x password-file line (without the newline)."""
    if ":" in username:
        raise PkiError("a broker username cannot contain ':'")
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, _HASH_BYTES)
    salt_b64 = base64.b64encode(salt).decode()
    hash_b64 = base64.b64encode(digest).decode()
    return f"{username}:$7${iterations}${salt_b64}${hash_b64}"


def check_password(line: str, password: str) -> bool:
    """Does ``password`` match this password-file line? (The broker's check, for tests and doctor.)"""
    _, _, encoded = line.strip().partition(":")
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7":
        raise PkiError(f"not a Mosquitto $7$ password line: {line!r}")
    iterations, salt, expected = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(expected))
    return hmac.compare_digest(digest, expected)


def set_password(password_file: Path, username: str, password: str) -> None:
    """Add ``username`` to the password file, replacing an earlier line for the same user."""
    lines: list[str] = []
    if password_file.exists():
        lines = [
            line
            for line in password_file.read_text().splitlines()
            if line.strip() and line.split(":", 1)[0] != username
        ]
    lines.append(password_line(username, password))
    _write_private(password_file, ("\n".join(lines) + "\n").encode())


def sign_csr(
    ca: CertificateAuthority, csr_pem: str | bytes, *, common_name: str, now: dt.datetime, valid_days: int
) -> x509.Certificate:
    """A client certificate (CN = ``common_name``, client-auth EKU) for the key of a PKCS#10 CSR.

    Only the CSR's public key is used: its subject and any extensions it asks for are ignored,
    so a gateway cannot name itself or request server or CA rights. The key must be EC P-256
    (what Mosquitto 2.0.11 and every gateway TLS stack accept) and the CSR must be signed by it,
    which proves the requester holds the private half.
    """
    validate_client_name(common_name)
    data = csr_pem.encode("ascii", errors="replace") if isinstance(csr_pem, str) else csr_pem
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise PkiError(f"the CSR is not a PEM PKCS#10 request: {exc}") from exc
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise PkiError("the CSR's key must be EC P-256")
    if not csr.is_signature_valid:
        raise PkiError("the CSR's signature does not verify with its own key")
    return _leaf(
        ca,
        common_name=common_name,
        public_key=public_key,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        now=now,
        valid_days=valid_days,
        san=None,
    )


def certificate_pem(cert: x509.Certificate) -> str:
    return _cert_pem(cert).decode("ascii")


def build_crl(
    ca: CertificateAuthority,
    revoked: Iterable[tuple[int, dt.datetime]],
    *,
    now: dt.datetime,
    next_update_days: int = 30,
) -> bytes:
    """A CRL (PEM) of ``(serial, revoked_at)`` pairs signed by the CA. An empty list is a valid
    CRL too: a broker configured with ``crlfile`` needs the file to exist from the start."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=next_update_days))
    )
    for serial, at in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at).build()
        )
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
