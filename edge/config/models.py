"""Pydantic models of a site file and of a device profile.

Every model forbids unknown keys and is frozen: configuration is data, validated once. The
loader (``edge.config.loader``) turns the YAML into these and maps pydantic's error locations
back to ``file:line:col``. Cross-reference checks (unknown bus, duplicate ids, overlapping
registers, ...) live in ``edge.config.checks`` because they need the whole site at once.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.modbus.types import DataType, Table, WordOrder, register_count

__all__ = [
    "BusConfig",
    "DataType",
    "DeviceConfig",
    "GatewayConfig",
    "ModbusRtuBus",
    "ModbusTcpBus",
    "OutboxConfig",
    "PointConfig",
    "PointPatch",
    "ProfileConfig",
    "ProfileDefaults",
    "ReportPolicy",
    "SiteConfig",
    "SiteInfo",
    "Table",
    "WordOrder",
]

Identifier = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$",
        description="lower-case letters, digits, '_' and '-'; starts with a letter or digit; at most 64",
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class Access(enum.StrEnum):
    READ = "r"
    READ_WRITE = "rw"
    WRITE = "w"


class ReportPolicy(_Model):
    """When a polled value goes to the outbox. A quality change is always reported."""

    on_change: bool = True
    deadband_abs: float | None = Field(default=None, ge=0, description="report when |Δ| > this")
    deadband_pct: float | None = Field(
        default=None, ge=0, le=100, description="report when |Δ| > this % of the last reported value"
    )
    heartbeat_s: float | None = Field(
        default=300.0, gt=0, description="report at least this often even if nothing changed"
    )


class PointConfig(_Model):
    """One point of a Modbus device: where it lives, how to decode it, what it means."""

    id: Identifier
    name: str | None = None
    name_zh: str | None = None
    table: Table = Table.HOLDING
    address: int = Field(ge=0, le=65535, description="0-based protocol address")
    type: DataType = DataType.UINT16
    order: WordOrder = WordOrder.ABCD
    bit: int | None = Field(default=None, ge=0, le=15, description="bit index for type 'bit'")
    length: int | None = Field(default=None, ge=1, le=125, description="registers, for type 'string'")
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    enum: dict[int, str] | None = None
    enum_zh: dict[int, str] | None = Field(
        default=None, description="Chinese labels of the enum's codes (same keys as 'enum')"
    )
    access: Access = Access.READ
    poll_interval_s: float | None = Field(default=None, gt=0, le=86400)
    valid_min: float | None = None
    valid_max: float | None = None
    verify_write: bool = True
    zone: str | None = None
    report: ReportPolicy | None = None
    # Alarm definitions are validated by the rules package; see docs/configuration.md.
    alarms: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shape(self) -> PointConfig:
        bit_tables = (Table.COIL, Table.DISCRETE_INPUT)
        if self.table in bit_tables and self.type is not DataType.BOOL:
            raise ValueError(f"a {self.table.value} point has type 'bool', not '{self.type.value}'")
        if self.table not in bit_tables and self.type is DataType.BOOL:
            raise ValueError("type 'bool' is for coils and discrete inputs; use 'bit' with 'bit: N'")
        if self.type is DataType.BIT and self.bit is None:
            raise ValueError("type 'bit' needs 'bit: 0..15'")
        if self.type is not DataType.BIT and self.bit is not None:
            raise ValueError("'bit' is only for type 'bit'")
        if self.type is DataType.STRING and self.length is None:
            raise ValueError("type 'string' needs 'length' (registers)")
        if self.access is not Access.READ and self.table in (Table.DISCRETE_INPUT, Table.INPUT):
            raise ValueError(f"a {self.table.value} point is read-only; access must be 'r'")
        if self.valid_min is not None and self.valid_max is not None and self.valid_min > self.valid_max:
            raise ValueError("valid_min is above valid_max")
        if self.address + self.register_count > 65536:
            raise ValueError("the point runs past register 65535")
        self._check_enum_zh()
        return self

    def _check_enum_zh(self) -> None:
        # Chinese labels translate the English ones; a code with no English label would be a
        # label the gateway never reports (a typo in the key, or 'enum' changed without it).
        if self.enum_zh is None:
            return
        if self.enum is None:
            raise ValueError("enum_zh needs an 'enum' (Chinese labels for its codes)")
        extra = sorted(set(self.enum_zh) - set(self.enum))
        if extra:
            codes = ", ".join(str(k) for k in extra)
            known = ", ".join(str(k) for k in sorted(self.enum))
            raise ValueError(f"enum_zh has code(s) {codes} that 'enum' does not have (enum codes: {known})")

    @property
    def register_count(self) -> int:
        """Registers (or bits, for coils and discrete inputs) the point occupies."""
        return register_count(self.type, self.length)


class PointPatch(_Model):
    """A device's override of one profile point: only the fields it names change."""

    id: Identifier
    name: str | None = None
    name_zh: str | None = None
    table: Table | None = None
    address: int | None = Field(default=None, ge=0, le=65535)
    type: DataType | None = None
    order: WordOrder | None = None
    bit: int | None = Field(default=None, ge=0, le=15)
    length: int | None = Field(default=None, ge=1, le=125)
    scale: float | None = None
    offset: float | None = None
    unit: str | None = None
    enum: dict[int, str] | None = None
    enum_zh: dict[int, str] | None = None
    access: Access | None = None
    poll_interval_s: float | None = Field(default=None, gt=0, le=86400)
    valid_min: float | None = None
    valid_max: float | None = None
    verify_write: bool | None = None
    zone: str | None = None
    report: ReportPolicy | None = None
    alarms: list[dict[str, Any]] | None = None
    enabled: bool = True


class ProfileDefaults(_Model):
    poll_interval_s: float = Field(default=5.0, gt=0, le=86400)
    max_registers_per_read: int = Field(default=125, ge=1, le=125)
    max_bits_per_read: int = Field(default=2000, ge=1, le=2000)
    max_gap: int = Field(default=16, ge=0, le=124, description="largest hole worth reading through")
    report: ReportPolicy = ReportPolicy()


class ProfileConfig(_Model):
    """What is known about one model of device: its register map and defaults."""

    id: Identifier
    name: str
    name_zh: str | None = None
    family: str
    manufacturer: str | None = None
    model: str | None = None
    source: str = Field(description="where the map comes from: a manual, a standard, or 'typical'")
    protocol: Literal["modbus"] = "modbus"
    defaults: ProfileDefaults = ProfileDefaults()
    points: list[PointConfig] = Field(min_length=1)


class ModbusTcpBus(_Model):
    id: Identifier
    type: Literal["modbus_tcp"]
    host: str
    port: int = Field(default=502, ge=1, le=65535)
    timeout_ms: int = Field(default=1000, ge=10, le=60000)
    retries: int = Field(default=1, ge=0, le=10)
    backoff_max_s: float = Field(default=60.0, gt=0, le=3600)


class ModbusRtuBus(_Model):
    id: Identifier
    type: Literal["modbus_rtu"]
    port: str = Field(description="serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=9600, ge=300, le=921600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    timeout_ms: int = Field(default=500, ge=10, le=60000)
    retries: int = Field(default=1, ge=0, le=10)
    backoff_max_s: float = Field(default=60.0, gt=0, le=3600)


BusConfig = Annotated[ModbusTcpBus | ModbusRtuBus, Field(discriminator="type")]


class DeviceConfig(_Model):
    id: Identifier
    name: str | None = None
    name_zh: str | None = None
    bus: str
    unit: int = Field(default=1, ge=0, le=255, description="Modbus unit (slave) id")
    host: str | None = Field(default=None, description="for modbus_tcp: this device's own host")
    port: int | None = Field(default=None, ge=1, le=65535, description="for modbus_tcp: own port")
    profile: str | None = None
    enabled: bool = True
    poll_interval_s: float | None = Field(default=None, gt=0, le=86400)
    timeout_ms: int | None = Field(default=None, ge=10, le=60000)
    retries: int | None = Field(default=None, ge=0, le=10)
    max_registers_per_read: int | None = Field(default=None, ge=1, le=125)
    max_bits_per_read: int | None = Field(default=None, ge=1, le=2000)
    max_gap: int | None = Field(default=None, ge=0, le=124)
    building: str | None = None
    floor: str | None = None
    zone: str | None = None
    location: str | None = None
    points: list[PointPatch] = Field(default_factory=list)


class SiteInfo(_Model):
    id: Identifier
    name: str | None = None
    name_zh: str | None = None
    timezone: str = "Asia/Shanghai"


class GatewayConfig(_Model):
    id: Identifier
    data_dir: str = Field(default="/var/lib/gatehouse", description="relative to the site file")
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class OutboxConfig(_Model):
    path: str | None = Field(default=None, description="default: DATA_DIR/outbox.db")
    quota_bytes: int = Field(default=2_000_000_000, ge=1_000_000)
    queue_size: int = Field(default=50_000, ge=100)
    commit_interval_ms: int = Field(default=100, ge=1, le=10_000)
    commit_batch: int = Field(default=5_000, ge=1)


class SiteConfig(_Model):
    """A whole site file."""

    site: SiteInfo
    gateway: GatewayConfig
    outbox: OutboxConfig = OutboxConfig()
    profile_dirs: list[str] = Field(default_factory=list, description="site-local profile folders")
    buses: list[BusConfig] = Field(default_factory=list)
    devices: list[DeviceConfig] = Field(default_factory=list)
    # Sections owned by later subsystems are kept as raw mappings here and validated by them.
    uplink: dict[str, Any] | None = None
    rules: dict[str, Any] | None = None
    dashboard: dict[str, Any] | None = None
    zones: list[Any] | None = Field(default=None, description="named zones; see docs/configuration.md")
