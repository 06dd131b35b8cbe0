"""Request and response bodies of the trust routes (the OpenAPI schema shows these)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AuditOut",
    "BrokerOut",
    "EnrollIn",
    "GrantOut",
    "KeyOut",
    "RefusalOut",
    "RenewIn",
    "RevokeIn",
    "RevokeOut",
    "TokenIn",
    "TokenIssuedOut",
    "TokenOut",
    "TrustGatewayOut",
]

_PEM_MAX = 8192
_CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIHs...\n-----END CERTIFICATE REQUEST-----\n"
_ED = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA...\n-----END PUBLIC KEY-----\n"
_X = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEA...\n-----END PUBLIC KEY-----\n"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrollIn(_In):
    token: str = Field(min_length=1, max_length=200)
    csr: str = Field(min_length=1, max_length=_PEM_MAX, description="PEM PKCS#10 CSR for an EC P-256 key")
    signing_key: str = Field(min_length=1, max_length=_PEM_MAX, description="PEM Ed25519 public key")
    e2e_key: str = Field(min_length=1, max_length=_PEM_MAX, description="PEM X25519 public key")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"token": "ght_3q2-...", "csr": _CSR, "signing_key": _ED, "e2e_key": _X}]
        },
    )


class RenewIn(_In):
    gateway_id: str = Field(min_length=1, max_length=64)
    kid: str = Field(pattern=r"^[0-9a-f]{16}$", description="key id of the key that signed this request")
    at: float = Field(description="seconds since the epoch; within 300 s of central's clock")
    csr: str = Field(min_length=1, max_length=_PEM_MAX)
    signing_key: str = Field(min_length=1, max_length=_PEM_MAX, description="the new Ed25519 public key")
    e2e_key: str = Field(min_length=1, max_length=_PEM_MAX, description="the new X25519 public key")
    signature: str = Field(
        min_length=1,
        max_length=200,
        description="base64 Ed25519 signature by key `kid` over 'gatehouse-renew-v1\\n' + gateway_id + "
        "'\\n' + kid + '\\n' + '%.3f' % at + '\\n' + sha256hex(csr + signing_key + e2e_key)",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "gateway_id": "gw-estate-01",
                    "kid": "9f2c4e1a7b3d5c60",
                    "at": 1764633600.0,
                    "csr": _CSR,
                    "signing_key": _ED,
                    "e2e_key": _X,
                    "signature": "q83v...==",
                }
            ]
        },
    )


class BrokerOut(BaseModel):
    host: str
    port: int
    username: str
    password: str | None = Field(description="only when central manages a broker password file")


class GrantOut(BaseModel):
    gateway_id: str
    estate: str | None
    name: str | None
    client_cert: str = Field(description="PEM, CN = gateway_id, issued by ca_cert")
    ca_cert: str
    broker: BrokerOut
    central_signing_key: str = Field(description="central's Ed25519 public key (acks, commands): pin it")
    central_e2e_key: str | None
    encrypt: Literal["off", "x25519-aes256gcm", "x25519-sm4gcm"]
    not_after: float
    renew_after: float
    kid: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "gateway_id": "gw-estate-01",
                    "estate": "estate-a",
                    "name": None,
                    "client_cert": "-----BEGIN CERTIFICATE-----\n...",
                    "ca_cert": "-----BEGIN CERTIFICATE-----\n...",
                    "broker": {
                        "host": "mq.example",
                        "port": 8883,
                        "username": "gw-estate-01",
                        "password": None,
                    },
                    "central_signing_key": _ED,
                    "central_e2e_key": _X,
                    "encrypt": "x25519-aes256gcm",
                    "not_after": 1767225600.0,
                    "renew_after": 1764633600.0,
                    "kid": "9f2c4e1a7b3d5c60",
                }
            ]
        }
    )


class RefusalOut(BaseModel):
    error: Literal["token_refused", "renew_refused"]
    reason: str = Field(
        description="token: unknown|used|expired|revoked; "
        "renewal: revoked|bad_signature|stale|unknown_gateway"
    )


class TokenIn(_In):
    gateway_id: str = Field(min_length=1, max_length=64)
    estate: str | None = Field(None, min_length=1, max_length=200)
    name: str | None = Field(None, max_length=200)
    expires_in_s: float | None = Field(None, description="default 24 h, at most trust.token_max_hours")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"gateway_id": "gw-estate-01", "estate": "estate-a", "name": "Gate 1", "expires_in_s": 86400}
            ]
        },
    )


class TokenIssuedOut(BaseModel):
    token: str = Field(description="shown this once; central keeps only its SHA-256")
    gateway_id: str
    expires_at: float
    enroll_command: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "ght_3q2-...",
                    "gateway_id": "gw-estate-01",
                    "expires_at": 1764720000.0,
                    "enroll_command": "gatehouse enroll https://central.example:8443 ght_3q2-...",
                }
            ]
        }
    )


class TokenOut(BaseModel):
    gateway_id: str
    estate: str | None
    name: str | None
    created_at: float
    created_by: str
    expires_at: float
    used_at: float | None
    used_from: str | None
    state: Literal["pending", "used", "expired"]


class KeyOut(BaseModel):
    kid: str
    added_at: float
    valid_until: float | None = Field(description="None: current key; a time: retired, accepted until then")


class TrustGatewayOut(BaseModel):
    id: str
    estate: str | None
    name: str | None
    status: Literal["enrolled", "revoked"]
    enrolled_at: float
    renewed_at: float | None
    revoked_at: float | None
    revoked_by: str | None
    revoked_reason: str | None
    keys: list[KeyOut]
    cert_serial: str | None
    cert_not_after: float | None
    e2e: bool
    encrypt: str


class RevokeIn(_In):
    reason: str = Field(min_length=1, max_length=500)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "gateway stolen"}]})


class RevokeOut(BaseModel):
    gateway_id: str
    revoked_at: float
    broker_reloaded: bool | None = Field(description="None: central does not manage the broker files")
    broker_detail: str


class AuditOut(BaseModel):
    id: int
    at: float
    event: str = Field(description="token.issued, token.refused, enrolled, renewed, renew.refused, revoked")
    gateway_id: str | None
    actor: str | None
    source: str | None
    reason: str | None
    detail: str | None
