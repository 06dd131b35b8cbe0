"""Bad CRCs, noise, partial frames, wrong-unit answers and late answers on a real pty: each
costs at most the request it hit, and the port keeps working."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.errors import DeviceTimeout
from drivers.modbus.config import ModbusRtuBus
from drivers.modbus.serial_bus import open_serial_bus
from drivers.modbus.types import Table
from simulators.modbus_rtu import ModbusRtuServer
from tests.integration.drivers.test_modbus_rtu import Gateway, context, scheduler_of, sim_devices, specs
from tests.support import wait_until


async def test_noise_bad_crc_partial_and_wrong_unit_never_wedge_the_port(tmp_path: Path) -> None:
    link = str(tmp_path / "ttyS0")
    sims = sim_devices([1, 2])
    async with ModbusRtuServer(sims, link_path=link, baudrate=19200) as server:
        bus = ModbusRtuBus(id="line1", type="modbus_rtu", port=link, baudrate=19200)
        async with open_serial_bus(bus, specs(bus, [1, 2], retries=1), context(Gateway({}))) as drivers:
            scheduler = scheduler_of(dict(drivers))
            await wait_until(lambda: scheduler.state == "open", message="open")
            want = sims[1].image.read(Table.HOLDING, 0, 4)
            faults = server.line.faults

            faults.garbage = 3  # noise before the answer: skipped, the answer is found
            for _ in range(3):
                assert await scheduler.read(1, Table.HOLDING, 0, 4) == want
            faults.wrong_unit = 1  # another unit's frame (good CRC): recognised, dropped, retried
            assert await scheduler.read(1, Table.HOLDING, 0, 4) == want
            assert scheduler.stats.foreign_frames >= 1
            faults.partial = 1  # half a frame, then silence: the retry gets the answer
            assert await scheduler.read(1, Table.HOLDING, 0, 4) == want
            faults.crc_burst = 2  # both attempts answered with a bad CRC: a timeout, counted
            with pytest.raises(DeviceTimeout):
                await scheduler.read(1, Table.HOLDING, 0, 4)
            assert scheduler.stats.crc_errors == 2
            # The port is not wedged: both units answer at once.
            assert await scheduler.read(1, Table.HOLDING, 0, 4) == want
            assert await scheduler.read(2, Table.HOLDING, 0, 4) == sims[2].image.read(Table.HOLDING, 0, 4)
            assert scheduler.state == "open"


async def test_a_late_answer_is_never_taken_for_the_next_one(tmp_path: Path) -> None:
    link = str(tmp_path / "ttyS0")
    sims = sim_devices([1, 2])
    async with ModbusRtuServer(sims, link_path=link, baudrate=19200) as server:
        bus = ModbusRtuBus(id="line1", type="modbus_rtu", port=link, baudrate=19200)
        async with open_serial_bus(bus, specs(bus, [1, 2], retries=0), context(Gateway({}))) as drivers:
            scheduler = scheduler_of(dict(drivers))
            await wait_until(lambda: scheduler.state == "open", message="open")
            sims[1].faults.inject("slow", {"delay_ms": 300})  # answers 200 ms after our timeout
            with pytest.raises(DeviceTimeout):
                await scheduler.read(1, Table.HOLDING, 0, 2)
            sims[1].faults.clear()
            # Another unit meanwhile: its own answer, not the late one.
            assert await scheduler.read(2, Table.HOLDING, 0, 2) == sims[2].image.read(Table.HOLDING, 0, 2)
            await wait_until(
                lambda: (
                    scheduler.transport.bytes_rx > 0
                    and server.line.frames[0].response_end is not None
                    and asyncio.get_running_loop().time() > server.line.frames[0].response_end + 0.05
                ),
                message="the late answer has arrived",
            )
            # Same unit, same function and size, another address: the late answer was flushed.
            assert await scheduler.read(1, Table.HOLDING, 2, 2) == sims[1].image.read(Table.HOLDING, 2, 2)
            assert scheduler.stats.flushed_bytes + scheduler.stats.foreign_frames > 0
