"""Modbus RTU over a pseudo-terminal: pymodbus' serial client opens the pty as a serial port."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusException

from core.model import Quality
from drivers.modbus import ModbusDevice
from drivers.modbus.types import Table
from simulators.profile import PROFILE_DIR, load_profile_file
from simulators.runner import SimulationRunner
from simulators.site_plan import PlannedDevice
from tests.integration.simulators.gateway import profile_points


class SerialLink:
    """The few link calls ``ModbusDevice`` makes, over pymodbus' RTU client (test helper)."""

    def __init__(self, client: AsyncModbusSerialClient) -> None:
        self.client = client

    async def read(self, unit: int, table: Table, start: int, count: int) -> list[int]:
        call = {
            Table.COIL: self.client.read_coils,
            Table.DISCRETE_INPUT: self.client.read_discrete_inputs,
            Table.HOLDING: self.client.read_holding_registers,
            Table.INPUT: self.client.read_input_registers,
        }[table]
        response = await call(start, count=count, device_id=unit)
        assert not response.isError(), response
        if table.is_bits:
            return [int(b) for b in response.bits[:count]]
        return list(response.registers)

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        await self.client.write_coil(address, value, device_id=unit)

    async def write_register(self, unit: int, address: int, value: int) -> None:
        await self.client.write_register(address, value, device_id=unit)

    async def write_registers(self, unit: int, address: int, values: Sequence[int]) -> None:
        await self.client.write_registers(address, list(values), device_id=unit)


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[tuple[SimulationRunner, str]]:
    link_path = str(tmp_path / "ttyRS485")
    plans = [
        PlannedDevice("tank", load_profile_file(PROFILE_DIR / "secondary-water-tank.yaml"), link_path, 1),
        PlannedDevice("meter", load_profile_file(PROFILE_DIR / "eastron-sdm630.yaml"), link_path, 2),
    ]
    async with SimulationRunner(plans, tick_s=None) as sim:
        yield sim, link_path


async def test_two_units_on_one_serial_line(line: tuple[SimulationRunner, str]) -> None:
    sim, link_path = line
    assert await asyncio.to_thread(Path(link_path).is_symlink)  # the site file's path leads to the pty
    sim.tick(30.0)
    client = AsyncModbusSerialClient(link_path, baudrate=9600, timeout=2, retries=1)
    assert await client.connect()
    try:
        for unit, device_id, profile_id in (
            (1, "tank", "secondary-water-tank"),
            (2, "meter", "eastron-sdm630"),
        ):
            points = profile_points(profile_id)
            device = ModbusDevice(device_id, unit=unit, link=SerialLink(client), points=points)
            want = sim.device(device_id).values()
            scales = {p.id: p.scale for p in points}
            for group in device.poll_groups():
                for reading in await device.read(group):
                    assert reading.quality is Quality.GOOD
                    expected = want[reading.key]
                    if isinstance(expected, bool):
                        assert reading.value is expected
                    else:
                        assert math.isclose(
                            float(reading.value),  # type: ignore[arg-type]
                            float(expected),
                            rel_tol=1e-6,
                            abs_tol=abs(scales[reading.key]) / 2 + 1e-9,
                        ), reading
    finally:
        client.close()


async def test_rtu_faults_garbage_and_silence(line: tuple[SimulationRunner, str]) -> None:
    sim, link_path = line
    client = AsyncModbusSerialClient(link_path, baudrate=9600, timeout=0.3, retries=0)
    assert await client.connect()
    try:
        ok = await client.read_holding_registers(4, count=1, device_id=1)
        assert not ok.isError()
        sim.device("tank").faults.inject("garbage", {})
        with pytest.raises(ModbusException):
            await client.read_holding_registers(4, count=1, device_id=1)
        sim.device("tank").faults.clear()
        sim.device("meter").faults.inject("comm_loss", {})
        with pytest.raises(ModbusException):
            await client.read_input_registers(0, count=2, device_id=2)
        sim.device("meter").faults.clear()
        # The line resynchronises: both units answer again.
        assert not (await client.read_holding_registers(4, count=1, device_id=1)).isError()
        assert not (await client.read_input_registers(0, count=2, device_id=2)).isError()
    finally:
        client.close()
