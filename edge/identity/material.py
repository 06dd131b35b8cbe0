"""Fresh key material for one enrolment or renewal. Pure: nothing here touches the disk or network.

Three keys, each for one job, all made on the gateway and never sent anywhere:

* an EC P-256 key for the MQTT TLS client certificate (central signs a CSR for it);
* an Ed25519 key that signs batches (central records its public half);
* an X25519 key that opens what central encrypts to this gateway (commands).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import NameOID

from cloud_sync.keys import key_id

__all__ = ["KeySet", "new_keys", "private_pem"]

# Central replaces the subject with the gateway id it assigns; this only makes the CSR well formed.
_CSR_SUBJECT = "gatehouse-enrolment"


def private_pem(key: ec.EllipticCurvePrivateKey | Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: the folder's permissions (0600 files, 0700 folder) protect it,
    as they protect the daemon's other secrets; a passphrase would have to sit beside it."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_pem(key: Ed25519PrivateKey | X25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


@dataclass(frozen=True, slots=True)
class KeySet:
    tls_key: ec.EllipticCurvePrivateKey
    signing_key: Ed25519PrivateKey
    e2e_key: X25519PrivateKey
    csr: str  # PEM

    @property
    def signing_public(self) -> str:
        return _public_pem(self.signing_key)

    @property
    def e2e_public(self) -> str:
        return _public_pem(self.e2e_key)

    @property
    def kid(self) -> str:
        return key_id(self.signing_key.public_key())


def new_keys() -> KeySet:
    tls_key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _CSR_SUBJECT)]))
        .sign(tls_key, hashes.SHA256())
    )
    return KeySet(
        tls_key=tls_key,
        signing_key=Ed25519PrivateKey.generate(),
        e2e_key=X25519PrivateKey.generate(),
        csr=csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )
