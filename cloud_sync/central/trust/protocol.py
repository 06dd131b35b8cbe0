"""The enrolment wire contract, central's side (docs/trust.md "Wire contract"). Pure.

Tokens are 32 random bytes in URL-safe base64 with a ``ght_`` prefix (so that one pasted into
the wrong place is recognisable); central keeps only their SHA-256. A renewal is signed by the
gateway's current Ed25519 key over :func:`renew_message`, which binds the gateway id, the key
id, the time and a digest of everything being asked for, one per line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

__all__ = [
    "RENEW_LABEL",
    "RENEW_MAX_SKEW_S",
    "MalformedRequest",
    "PublicKeys",
    "new_token",
    "parse_public_keys",
    "renew_message",
    "token_digest",
    "verify_renewal",
]

RENEW_LABEL: Final = "gatehouse-renew-v1"
RENEW_MAX_SKEW_S: Final = 300.0
_TOKEN_PREFIX: Final = "ght_"


class MalformedRequest(ValueError):
    """A field that does not parse (400), as opposed to a refusal (403)."""


def new_token() -> str:
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PublicKeys:
    signing: Ed25519PublicKey
    signing_pem: str
    e2e: X25519PublicKey
    e2e_pem: str


def _public(pem: str, field: str) -> object:
    try:
        return serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError) as exc:
        raise MalformedRequest(f"{field} is not a PEM public key") from exc


def _canonical(key: Ed25519PublicKey | X25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def parse_public_keys(signing_pem: str, e2e_pem: str) -> PublicKeys:
    signing = _public(signing_pem, "signing_key")
    if not isinstance(signing, Ed25519PublicKey):
        raise MalformedRequest("signing_key is not an Ed25519 public key")
    e2e = _public(e2e_pem, "e2e_key")
    if not isinstance(e2e, X25519PublicKey):
        raise MalformedRequest("e2e_key is not an X25519 public key")
    # Stored re-encoded, so what central keeps does not carry whatever else the request held.
    return PublicKeys(signing, _canonical(signing), e2e, _canonical(e2e))


def renew_message(*, gateway_id: str, kid: str, at: float, csr: str, signing_key: str, e2e_key: str) -> bytes:
    digest = hashlib.sha256((csr + signing_key + e2e_key).encode("utf-8")).hexdigest()
    return "\n".join((RENEW_LABEL, gateway_id, kid, "%.3f" % at, digest)).encode("utf-8")  # noqa: UP031


def verify_renewal(public_key: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
