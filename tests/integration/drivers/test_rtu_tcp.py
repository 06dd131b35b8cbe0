"""RTU over TCP (a serial device server in transparent mode) end to end on a real socket, and
the server dropping the connection: one port event each way, devices back online."""

from __future__ import annotations

import math

from drivers.modbus.config import ModbusRtuTcpBus
from drivers.modbus.serial_bus import open_serial_bus
from simulators.rs485_tcp import RtuOverTcpServer
from tests.integration.drivers.test_modbus_rtu import (
    Gateway,
    assert_one_request_at_a_time,
    context,
    scheduler_of,
    sim_devices,
    specs,
)
from tests.support import wait_until


async def test_rtu_over_tcp_polls_and_recovers_from_a_dropped_connection() -> None:
    sims = sim_devices([1, 2, 3])
    async with RtuOverTcpServer(sims, baudrate=38400) as server:
        bus = ModbusRtuTcpBus(
            id="tcp1", type="modbus_rtu_tcp", host="127.0.0.1", port=server.port, baudrate=38400
        )
        gateway = Gateway({})
        async with open_serial_bus(bus, specs(bus, [1, 2, 3], timeout_ms=300), context(gateway)) as drivers:
            gateway.drivers = dict(drivers)
            async with gateway.running(backoff_max_s=2.0):
                devices = list(gateway.drivers)
                await wait_until(
                    lambda: all(gateway.coordinators[d].online for d in devices), message="online"
                )
                want = sims[3].values()["total_m3"]
                assert any(
                    s.point_id == "site/dev3/total_m3" and math.isclose(float(s.value), float(want))  # type: ignore[arg-type]
                    for s in gateway.samples
                )
                server.drop_clients()  # the device server reboots
                await wait_until(
                    lambda: gateway.kinds("tcp1").count("bus.port_open") == 2, message="reconnected"
                )
                polls = {d: gateway.coordinators[d].stats.polls_ok for d in devices}
                await wait_until(
                    lambda: all(gateway.coordinators[d].stats.polls_ok > polls[d] + 2 for d in devices),
                    timeout_s=20,
                    message="polling resumed",
                )
        # A device polled while the connection was down went offline once and came back once.
        for device in devices:
            assert gateway.kinds(device) in (
                ["device.online"],
                ["device.online", "device.offline", "device.online"],
            ), gateway.kinds(device)
        assert gateway.kinds("tcp1") == ["bus.port_open", "bus.port_lost", "bus.port_open"]
        assert server.connections == 2
        assert scheduler_of(gateway.drivers).stats.reopens == 1
        assert_one_request_at_a_time(server.line)
