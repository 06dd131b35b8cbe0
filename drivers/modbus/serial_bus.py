"""``open_serial_bus``: what the ``modbus_rtu``, ``modbus_ascii`` and ``modbus_rtu_tcp`` bus types
open (``drivers.modbus.plugin``). One bus is one physical port (or one serial device server's
TCP endpoint), so it gets exactly one ``SerialScheduler`` (``drivers.modbus.serial_scheduler``),
shared as the ``ModbusLink`` of every device on it.

Per unit the scheduler gets the device's ``timeout_ms`` and ``retries``, and the address ranges
of its ``poll_first: true`` points, so that a block holding one is read before telemetry.
Health views reach the port's counters as ``driver.link.stats`` (``PortStats.as_dict()``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import cast

from drivers.base import Driver
from drivers.config_base import BusBase
from drivers.modbus.driver_factory import modbus_device
from drivers.modbus.serial_port import ByteTransport, SerialPortTransport, TcpStreamTransport
from drivers.modbus.serial_scheduler import ASCII, RTU, LineTiming, SerialScheduler, UnitPolicy
from drivers.modbus.types import Table
from drivers.registry import BusContext, DeviceSpec

__all__ = ["build_scheduler", "open_serial_bus", "unit_policies"]


def unit_policies(devices: Sequence[DeviceSpec]) -> dict[int, UnitPolicy]:
    policies: dict[int, UnitPolicy] = {}
    for device in devices:
        ranges: list[tuple[Table, int, int]] = []
        for point in device.points:
            if getattr(point, "poll_first", False) and str(point.access) != "w":
                table = cast("Table", point.table)  # type: ignore[attr-defined]
                start = int(point.address)  # type: ignore[attr-defined]
                ranges.append((table, start, start + int(point.register_count)))  # type: ignore[attr-defined]
        unit = int(device.config.unit)  # type: ignore[attr-defined]
        policies[unit] = UnitPolicy(device.timeout_ms / 1000.0, device.retries, tuple(ranges))
    return policies


def build_scheduler(bus: BusBase, devices: Sequence[DeviceSpec], ctx: BusContext) -> SerialScheduler:
    """The scheduler of one ``modbus_rtu`` / ``modbus_ascii`` / ``modbus_rtu_tcp`` bus."""
    from drivers.modbus.config import ModbusAsciiBus, ModbusRtuBus, ModbusRtuTcpBus

    transport: ByteTransport
    if isinstance(bus, ModbusRtuTcpBus):
        transport = TcpStreamTransport(bus.host, bus.port)
        framing = RTU
        timing = LineTiming.of(bus.baudrate, parity="E")  # 11-bit characters, as the spec counts
    elif isinstance(bus, ModbusRtuBus | ModbusAsciiBus):
        # A relative path (a demo's or test's linked pty) is taken from the site file's folder.
        path = bus.port if bus.port.startswith("/") else str(ctx.site_dir / bus.port)
        transport = SerialPortTransport(
            path,
            baudrate=bus.baudrate,
            parity=bus.parity,
            stopbits=bus.stopbits,
            bytesize=bus.bytesize,
            rs485=bus.rs485,
        )
        framing = ASCII if isinstance(bus, ModbusAsciiBus) else RTU
        timing = LineTiming.of(bus.baudrate, bytesize=bus.bytesize, parity=bus.parity, stopbits=bus.stopbits)
    else:
        raise TypeError(f"bus {bus.id!r} of type {bus.type!r} is not a serial Modbus bus")
    return SerialScheduler(
        transport,
        framing,
        timing,
        bus_id=bus.id,
        events=ctx.events,
        wall=ctx.clock.wall,
        policies=unit_policies(devices),
        default_policy=UnitPolicy(bus.timeout_ms / 1000.0, bus.retries),
        turnaround_s=bus.turnaround_ms / 1000.0,
        reopen_max_s=bus.backoff_max_s,
    )


@contextlib.asynccontextmanager
async def open_serial_bus(
    bus: BusBase, devices: Sequence[DeviceSpec], ctx: BusContext
) -> AsyncIterator[Mapping[str, Driver]]:
    """Open the bus's one scheduler and yield a ``ModbusDevice`` per device on it."""
    scheduler = build_scheduler(bus, devices, ctx)
    await scheduler.start()
    try:
        yield {device.id: modbus_device(device, scheduler) for device in devices}
    finally:
        await scheduler.aclose()
