"""Configuration models of BACnet/IP: the ``bacnet_ip`` bus (the gateway's own UDP endpoint,
optional foreign-device registration with a BBMD, APDU timeout and retries), the device (its
device instance, optional address, COV mode) and the point (object type and instance, the
property, COV, write priority, value type and the engineering units the profile expects).
"""

from __future__ import annotations

import builtins
import enum
import ipaddress
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from drivers.bacnet.objects import object_type_name, property_name
from drivers.config_base import (
    BusBase,
    ConfigModel,
    DeviceBase,
    PointBase,
    ProfileBase,
    ProfileDefaultsBase,
    make_patch_model,
)

__all__ = [
    "BacnetBus",
    "BacnetDeviceConfig",
    "BacnetPointConfig",
    "BacnetPointPatch",
    "BacnetProfile",
    "BbmdRegistration",
    "CovMode",
    "ValueType",
    "parse_host_port",
]

MAX_INSTANCE = 4194302  # 4194303 is the wildcard instance (clause 12.11.1)


class CovMode(enum.StrEnum):
    CONFIRMED = "confirmed"
    UNCONFIRMED = "unconfirmed"
    OFF = "off"


class ValueType(enum.StrEnum):
    BOOL = "bool"
    FLOAT = "float"
    INT = "int"
    ENUM = "enum"


def parse_host_port(text: str, default_port: int = 47808) -> tuple[str, int]:
    """``"192.168.1.20:47809"`` → ``("192.168.1.20", 47809)``; the port defaults to 47808."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), str(default_port)
    try:
        ipaddress.IPv4Address(host)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an IPv4 address with an optional :port") from exc
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port is not 1..65535")
    return host, int(port)


class BbmdRegistration(ConfigModel):
    """Register as a foreign device with a BBMD (BACnet/IP broadcast management device)."""

    address: str = Field(description="the BBMD, ip[:port]")
    ttl_s: int = Field(default=300, ge=30, le=65535, description="time-to-live asked for")
    reregister_s: float | None = Field(
        default=None, gt=0, description="re-register this often (default: ttl_s / 2)"
    )

    @field_validator("address")
    @classmethod
    def _address_shape(cls, value: str) -> str:
        parse_host_port(value)
        return value


class BacnetBus(BusBase):
    """The gateway's own BACnet/IP endpoint: one UDP socket and one bacpypes3 application."""

    type: Literal["bacnet_ip"]
    address: str = Field(
        default="0.0.0.0",
        description="local IPv4 address, optionally with /prefix for the broadcast address",
    )
    port: int = Field(default=47808, ge=0, le=65535, description="local UDP port (0: any free one)")
    device_instance: int = Field(
        default=4194000, ge=0, le=MAX_INSTANCE, description="the gateway's own device instance"
    )
    timeout_ms: int = Field(default=1000, ge=50, le=60000, description="APDU timeout per attempt")
    retries: int = Field(default=1, ge=0, le=10, description="APDU retries after the first attempt")
    max_apdu: Literal[206, 480, 1024, 1476] = Field(default=1476, description="largest APDU accepted")
    requests_in_flight: int = Field(default=4, ge=1, le=64, description="per device at once")
    who_is_timeout_ms: int = Field(default=3000, ge=100, le=60000)
    bbmd: BbmdRegistration | None = None

    @field_validator("address")
    @classmethod
    def _address_shape(cls, value: str) -> str:
        host, _, prefix = value.partition("/")
        try:
            ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise ValueError("address is an IPv4 address, optionally /prefix (e.g. 192.168.1.5/24)") from exc
        if prefix and (not prefix.isdigit() or not 0 <= int(prefix) <= 32):
            raise ValueError("the /prefix is 0..32")
        return value

    @property
    def host(self) -> str:
        return self.address.partition("/")[0]


class BacnetPointConfig(PointBase):
    """One property of one object of a BACnet device (present-value unless told otherwise)."""

    object_type: str = Field(description="analog-input, binary-output, ... or the type number")
    instance: int = Field(ge=0, le=4194303)
    property: str = Field(default="present-value", description="property name or number")
    array_index: int | None = Field(default=None, ge=0)
    cov: bool = Field(default=False, description="subscribe to changes instead of polling")
    priority: int = Field(default=8, ge=1, le=16, description="write priority (8: manual operator)")
    type: ValueType | None = Field(default=None, description="default from the object type")
    units: str | None = Field(
        default=None, description="expected engineering units (BACnet name, e.g. degrees-celsius)"
    )

    @field_validator("object_type", mode="before")
    @classmethod
    def _object_type(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("object_type is a name like analog-input or a number")  # noqa: TRY004 - pydantic
        return object_type_name(value)

    @field_validator("property", mode="before")
    @classmethod
    def _property(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("property is a name like present-value or a number")  # noqa: TRY004 - pydantic
        return property_name(value)

    @field_validator("units", mode="before")
    @classmethod
    def _units(cls, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value.strip():
            raise ValueError("units is a BACnet engineering-units name (degrees-celsius) or number")
        return property_name(value)  # same spelling rules as a property name

    @model_validator(mode="after")
    def _shape(self) -> BacnetPointConfig:
        if self.object_type == "device":
            raise ValueError("a point reads an object of the device, not the device object")
        if self.cov and self.property != "present-value":
            raise ValueError("cov: true is for present-value points (other properties are polled)")
        vtype = self.value_type
        if vtype in (ValueType.BOOL, ValueType.ENUM) and (self.scale != 1 or self.offset != 0):
            raise ValueError(f"scale/offset do not apply to type '{vtype.value}'")
        return self

    @builtins.property
    def value_type(self) -> ValueType:
        from drivers.bacnet.objects import default_value_type

        if self.type is not None:
            return self.type
        if self.property != "present-value":
            return ValueType.FLOAT if self.property == "cov-increment" else ValueType.INT
        return ValueType(default_value_type(self.object_type))

    @builtins.property
    def address(self) -> str:
        """Where the point lives, for messages and conflict checks."""
        index = "" if self.array_index is None else f"[{self.array_index}]"
        return f"{self.object_type},{self.instance}/{self.property}{index}"


BacnetPointPatch: Any = make_patch_model(BacnetPointConfig)


class BacnetProfileDefaults(ProfileDefaultsBase):
    pass


class BacnetProfile(ProfileBase):
    """A BACnet device model: its objects and what they mean."""

    protocol: Literal["bacnet"] = "bacnet"
    defaults: BacnetProfileDefaults = BacnetProfileDefaults()
    points: list[BacnetPointConfig] = Field(min_length=1)


class BacnetDeviceConfig(DeviceBase):
    """One BACnet device, by its device instance; its address is found by who-is when absent."""

    essential_keys: ClassVar[frozenset[str]] = DeviceBase.essential_keys | {"instance", "address"}

    instance: int = Field(ge=0, le=MAX_INSTANCE, description="device object instance")
    address: str | None = Field(default=None, description="ip[:port]; found by who-is when absent")
    cov: CovMode = Field(default=CovMode.CONFIRMED, description="how cov: true points are notified")
    cov_lifetime_s: int = Field(default=300, ge=2, le=86400, description="subscription lifetime")
    points: list[BacnetPointPatch] = Field(default_factory=list)

    @field_validator("address")
    @classmethod
    def _address_shape(cls, value: str | None) -> str | None:
        if value is not None:
            parse_host_port(value)
        return value
