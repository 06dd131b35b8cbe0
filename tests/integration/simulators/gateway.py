"""The gateway side of the simulator tests: the real Modbus driver reading what a simulator serves."""

from __future__ import annotations

from collections.abc import Sequence

from drivers.base import Reading
from drivers.modbus import ModbusDevice, ModbusTcpLink
from drivers.modbus.config import ModbusPointConfig as PointConfig
from edge.config.loader import load_profile
from simulators.profile import PROFILE_DIR


def profile_points(profile_id: str) -> tuple[PointConfig, ...]:
    """The points as the gateway understands them (its own loader, not the simulator's reader)."""
    return tuple(load_profile(PROFILE_DIR / f"{profile_id}.yaml", expect_id=profile_id).points)


async def read_all(link: ModbusTcpLink, unit: int, points: Sequence[PointConfig]) -> dict[str, Reading]:
    device = ModbusDevice("under-test", unit=unit, link=link, points=points)
    readings: dict[str, Reading] = {}
    for group in device.poll_groups():
        for reading in await device.read(group):
            readings[reading.key] = reading
    return readings


def device(link: ModbusTcpLink, unit: int, points: Sequence[PointConfig]) -> ModbusDevice:
    return ModbusDevice("under-test", unit=unit, link=link, points=points)
