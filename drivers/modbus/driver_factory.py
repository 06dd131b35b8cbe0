"""Build the ``ModbusDevice`` driver of one resolved device, with its effective read sizes.

Shared by the TCP opener (``drivers.modbus.plugin``) and the serial scheduler's bus
(``drivers.modbus.serial_bus``); it lives on its own so neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from drivers.base import Driver
from drivers.modbus.config import ModbusDeviceConfig, ModbusPointConfig, ModbusProfileDefaults
from drivers.registry import DeviceSpec

__all__ = ["modbus_device", "read_limits"]


def read_limits(device: DeviceSpec) -> dict[str, int]:
    """Effective read sizes of a device: its own setting, else its profile's default."""
    config = cast("ModbusDeviceConfig", device.config)
    defaults = device.defaults
    if not isinstance(defaults, ModbusProfileDefaults):
        defaults = ModbusProfileDefaults()
    return {
        "max_registers_per_read": config.max_registers_per_read or defaults.max_registers_per_read,
        "max_bits_per_read": config.max_bits_per_read or defaults.max_bits_per_read,
        "max_gap": defaults.max_gap if config.max_gap is None else config.max_gap,
    }


def modbus_device(device: DeviceSpec, link: object) -> Driver:
    """The ``ModbusDevice`` driver of one resolved device on ``link``."""
    from drivers.modbus.device import ModbusDevice, ModbusLink

    config = cast("ModbusDeviceConfig", device.config)
    limits = read_limits(device)
    return ModbusDevice(
        device.id,
        config.unit,
        cast("ModbusLink", link),
        cast("Sequence[ModbusPointConfig]", device.points),
        poll_interval_s=device.poll_interval_s,
        max_registers=limits["max_registers_per_read"],
        max_bits=limits["max_bits_per_read"],
        max_gap=limits["max_gap"],
    )
