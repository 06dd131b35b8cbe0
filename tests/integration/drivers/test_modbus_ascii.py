"""Modbus ASCII end to end on a real pty: ``ModbusDevice`` + ``DeviceCoordinator`` over the
serial scheduler, 7E1 as the ASCII bus defaults to, values and a write reaching the device."""

from __future__ import annotations

import math
from pathlib import Path

from drivers.modbus.config import ModbusAsciiBus
from drivers.modbus.serial_bus import open_serial_bus
from simulators.modbus_rtu import ModbusRtuServer
from tests.integration.drivers.test_modbus_rtu import (
    Gateway,
    assert_one_request_at_a_time,
    context,
    scheduler_of,
    sim_devices,
    specs,
)
from tests.support import wait_until


async def test_ascii_line_polls_and_writes_through_the_coordinator(tmp_path: Path) -> None:
    link = str(tmp_path / "ttyASCII")
    sims = sim_devices([5, 6])
    line = {"mode": "ascii", "baudrate": 19200, "bytesize": 7, "parity": "E"}
    async with ModbusRtuServer(sims, link_path=link, **line) as server:  # type: ignore[arg-type]
        bus = ModbusAsciiBus(id="ascii1", type="modbus_ascii", port=link, baudrate=19200)
        assert (bus.bytesize, bus.parity) == (7, "E")
        gateway = Gateway({})
        async with open_serial_bus(bus, specs(bus, [5, 6], timeout_ms=300), context(gateway)) as drivers:
            gateway.drivers = dict(drivers)
            async with gateway.running():
                await wait_until(
                    lambda: all(c.online for c in gateway.coordinators.values()), message="online"
                )
                for unit in (5, 6):
                    want = sims[unit].values()["total_m3"]
                    await wait_until(
                        lambda u=unit, w=want: any(  # type: ignore[misc]
                            s.point_id == f"site/dev{u}/total_m3" and math.isclose(float(s.value), float(w))  # type: ignore[arg-type]
                            for s in gateway.samples
                        ),
                        message=f"dev{unit} total_m3",
                    )
                readback = await gateway.coordinators["dev6"].write("valve_open", True)
                assert readback is True
                assert sims[6].values()["valve_open"] is True
        scheduler = scheduler_of(gateway.drivers)
        assert scheduler.stats.answers > 4 and scheduler.stats.timeouts == 0
        assert_one_request_at_a_time(server.line)
