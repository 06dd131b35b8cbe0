"""Configuration models of the Modbus protocol: points, profiles, devices and the four bus types.

``modbus_tcp``: Modbus TCP (MBAP), one connection per host:port shared by the unit ids behind it.
``modbus_rtu`` / ``modbus_ascii``: a serial line (RS-485/RS-232) with one scheduler per port.
``modbus_rtu_tcp``: RTU frames over a TCP socket, for serial device servers in transparent mode.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from drivers.config_base import (
    Access,
    BusBase,
    ConfigModel,
    DeviceBase,
    PointBase,
    ProfileBase,
    ProfileDefaultsBase,
    make_patch_model,
)
from drivers.modbus.types import DataType, Table, WordOrder, register_count

__all__ = [
    "ModbusAsciiBus",
    "ModbusDeviceConfig",
    "ModbusPointConfig",
    "ModbusPointPatch",
    "ModbusProfile",
    "ModbusProfileDefaults",
    "ModbusRtuBus",
    "ModbusRtuTcpBus",
    "ModbusTcpBus",
    "SerialLineSettings",
]


class ModbusPointConfig(PointBase):
    """One point of a Modbus device: where it lives, how to decode it, what it means."""

    table: Table = Table.HOLDING
    address: int = Field(ge=0, le=65535, description="0-based protocol address")
    type: DataType = DataType.UINT16
    order: WordOrder = WordOrder.ABCD
    bit: int | None = Field(default=None, ge=0, le=15, description="bit index for type 'bit'")
    length: int | None = Field(default=None, ge=1, le=125, description="registers, for type 'string'")
    # A fire or linkage input on a busy RS-485 line is read before telemetry.
    poll_first: bool = Field(default=False, description="poll before telemetry on a shared serial line")

    @model_validator(mode="after")
    def _shape(self) -> ModbusPointConfig:
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
        if self.address + self.register_count > 65536:
            raise ValueError("the point runs past register 65535")
        return self

    @property
    def register_count(self) -> int:
        """Registers (or bits, for coils and discrete inputs) the point occupies."""
        return register_count(self.type, self.length)


ModbusPointPatch: Any = make_patch_model(ModbusPointConfig)


class ModbusProfileDefaults(ProfileDefaultsBase):
    max_registers_per_read: int = Field(default=125, ge=1, le=125)
    max_bits_per_read: int = Field(default=2000, ge=1, le=2000)
    max_gap: int = Field(default=16, ge=0, le=124, description="largest hole worth reading through")


class ModbusProfile(ProfileBase):
    """A Modbus device model: its register map and defaults."""

    protocol: Literal["modbus"] = "modbus"
    defaults: ModbusProfileDefaults = ModbusProfileDefaults()
    points: list[ModbusPointConfig] = Field(min_length=1)


class ModbusDeviceConfig(DeviceBase):
    essential_keys: ClassVar[frozenset[str]] = DeviceBase.essential_keys | {"unit", "host", "port"}

    unit: int = Field(default=1, ge=0, le=255, description="Modbus unit (slave) id")
    host: str | None = Field(default=None, description="for modbus_tcp: this device's own host")
    port: int | None = Field(default=None, ge=1, le=65535, description="for modbus_tcp: own port")
    max_registers_per_read: int | None = Field(default=None, ge=1, le=125)
    max_bits_per_read: int | None = Field(default=None, ge=1, le=2000)
    max_gap: int | None = Field(default=None, ge=0, le=124)
    points: list[ModbusPointPatch] = Field(default_factory=list)


class ModbusTcpBus(BusBase):
    type: Literal["modbus_tcp"]
    host: str
    port: int = Field(default=502, ge=1, le=65535)


class SerialLineSettings(ConfigModel):
    """What a serial port needs besides its path. Defaults are the Modbus serial line's 8E1
    at 9,600 baud would be conforming; most field devices ship 8N1, hence the default."""

    port: str = Field(description="serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    baudrate: int = Field(default=9600, ge=300, le=921600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    rs485: bool = Field(
        default=False, description="let the kernel drive RTS for RS-485 direction (adapters that need it)"
    )
    # Extra silence after a broadcast (unit 0) write, which no device answers.
    turnaround_ms: int = Field(default=100, ge=0, le=5000, description="pause after a broadcast write")


class ModbusRtuBus(BusBase, SerialLineSettings):
    type: Literal["modbus_rtu"]
    timeout_ms: int = Field(default=500, ge=10, le=60000)


class ModbusAsciiBus(BusBase, SerialLineSettings):
    type: Literal["modbus_ascii"]
    bytesize: Literal[7, 8] = 7
    parity: Literal["N", "E", "O"] = "E"
    timeout_ms: int = Field(default=1000, ge=10, le=60000)


class ModbusRtuTcpBus(BusBase):
    """RTU frames (with CRC, no MBAP header) over TCP to a serial device server."""

    type: Literal["modbus_rtu_tcp"]
    host: str
    port: int = Field(default=4001, ge=1, le=65535)
    baudrate: int = Field(
        default=9600, ge=300, le=921600, description="the line's baud behind the server, for its silence"
    )
    timeout_ms: int = Field(default=1000, ge=10, le=60000)
    turnaround_ms: int = Field(default=100, ge=0, le=5000, description="pause after a broadcast write")
