"""Configuration models of the GB/T 26875.3 protocol: the ``gb26875`` bus, its devices, points
and profiles.

A bus is one place transmission devices reach the gateway: a listening TCP port (``mode:
server``, the common case; several devices may connect to it, told apart by the source address
in their frames), a TCP connection the gateway opens (``mode: client``) or a serial port
(``mode: serial``). A device is one transmission device (用户信息传输装置), identified by its
6-byte source ``address``. Its points say which information objects they follow: a point is
a selector (system type/address, component type/address, each a number, a range ``1-64``, a
list, or absent for any) plus what to take from the matching objects (a status bit, a count,
an analog value, an operation). ``docs/gb26875.md`` is the installer's guide.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from drivers.config_base import (
    BusBase,
    DeviceBase,
    PointBase,
    ProfileBase,
    ProfileDefaultsBase,
    make_patch_model,
)
from drivers.gb26875.frame import TimeFormat
from drivers.gb26875.objects import StatusBit, UitdBit

__all__ = [
    "OBJECTS",
    "OPERATIONS",
    "STATUS_NAMES",
    "UITD_STATUS_NAMES",
    "AddrSpec",
    "Gb26875Bus",
    "Gb26875DeviceConfig",
    "Gb26875PointConfig",
    "Gb26875PointPatch",
    "Gb26875Profile",
    "parse_address",
    "parse_set",
]

# A selector value: a number, "1-64", "1-8,12,20-30", a list of those; None matches anything.
AddrSpec = int | str | list[int | str] | None

OBJECTS = ("system", "component", "analog", "operation", "uitd_status", "uitd_operation", "version")
# "test" is bit 0 clear (the standard's test mode); the others name a set bit.
STATUS_NAMES: dict[str, int] = {b.name.lower(): int(b) for b in StatusBit} | {"test": -1}
COMPONENT_STATUS_NAMES = {k: v for k, v in STATUS_NAMES.items() if v <= int(StatusBit.DELAY)}
UITD_STATUS_NAMES: dict[str, int] = {b.name.lower(): int(b) for b in UitdBit}
OPERATIONS = ("reset", "silence", "manual_alarm", "alarm_cleared", "self_test", "confirm", "test")
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_set(spec: AddrSpec, *, limit: int) -> tuple[tuple[int, int], ...] | None:
    """``spec`` as sorted inclusive ranges, or None for "any". Raises ``ValueError``."""
    if spec is None:
        return None
    items: list[int | str] = spec if isinstance(spec, list) else [spec]
    if not items:
        raise ValueError("an empty list matches nothing; leave the key out to match any")
    ranges: list[tuple[int, int]] = []
    for item in items:
        parts = [item] if isinstance(item, int) else str(item).split(",")
        for part in parts:
            if isinstance(part, int):
                lo = hi = part
            else:
                m = _RANGE.match(part)
                if m is None:
                    raise ValueError(f"{part!r} is not a number or a range like 1-64")
                lo = int(m.group(1))
                hi = int(m.group(2)) if m.group(2) is not None else lo
            if not 0 <= lo <= hi <= limit:
                raise ValueError(f"{lo}-{hi} is not a range within 0..{limit}")
            ranges.append((lo, hi))
    return tuple(sorted(ranges))


def parse_address(value: int | str) -> bytes:
    """A 6-byte address: a number (the little-endian value, as device tools show it) or 12 hex
    digits in wire order (``"2c312c320000"``, spaces or colons allowed). Raises ``ValueError``."""
    if isinstance(value, int):
        if not 0 <= value < 1 << 48:
            raise ValueError("an address is 6 bytes: 0..281474976710655")
        return value.to_bytes(6, "little")
    digits = re.sub(r"[\s:\-]", "", value)
    if not re.fullmatch(r"[0-9a-fA-F]{12}", digits):
        raise ValueError(f"{value!r}: write 12 hex digits in wire order (e.g. 2c312c320000) or a number")
    return bytes.fromhex(digits)


class Gb26875PointConfig(PointBase):
    """One point fed by information objects; see the module docstring and docs/gb26875.md."""

    object: Literal["system", "component", "analog", "operation", "uitd_status", "uitd_operation", "version"]
    sys_type: AddrSpec = Field(default=None, description="system type(s); absent: any")
    sys_addr: AddrSpec = Field(default=None, description="system address(es); absent: any")
    comp_type: AddrSpec = Field(default=None, description="component type(s); absent: any")
    comp_addr: AddrSpec = Field(default=None, description="component address(es), e.g. 1-64; absent: any")
    status: str | None = Field(default=None, description="status bit: fire, fault, supervisory, ...")
    count: bool = Field(default=False, description="component: how many match, not whether any does")
    analog_type: int | None = Field(default=None, ge=0, le=255, description="analog: type; absent: any")
    operation: str | None = Field(default=None, description="operation: reset, silence, ...")
    mode: Literal["count", "state"] = Field(
        default="count",
        description="operation: count arrivals, or (silence only) a state cleared by reset or a new fire",
    )

    @model_validator(mode="after")
    def _shape(self) -> Gb26875PointConfig:
        for name, limit in (
            ("sys_type", 255),
            ("sys_addr", 255),
            ("comp_type", 255),
            ("comp_addr", 0xFFFFFFFF),
        ):
            parse_set(getattr(self, name), limit=limit)
        obj = self.object
        if obj in ("uitd_status", "uitd_operation", "version", "system", "operation") and (
            self.comp_type is not None or self.comp_addr is not None
        ):
            raise ValueError(f"a {obj} point has no comp_type/comp_addr")
        if obj in ("uitd_status", "uitd_operation") and (
            self.sys_type is not None or self.sys_addr is not None
        ):
            raise ValueError(f"a {obj} point is about the transmission device: no sys_type/sys_addr")
        names = {
            "system": STATUS_NAMES,
            "component": COMPONENT_STATUS_NAMES,
            "uitd_status": UITD_STATUS_NAMES,
        }.get(obj)
        if names is not None:
            if self.status not in names:
                raise ValueError(f"a {obj} point needs 'status', one of: {', '.join(names)}")
        elif self.status is not None:
            raise ValueError(f"'status' is for system, component and uitd_status points, not {obj}")
        if obj in ("operation", "uitd_operation"):
            if self.operation not in OPERATIONS:
                raise ValueError(f"a {obj} point needs 'operation', one of: {', '.join(OPERATIONS)}")
            if self.mode == "state" and self.operation != "silence":
                raise ValueError("mode 'state' is for operation 'silence' (cleared by reset or a new fire)")
        elif self.operation is not None:
            raise ValueError("'operation' is for operation and uitd_operation points")
        if self.count and obj != "component":
            raise ValueError("'count' is for component points")
        if self.analog_type is not None and obj != "analog":
            raise ValueError("'analog_type' is for analog points")
        return self


Gb26875PointPatch: Any = make_patch_model(Gb26875PointConfig)


class Gb26875Profile(ProfileBase):
    """A transmission device's points and defaults (``protocol: gb26875``)."""

    protocol: Literal["gb26875"] = "gb26875"
    defaults: ProfileDefaultsBase = ProfileDefaultsBase()
    points: list[Gb26875PointConfig] = Field(min_length=1)


class Gb26875DeviceConfig(DeviceBase):
    """One transmission device. ``address`` may be left out only when it is alone on its bus."""

    essential_keys: ClassVar[frozenset[str]] = DeviceBase.essential_keys | {"address"}

    address: int | str | None = Field(
        default=None,
        description="source address: the number the device shows, or 12 hex digits in wire order",
    )
    test_bit: bool = Field(
        default=False,
        description="status bit 0 clear means test mode on this device (a fire in test is not a fire)",
    )
    reset_clears: bool = Field(
        default=True, description="a panel reset clears its components' states (the panel re-reports)"
    )
    points: list[Gb26875PointPatch] = Field(default_factory=list)

    @field_validator("address")
    @classmethod
    def _address(cls, value: int | str | None) -> int | str | None:
        if value is not None:
            parse_address(value)
        return value

    @property
    def address_bytes(self) -> bytes | None:
        return None if self.address is None else parse_address(self.address)


class Gb26875Bus(BusBase):
    """Where transmission devices reach the gateway, and how the gateway answers them."""

    type: Literal["gb26875"]
    mode: Literal["server", "client", "serial"] = "server"
    host: str = Field(default="0.0.0.0", description="server: address to listen on; client: device's host")  # noqa: S104
    port: int | str = Field(
        description="TCP port (server; 0 picks a free one), the device's port (client), or a serial path"
    )
    baudrate: int = Field(default=9600, ge=300, le=921600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    time_format: TimeFormat = Field(default=TimeFormat.BINARY, description="time tags: binary or bcd")
    utc_offset_h: float = Field(default=8.0, ge=-14, le=14, description="time zone of the devices' clocks")
    local_address: int | str | None = Field(
        default=None, description="the gateway's address in replies; absent: the address the device wrote to"
    )
    heartbeat_timeout_s: float = Field(
        default=120.0, gt=0, le=86400, description="offline when nothing arrives for this long"
    )
    reply: bool = Field(default=True, description="confirm/deny frames; false for a listen-only tap")
    time_sync_on_connect: bool = True
    time_sync_interval_s: float | None = Field(
        default=3600.0, gt=0, description="absent or null: never again"
    )
    time_sync_type: int = Field(
        default=90,
        ge=1,
        le=255,
        description="type flag of the clock-sync command (90 standard; 8 some devices)",
    )
    resend_timeout_ms: int = Field(default=5000, ge=100, le=60000, description="wait for a confirm of a sync")

    @model_validator(mode="after")
    def _shape(self) -> Gb26875Bus:
        if self.mode == "serial":
            if not isinstance(self.port, str) or self.port.isdigit():
                raise ValueError("mode serial needs 'port' as a serial device path, e.g. /dev/ttyUSB0")
        elif not isinstance(self.port, int) or not (0 if self.mode == "server" else 1) <= self.port <= 65535:
            raise ValueError(f"mode {self.mode} needs 'port' as a TCP port number 1..65535")
        if self.mode == "client" and self.host in ("0.0.0.0", "::", ""):  # noqa: S104
            raise ValueError("mode client needs 'host': the transmission device's address")
        if self.local_address is not None:
            parse_address(self.local_address)
        return self
