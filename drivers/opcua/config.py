"""Configuration models of the OPC UA protocol: the ``opcua`` bus (one server endpoint and how
the gateway proves who it is to it), the device (a group of nodes, optionally under a browse
root) and the point (a NodeId or a browse path, its data type and how it is sampled).

A browse path is a ``/``-separated list of browse names, each ``Name`` (in the device's
``namespace``) or ``N:Name`` (namespace index N). Security ``None`` is accepted only when the
site file writes it: the default is Basic256Sha256 with SignAndEncrypt.
"""

from __future__ import annotations

import enum
import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from drivers.config_base import (
    Access,
    BusBase,
    DeviceBase,
    PointBase,
    ProfileBase,
    ProfileDefaultsBase,
    make_patch_model,
)

__all__ = [
    "DataType",
    "Identity",
    "OpcUaBus",
    "OpcUaDeviceConfig",
    "OpcUaPointConfig",
    "OpcUaPointPatch",
    "OpcUaProfile",
    "OpcUaProfileDefaults",
    "PointMode",
    "SecurityMode",
    "SecurityPolicy",
    "parse_browse_path",
]


class SecurityPolicy(enum.StrEnum):
    NONE = "None"
    BASIC256SHA256 = "Basic256Sha256"
    AES128_SHA256_RSAOAEP = "Aes128_Sha256_RsaOaep"
    AES256_SHA256_RSAPSS = "Aes256_Sha256_RsaPss"


class SecurityMode(enum.StrEnum):
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class Identity(enum.StrEnum):
    ANONYMOUS = "anonymous"
    USERNAME = "username"
    CERTIFICATE = "certificate"


class PointMode(enum.StrEnum):
    SUBSCRIBE = "subscribe"
    POLL = "poll"


class DataType(enum.StrEnum):
    """The OPC UA built-in type a point is written as (reads take whatever the server sends)."""

    BOOL = "bool"
    SBYTE = "sbyte"
    BYTE = "byte"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT = "float"
    DOUBLE = "double"
    STRING = "string"

    @property
    def numeric(self) -> bool:
        return self not in (DataType.BOOL, DataType.STRING)


_SEGMENT = re.compile(r"^(?:(\d{1,5}):)?([^/:]+)$")
_NODE_ID = re.compile(r"^(?:ns=\d{1,5};)?[isgb]=.+$")


def parse_browse_path(path: str) -> list[tuple[int | None, str]]:
    """``"2:Pumps/Pump1/Pressure"`` → ``[(2, "Pumps"), (None, "Pump1"), (None, "Pressure")]``;
    ``None`` is "the device's namespace". Raises ``ValueError`` with the bad segment."""
    segments = [s.strip() for s in path.strip().strip("/").split("/")]
    out: list[tuple[int | None, str]] = []
    for segment in segments:
        match = _SEGMENT.match(segment)
        if match is None or not match.group(2).strip():
            raise ValueError(f"browse path segment {segment!r} is not 'Name' or 'N:Name'")
        out.append((None if match.group(1) is None else int(match.group(1)), match.group(2)))
    return out


class OpcUaPointConfig(PointBase):
    """One variable of an OPC UA device: where it is, its type, and how it is sampled."""

    node_id: str | None = Field(default=None, description="e.g. ns=2;s=Pump1.Pressure or ns=3;i=1001")
    browse_path: str | None = Field(default=None, description="from the device root, e.g. Pump1/Pressure")
    type: DataType | None = Field(default=None, description="Variant type for writes (needed when writable)")
    mode: PointMode = PointMode.SUBSCRIBE
    sampling_interval_ms: int | None = Field(
        default=None, ge=0, le=3_600_000, description="default: the point's poll interval"
    )
    queue_size: int = Field(default=1, ge=1, le=1000, description="server-side queue per monitored item")

    @field_validator("node_id")
    @classmethod
    def _node_id_shape(cls, value: str | None) -> str | None:
        if value is not None and not _NODE_ID.match(value):
            raise ValueError(
                "node_id is 'ns=N;s=Name', 'ns=N;i=123', 'i=2258', 'ns=N;g=GUID' or 'ns=N;b=BASE64'"
            )
        return value

    @field_validator("browse_path")
    @classmethod
    def _browse_path_shape(cls, value: str | None) -> str | None:
        if value is not None:
            parse_browse_path(value)
        return value

    @model_validator(mode="after")
    def _shape(self) -> OpcUaPointConfig:
        if (self.node_id is None) == (self.browse_path is None):
            raise ValueError("give exactly one of 'node_id' and 'browse_path'")
        if self.access is not Access.READ and self.type is None:
            raise ValueError("a writable point needs 'type' (the Variant type the server expects)")
        if self.type is not None and not self.type.numeric and (self.scale != 1 or self.offset != 0):
            raise ValueError(f"scale/offset do not apply to type '{self.type.value}'")
        return self

    @property
    def address(self) -> str:
        """Where the point lives, for messages and conflict checks."""
        return self.node_id if self.node_id is not None else f"path:{self.browse_path}"


OpcUaPointPatch: Any = make_patch_model(OpcUaPointConfig)


class OpcUaProfileDefaults(ProfileDefaultsBase):
    pass


class OpcUaProfile(ProfileBase):
    """An OPC UA device model: its nodes (usually browse paths from the device root)."""

    protocol: Literal["opcua"] = "opcua"
    defaults: OpcUaProfileDefaults = OpcUaProfileDefaults()
    points: list[OpcUaPointConfig] = Field(min_length=1)


class OpcUaDeviceConfig(DeviceBase):
    """A group of nodes on the bus's server (a pump station, a lift group)."""

    essential_keys: ClassVar[frozenset[str]] = DeviceBase.essential_keys | {"root", "namespace"}

    root: str | None = Field(
        default=None, description="browse path from the Objects folder, e.g. 2:PumpStation1"
    )
    namespace: str | None = Field(
        default=None, description="namespace URI of browse-path segments written without 'N:'"
    )
    points: list[OpcUaPointPatch] = Field(default_factory=list)

    @field_validator("root")
    @classmethod
    def _root_shape(cls, value: str | None) -> str | None:
        if value is not None:
            parse_browse_path(value)
        return value


class OpcUaBus(BusBase):
    """One OPC UA server endpoint and the secure channel and session to it."""

    type: Literal["opcua"]
    endpoint: str = Field(description="opc.tcp://host:port[/path]")
    timeout_ms: int = Field(default=5000, ge=100, le=60000, description="per request")
    security_policy: SecurityPolicy = SecurityPolicy.BASIC256SHA256
    security_mode: SecurityMode = SecurityMode.SIGN_AND_ENCRYPT
    # The gateway's application instance certificate (DER or PEM) and its private key (PEM),
    # relative to the site file. Made on first use when missing (see ``drivers.opcua.certs``).
    certificate: str = "pki/opcua/gateway-cert.der"
    private_key: str = "pki/opcua/gateway-key.pem"
    create_certificate: bool = Field(default=True, description="make the certificate when missing")
    application_uri: str | None = Field(
        default=None, description="must match the certificate; default urn:<hostname>:gatehouse"
    )
    # Server certificates the gateway trusts (one file each, DER or PEM); an unknown one is
    # refused and copied to rejected_dir for an operator to move here.
    trust_dir: str = "pki/opcua/trusted"
    rejected_dir: str = "pki/opcua/rejected"
    identity: Identity = Identity.ANONYMOUS
    username: str | None = None
    password_file: str | None = Field(default=None, description="file whose first line is the password")
    user_certificate: str | None = None
    user_private_key: str | None = None
    session_timeout_s: float = Field(default=60.0, ge=5, le=3600)
    keepalive_s: float = Field(default=5.0, ge=0.5, le=600, description="session health check period")
    reconnect_min_s: float = Field(default=1.0, gt=0, le=600)
    max_nodes_per_request: int = Field(default=1000, ge=1, le=10000)

    @field_validator("endpoint")
    @classmethod
    def _endpoint_shape(cls, value: str) -> str:
        if not re.match(r"^opc\.tcp://[^/:\s]+(:\d{1,5})?(/\S*)?$", value):
            raise ValueError("endpoint is opc.tcp://host:port[/path]")
        return value

    @model_validator(mode="after")
    def _identity_shape(self) -> OpcUaBus:
        if self.identity is Identity.USERNAME and (self.username is None or self.password_file is None):
            raise ValueError("identity 'username' needs 'username' and 'password_file'")
        no_user_cert = self.user_certificate is None or self.user_private_key is None
        if self.identity is Identity.CERTIFICATE and no_user_cert:
            raise ValueError("identity 'certificate' needs 'user_certificate' and 'user_private_key'")
        if self.identity is not Identity.USERNAME and (self.username or self.password_file):
            raise ValueError("'username'/'password_file' are for identity 'username'")
        if self.reconnect_min_s > self.backoff_max_s:
            raise ValueError("reconnect_min_s is above backoff_max_s")
        return self

    @property
    def host_port(self) -> tuple[str, int]:
        rest = self.endpoint.removeprefix("opc.tcp://").split("/", 1)[0]
        host, _, port = rest.partition(":")
        return host, int(port) if port else 4840
