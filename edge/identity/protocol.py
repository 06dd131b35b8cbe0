"""The enrolment wire contract (docs/trust.md), gateway side. Pure.

``POST /api/v1/enroll`` trades a one-time token and the gateway's public keys for a client
certificate and central's pins; ``POST /api/v1/enroll/renew`` does the same for an enrolled
gateway, authenticated by a signature of its *current* signing key over :func:`renew_message`.
Both answer with a :class:`Grant`; a refusal is ``403 {"error": ..., "reason": ...}``.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud_sync.envelope import valid_gateway_id
from edge.identity.material import KeySet

__all__ = [
    "ENROLL_PATH",
    "RENEW_LABEL",
    "RENEW_PATH",
    "Grant",
    "GrantError",
    "enroll_request",
    "parse_grant",
    "renew_message",
    "renew_request",
]

ENROLL_PATH = "/api/v1/enroll"
RENEW_PATH = "/api/v1/enroll/renew"
RENEW_LABEL = "gatehouse-renew-v1"


class GrantError(ValueError):
    """Central's answer does not hold together (missing field, wrong key type, foreign cert)."""


class _Broker(BaseModel):
    model_config = ConfigDict(extra="ignore")
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    username: str | None = None
    password: str | None = None


class _GrantBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    gateway_id: str
    estate: str | None = None
    name: str | None = None
    client_cert: str
    ca_cert: str
    broker: _Broker
    central_signing_key: str
    central_e2e_key: str | None = None
    encrypt: Literal["off", "x25519-aes256gcm", "x25519-sm4gcm"] = "off"
    not_after: float
    renew_after: float
    kid: str = Field(pattern=r"^[0-9a-f]{16}$")


@dataclass(frozen=True, slots=True)
class Grant:
    """What central issued: checked against the keys this gateway sent."""

    gateway_id: str
    estate: str | None
    name: str | None
    client_cert: str
    ca_cert: str
    broker_host: str
    broker_port: int
    username: str | None
    password: str | None
    central_signing_key: str
    central_e2e_key: str | None
    encrypt: str
    not_after: float
    renew_after: float
    kid: str


def enroll_request(token: str, keys: KeySet) -> dict[str, str]:
    return {"token": token, "csr": keys.csr, "signing_key": keys.signing_public, "e2e_key": keys.e2e_public}


def _digest(csr: str, signing_key: str, e2e_key: str) -> str:
    return hashlib.sha256((csr + signing_key + e2e_key).encode("utf-8")).hexdigest()


def renew_message(*, gateway_id: str, kid: str, at: float, csr: str, signing_key: str, e2e_key: str) -> bytes:
    """The exact bytes the current key signs: label, id, key id, time (``%.3f``) and a digest of
    what is being asked for, one per line, so no field can be moved into another."""
    return "\n".join(
        (RENEW_LABEL, gateway_id, kid, "%.3f" % at, _digest(csr, signing_key, e2e_key))  # noqa: UP031
    ).encode("utf-8")


def renew_request(
    *, gateway_id: str, current_key: Ed25519PrivateKey, kid: str, at: float, keys: KeySet
) -> dict[str, Any]:
    # Rounded first so that the number sent and the text signed say the same thing.
    at = round(at, 3)
    message = renew_message(
        gateway_id=gateway_id,
        kid=kid,
        at=at,
        csr=keys.csr,
        signing_key=keys.signing_public,
        e2e_key=keys.e2e_public,
    )
    return {
        "gateway_id": gateway_id,
        "kid": kid,
        "at": at,
        "csr": keys.csr,
        "signing_key": keys.signing_public,
        "e2e_key": keys.e2e_public,
        "signature": base64.b64encode(current_key.sign(message)).decode("ascii"),
    }


def _load_cert(pem: str, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise GrantError(f"{what} is not a PEM certificate") from exc


def _load_public(pem: str, what: str) -> object:
    try:
        return serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError) as exc:
        raise GrantError(f"{what} is not a PEM public key") from exc


def parse_grant(raw: Any, keys: KeySet) -> Grant:
    """Check central's 200 answer against what was asked; ``GrantError`` says what is wrong.

    A certificate for another key, or a key id that is not ours, means the answer belongs to
    some other request: writing it would leave a gateway that cannot connect or sign."""
    try:
        body = _GrantBody.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise GrantError(f"central's answer: {where}: {first['msg']}") from exc
    if not valid_gateway_id(body.gateway_id):
        raise GrantError(f"central's answer: gateway_id {body.gateway_id!r} cannot be an MQTT topic level")
    if not (math.isfinite(body.not_after) and math.isfinite(body.renew_after)):
        raise GrantError("central's answer: not_after and renew_after must be finite")
    cert = _load_cert(body.client_cert, "client_cert")
    ca = _load_cert(body.ca_cert, "ca_cert")
    if cert.public_key() != keys.tls_key.public_key():
        raise GrantError("client_cert is not for the key this gateway sent")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise GrantError("client_cert was not issued by ca_cert") from exc
    if not isinstance(_load_public(body.central_signing_key, "central_signing_key"), Ed25519PublicKey):
        raise GrantError("central_signing_key is not an Ed25519 key")
    if body.central_e2e_key is not None and not isinstance(
        _load_public(body.central_e2e_key, "central_e2e_key"), X25519PublicKey
    ):
        raise GrantError("central_e2e_key is not an X25519 key")
    if body.encrypt != "off" and body.central_e2e_key is None:
        raise GrantError(f"encrypt is {body.encrypt} but central sent no central_e2e_key")
    if body.kid != keys.kid:
        raise GrantError(f"kid {body.kid} is not this gateway's signing key ({keys.kid})")
    return Grant(
        gateway_id=body.gateway_id,
        estate=body.estate,
        name=body.name,
        client_cert=body.client_cert,
        ca_cert=body.ca_cert,
        broker_host=body.broker.host,
        broker_port=body.broker.port,
        username=body.broker.username,
        password=body.broker.password,
        central_signing_key=body.central_signing_key,
        central_e2e_key=body.central_e2e_key,
        encrypt=body.encrypt,
        not_after=body.not_after,
        renew_after=body.renew_after,
        kid=body.kid,
    )
