"""OPC UA application instance certificates and the trust list of server certificates.

An OPC UA application proves who it is with an X.509 certificate whose subjectAltName carries
its ApplicationUri (servers compare it with the session's ClientDescription) and its host name,
with the key usages OPC UA Part 6 asks for (digital signature, non-repudiation, key and data
encipherment) and both TLS-style extended usages, so one certificate serves as client and server.

The trust list is a folder of certificate files (DER or PEM): a server certificate is trusted
when the same certificate is in it. An unknown one is written to the rejected folder so that an
operator can review it and move it across; the error says exactly which file to copy where.

Only ``cryptography`` is used here (no asyncua), so ``gatehouse certs`` stays quick.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CERT_NAME",
    "KEY_NAME",
    "CertificateProblem",
    "UntrustedCertificate",
    "certificate_uris",
    "check_trusted",
    "ensure_application_certificate",
    "load_der",
    "make_application_certificate",
    "thumbprint",
    "write_application_certificate",
]

CERT_NAME = "gateway-cert.der"
KEY_NAME = "gateway-key.pem"
_VALID_DAYS = 3650
_KEY_BITS = 2048


class CertificateProblem(Exception):  # noqa: N818 - reads better at the raise site
    """The gateway's own certificate cannot be used (missing, incomplete, wrong URI)."""


class UntrustedCertificate(Exception):  # noqa: N818
    """A server presented a certificate that is not in the trust list."""


def make_application_certificate(out_dir: Path, application_uri: str, hostname: str) -> tuple[Path, Path]:
    """Write a new RSA 2048 / SHA-256 application certificate (DER) and key (PEM, mode 0600)
    to ``out_dir`` as ``gateway-cert.der`` and ``gateway-key.pem``; returns their paths.
    Existing files are replaced (``gatehouse certs`` decides whether to call this)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / CERT_NAME, out_dir / KEY_NAME
    write_application_certificate(cert_path, key_path, application_uri, hostname)
    return cert_path, key_path


def write_application_certificate(
    cert_path: Path, key_path: Path, application_uri: str, hostname: str, *, name: str = "Gatehouse"
) -> None:
    """Make a key and a self-signed application certificate at the given paths. The
    certificate is DER unless ``cert_path`` ends in ``.pem``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name}@{hostname}"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gatehouse"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri), x509.DNSName(hostname)]
    if hostname != "localhost":
        san.append(x509.DNSName("localhost"))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Back-dated a little: a peer whose clock runs behind must not see it as "not yet valid".
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,  # self-signed: some stacks verify the signature with it
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    encoding = serialization.Encoding.PEM if cert_path.suffix == ".pem" else serialization.Encoding.DER
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(encoding))


def ensure_application_certificate(
    cert_path: Path, key_path: Path, application_uri: str, hostname: str, *, create: bool
) -> None:
    """Make the certificate and key when both are missing (and ``create``); otherwise check that
    the certificate names ``application_uri``. Raises ``CertificateProblem`` saying what to do."""
    if not cert_path.exists() and not key_path.exists():
        if not create:
            raise CertificateProblem(
                f"no OPC UA application certificate at {cert_path}: run 'gatehouse certs' or set "
                "create_certificate: true"
            )
        write_application_certificate(cert_path, key_path, application_uri, hostname)
        return
    for path in (cert_path, key_path):
        if not path.exists():
            raise CertificateProblem(f"{path} is missing (its certificate/key pair is incomplete)")
    uris = certificate_uris(load_der(cert_path))
    if application_uri not in uris:
        raise CertificateProblem(
            f"certificate {cert_path} is for {', '.join(uris) or 'no application URI'}, not "
            f"{application_uri}: set application_uri to match, or remove the pair to have a new one made"
        )


def load_der(path: Path) -> bytes:
    """A certificate file (DER or PEM) as DER bytes."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    return data


def certificate_uris(der: bytes) -> list[str]:
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(uri) for uri in san.get_values_for_type(x509.UniformResourceIdentifier)]


def thumbprint(der: bytes) -> str:
    """SHA-1 thumbprint in hex, as OPC UA tools show it."""
    return hashlib.sha1(der, usedforsecurity=False).hexdigest()


def check_trusted(der: bytes, trust_dir: Path, rejected_dir: Path) -> None:
    """Return if ``der`` is one of the certificates in ``trust_dir``; otherwise save it to
    ``rejected_dir`` and raise ``UntrustedCertificate`` saying how to trust it."""
    if trust_dir.is_dir():
        for path in sorted(trust_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in (".der", ".pem", ".crt", ".cer"):
                try:
                    if load_der(path) == der:
                        return
                except ValueError:
                    continue  # not a certificate; the operator's business, not a refusal reason
    rejected_dir.mkdir(parents=True, exist_ok=True)
    cert = x509.load_der_x509_certificate(der)
    uris = certificate_uris(der)
    label = uris[0] if uris else cert.subject.rfc4514_string()
    saved = rejected_dir / f"{_file_label(label)}-{thumbprint(der)[:16]}.der"
    saved.write_bytes(der)
    raise UntrustedCertificate(
        f"server certificate of {label} (SHA-1 {thumbprint(der)}) is not trusted; to trust it, "
        f"copy {saved} to trust dir {trust_dir}"
    )


def _file_label(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:60]
