"""``central.yaml``: pydantic models and the loader. Relative paths are relative to the file.

``signing_key`` is central's own Ed25519 private key (``gatehouse certs central`` makes it): every
message central sends to a gateway (acks) is signed with it, and gateways pin its public key.
API tokens carry scopes (``read``, ``ingest``, ``admin``); see :class:`ApiToken`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cloud_sync.envelope import valid_gateway_id
from cloud_sync.errors import SyncError
from core.errors import ConfigError
from core.yaml_doc import read_yaml

__all__ = [
    "ApiConfig",
    "ApiToken",
    "BrokerAccess",
    "BrokerConfig",
    "CentralConfig",
    "CentralConfigError",
    "EnrolledGateway",
    "EnrolledKey",
    "RetentionConfig",
    "Scope",
    "TlsFiles",
    "TrustConfig",
    "load_central_config",
]


class CentralConfigError(SyncError):
    pass


class _Problem:
    """A pydantic error as a located problem; a forbidden or missing key points at the key."""

    __slots__ = ("at_key", "loc", "message")

    def __init__(self, err: Any) -> None:
        # Tagged unions and validators add steps ("function-after[...]") that are not keys.
        self.loc: tuple[str | int, ...] = tuple(
            step for step in err["loc"] if isinstance(step, int) or "[" not in step
        )
        self.message: str = err["msg"]
        self.at_key = err["type"] in ("extra_forbidden", "missing")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsFiles(_Model):
    cert_file: Path
    key_file: Path


class BrokerConfig(_Model):
    host: str
    port: int = Field(8883, ge=1, le=65535)
    ca_file: Path
    # Either a client certificate (CN "central") or a username and password, never plaintext.
    client_cert: TlsFiles | None = None
    username: str | None = "central"
    password: str | None = None
    password_file: Path | None = None
    client_id: str = "gatehouse-central"
    keepalive_s: int = Field(30, ge=5, le=3600)
    queue_size: int = Field(256, ge=1, le=100_000)
    # The telemetry ingest queue is bounded by bytes too: 256 batches of 8 MiB would be 2 GiB.
    queue_max_bytes: int = Field(64 * 1024 * 1024, ge=8 * 1024 * 1024)
    # paho's reconnect backoff doubles from 1 s up to this cap.
    reconnect_max_s: int = Field(30, ge=1, le=3600)
    # MQTT v5 shared subscription group ($share/<group>/...): several central ingest processes
    # (``--workers``, or central on several hosts) then share the gateways' topics, each message
    # going to one of them. None: a plain subscription (one ingest process).
    shared_group: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @model_validator(mode="after")
    def _one_password_source(self) -> BrokerConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        return self

    def resolved_password(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        return self.password


Scope = Literal["read", "ingest", "admin", "metrics", "command", "trust"]
# A token configured without scopes keeps what every token could do before scopes existed.
_LEGACY_SCOPES: Final[tuple[Scope, ...]] = ("read", "ingest", "admin")


class ApiToken(_Model):
    """An API bearer token: ``sha256`` (hex of the token) in production, ``token`` for demos.

    ``scopes``: ``read`` (gateways, points, history, events), ``ingest`` (HTTPS POST of batches),
    ``admin`` (the rejection audit), ``metrics`` (``/metrics`` only, for Prometheus; ``admin``
    may read it too), ``command`` (send signed commands and site files to gateways), ``trust``
    (enrolment tokens, revocation). ``gateways`` limits an ``ingest`` token to those gateway ids
    (give every HTTPS gateway its own token). Without ``scopes`` a token has all three.
    """

    name: str
    token: str | None = None
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Scope, ...] = _LEGACY_SCOPES
    gateways: tuple[str, ...] | None = None
    # Limits what the token reads to these estates (None: every estate); others answer 404.
    estates: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ApiToken:
        if (self.token is None) == (self.sha256 is None):
            raise ValueError("give exactly one of token or sha256")
        return self

    def digest(self) -> str:
        if self.sha256 is not None:
            return self.sha256
        assert self.token is not None
        return hashlib.sha256(self.token.encode("utf-8")).hexdigest()


class ApiConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8443, ge=0, le=65535)
    tls: TlsFiles | None = None
    tokens: list[ApiToken] = Field(min_length=1)
    history_max_rows: int = Field(100_000, ge=100)
    # Request bodies of every route but ingest (whose limit is the protocol's 8 MiB payload).
    max_body_bytes: int = Field(64 * 1024, ge=1024)


class EnrolledKey(_Model):
    pem: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EnrolledKey:
        if (self.pem is None) == (self.file is None):
            raise ValueError("give exactly one of pem or file")
        return self


class EnrolledGateway(_Model):
    id: str
    # More than one key lets a gateway rotate: enrol the new key, switch, then drop the old one.
    keys: list[EnrolledKey] = Field(min_length=1)
    # The estate (site, property) the gateway belongs to; principals may be limited to estates.
    estate: str | None = Field(None, min_length=1, max_length=200)
    name: str | None = Field(None, max_length=200)

    @property
    def estate_id(self) -> str:
        """The estate, or the gateway's own id when none is configured (one estate per gateway)."""
        return self.estate if self.estate is not None else self.id

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not valid_gateway_id(value):
            raise ValueError("gateway ids are 1-64 of A-Z a-z 0-9 _ . - (no / + #)")
        return value


class BrokerAccess(_Model):
    """The broker files central keeps in step with its trust store (enrolment, revocation).

    Central rewrites them atomically and asks the broker to reload (SIGHUP to the process in
    ``pid_file``, or ``reload_command``): a revoked gateway loses its ACL block, its password
    line and (certificate mode) its certificate lands in the CRL, without editing files by hand.
    """

    acl_file: Path
    password_file: Path | None = None  # password / both modes: enrolled gateways get a password
    crl_file: Path | None = None  # certificate mode: the CA's revocation list, PEM
    pid_file: Path | None = None
    reload_command: list[str] | None = None


class TrustConfig(_Model):
    """Central's private CA and the enrolment policy (docs/operations.md, "Enrolment")."""

    ca_cert: Path
    ca_key: Path
    ca_passphrase_file: Path | None = None
    # What enrolled gateways are told to connect to.
    broker_host: str
    broker_port: int = Field(8883, ge=1, le=65535)
    certificate_days: int = Field(90, ge=1, le=3650)
    # A gateway renews its certificate and keys once this little validity is left.
    renew_before_days: int = Field(30, ge=1)
    token_max_hours: float = Field(168.0, gt=0)
    # Batches signed with a gateway's previous key are accepted this long after a rotation, so
    # what was sealed before the switch drains from the outbox.
    old_key_grace_days: int = Field(30, ge=1)
    # New enrolments encrypt their batches to central's ``e2e_key`` unless told otherwise.
    e2e_default: bool = True
    broker_access: BrokerAccess | None = None

    @model_validator(mode="after")
    def _renew_inside_validity(self) -> TrustConfig:
        if self.renew_before_days >= self.certificate_days:
            raise ValueError("renew_before_days must be below certificate_days")
        return self


class RetentionConfig(_Model):
    """How long each data class is kept (R3.5); old data goes by whole partitions on PostgreSQL.

    Alarm and vehicle-passage records are kept at least 180 days; raw telemetry shorter; the
    hourly aggregates longer.
    """

    telemetry_days: int = Field(90, ge=1)
    hourly_days: int = Field(730, ge=1)
    events_days: int = Field(365, ge=180)
    alarms_days: int = Field(365, ge=180)


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class CentralConfig(_Model):
    # A SQLite file (path) or a PostgreSQL URL (``postgresql://user@host:port/db``).
    database: Path | str
    retention: RetentionConfig = RetentionConfig()
    # Central's Ed25519 private key (PEM): signs every ack; gateways pin its public key.
    signing_key: Path
    # Central's X25519 private key (PEM): batches encrypted end to end are sealed to its public
    # key (docs/protocol.md §2.7). None: central accepts only batches in clear.
    e2e_key: Path | None = None
    broker: BrokerConfig | None = None  # None: HTTPS POST ingest only
    # Enrolment with tokens, renewal and revocation; None: gateways are enrolled by hand (gateways:).
    trust: TrustConfig | None = None
    api: ApiConfig
    gateways: list[EnrolledGateway] = Field(default_factory=list)
    online_timeout_s: float = Field(300.0, gt=0)

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: Any) -> Any:
        if isinstance(value, str) and not _is_postgres(value):
            if "://" in value:
                raise ValueError("database: a SQLite file path or a postgresql:// URL")
            return Path(value)
        return value

    @property
    def postgres(self) -> bool:
        return isinstance(self.database, str)

    def estate_of(self, gateway_id: str) -> str:
        for gw in self.gateways:
            if gw.id == gateway_id:
                return gw.estate_id
        return gateway_id


def _resolve(obj: Any, base: Path) -> Any:
    """Make every relative path in the loaded model relative to the config file's folder."""
    if isinstance(obj, Path):
        return obj if obj.is_absolute() else base / obj
    if isinstance(obj, BaseModel):
        return obj.model_copy(update={k: _resolve(getattr(obj, k), base) for k in type(obj).model_fields})
    if isinstance(obj, list):
        return [_resolve(v, base) for v in obj]
    return obj


def load_central_config(path: Path) -> CentralConfig:
    """Read and validate central's YAML; every problem is reported as ``file:line:col: field:
    message``, one per line, the way the gateway's ``check`` reports a site file."""
    try:
        doc = read_yaml(path)
    except OSError as exc:
        raise CentralConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except ConfigError as exc:
        raise CentralConfigError("\n".join(str(p) for p in exc.problems)) from exc
    try:
        config = CentralConfig.model_validate(doc.data)
    except ValidationError as exc:
        problems = [doc.problem(_Problem(err)) for err in exc.errors()]
        raise CentralConfigError("\n".join(str(p) for p in problems)) from exc
    resolved: CentralConfig = _resolve(config, path.parent.resolve())
    return resolved
