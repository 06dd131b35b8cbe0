"""Registers the Modbus bus types (``modbus_tcp``, ``modbus_rtu``, ``modbus_ascii``,
``modbus_rtu_tcp``) with the driver registry, with their checks and how to open them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import cast

from drivers.base import Driver
from drivers.config_base import Access, BusBase, PointBase
from drivers.modbus.config import (
    ModbusAsciiBus,
    ModbusDeviceConfig,
    ModbusPointConfig,
    ModbusProfile,
    ModbusRtuBus,
    ModbusRtuTcpBus,
    ModbusTcpBus,
)
from drivers.modbus.driver_factory import modbus_device, read_limits
from drivers.modbus.types import DataType, Table
from drivers.registry import BusContext, BusDriver, DeviceSpec, Finding, Protocol_, register

__all__ = ["MODBUS", "endpoint_of", "find_overlaps", "modbus_device", "read_limits"]


def find_overlaps(points: Sequence[PointBase]) -> Iterable[tuple[int, int]]:
    """Pairs ``(i, j)`` of points that claim the same register (or bit), ``j`` after ``i`` in
    address order. Bit points may share a register with each other, one bit each.

    A sweep over points sorted by address keeps only those still "open", so a normal map costs
    O(n log n) rather than comparing every pair.
    """
    pts = cast("Sequence[ModbusPointConfig]", points)
    by_table: dict[Table, list[int]] = {}
    for i, point in enumerate(pts):
        by_table.setdefault(point.table, []).append(i)
    for indices in by_table.values():
        indices.sort(key=lambda i: (pts[i].address, i))
        open_: list[int] = []
        for j in indices:
            start = pts[j].address
            open_ = [i for i in open_ if pts[i].address + pts[i].register_count > start]
            for i in open_:
                if not _compatible_bits(pts[i], pts[j]):
                    yield (i, j)
            open_.append(j)


def _compatible_bits(a: ModbusPointConfig, b: ModbusPointConfig) -> bool:
    return a.type is DataType.BIT and b.type is DataType.BIT and a.bit != b.bit


def overlap_message(point: PointBase, other: PointBase) -> tuple[str, str]:
    p = cast("ModbusPointConfig", point)
    last = p.address + p.register_count - 1
    span = f"{p.address}" if last == p.address else f"{p.address}..{last}"
    what = "coil" if p.table is Table.COIL else p.table.value.replace("_", " ")
    if p.type is DataType.BIT and cast("ModbusPointConfig", other).type is DataType.BIT:
        return "address", f"point '{p.id}' uses bit {p.bit} of {what} register {span}, as does '{other.id}'"
    return "address", f"point '{p.id}' ({what} {span}) overlaps point '{other.id}'"


MODBUS = Protocol_(
    name="modbus",
    point_model=ModbusPointConfig,
    profile_model=ModbusProfile,
    conflicts=find_overlaps,
    conflict_message=overlap_message,
)


def endpoint_of(device: DeviceSpec) -> tuple[str, int] | str:
    """What a device's requests travel over: (host, port) for TCP, the port path for serial."""
    bus = device.bus
    config = cast("ModbusDeviceConfig", device.config)
    if isinstance(bus, ModbusTcpBus):
        return (config.host or bus.host, config.port or bus.port)
    if isinstance(bus, ModbusRtuTcpBus):
        return (bus.host, bus.port)
    return cast("ModbusRtuBus", bus).port


def _endpoint_text(endpoint: tuple[str, int] | str) -> str:
    return f"{endpoint[0]}:{endpoint[1]}" if isinstance(endpoint, tuple) else endpoint


def _check_devices(devices: Sequence[DeviceSpec]) -> list[tuple[int, Finding]]:
    """Unit ids: the broadcast address polled, and one unit id twice on one endpoint; and
    ``host``/``port`` given to a device whose bus has no per-device endpoint."""
    out: list[tuple[int, Finding]] = []
    taken: dict[tuple[object, int], str] = {}
    for index, device in enumerate(devices):
        config = cast("ModbusDeviceConfig", device.config)
        bus = device.bus
        if bus.type != "modbus_tcp":
            for name in ("host", "port"):
                if getattr(config, name) is not None:
                    text = f"'{name}' is for devices on a modbus_tcp bus; bus '{bus.id}' is {bus.type}"
                    out.append((index, Finding((name,), text, at_key=True)))
        polled = any(p.access is not Access.WRITE for p in device.points)
        if config.unit == 0 and polled:
            message = "unit 0 is the broadcast address: a device there never answers a poll"
            if bus.type == "modbus_tcp":
                message += " (a TCP device that ignores the unit id works with 1 or 255)"
            out.append((index, Finding(("unit",), message)))
        if config.enabled:
            endpoint = endpoint_of(device)
            key = (endpoint, config.unit)
            other = taken.get(key)
            if other is not None:
                text = f"unit {config.unit} on {_endpoint_text(endpoint)} is already device '{other}'"
                out.append((index, Finding(("unit",), text)))
            else:
                taken[key] = device.id
    return out


def _serial_resource(bus: BusBase) -> tuple[str, str] | None:
    port = getattr(bus, "port", None)
    return ("port", f"serial port {port}") if isinstance(port, str) else None


@contextlib.asynccontextmanager
async def _open_tcp(
    bus: BusBase, devices: Sequence[DeviceSpec], ctx: BusContext
) -> AsyncIterator[Mapping[str, Driver]]:
    from drivers.modbus.tcp import ModbusTcpLink

    async with contextlib.AsyncExitStack() as stack:
        links: dict[object, ModbusTcpLink] = {}
        drivers: dict[str, Driver] = {}
        for device in devices:
            endpoint = endpoint_of(device)
            assert isinstance(endpoint, tuple)
            link = links.get(endpoint)
            if link is None:
                link = ModbusTcpLink(
                    endpoint[0],
                    endpoint[1],
                    timeout_ms=device.timeout_ms,
                    retries=device.retries,
                    name=f"{bus.id}@{endpoint[0]}:{endpoint[1]}",
                )
                await stack.enter_async_context(link)
                links[endpoint] = link
            drivers[device.id] = modbus_device(device, link)
        yield drivers


def _open_serial(
    bus: BusBase, devices: Sequence[DeviceSpec], ctx: BusContext
) -> contextlib.AbstractAsyncContextManager[Mapping[str, Driver]]:
    from drivers.modbus.serial_bus import open_serial_bus

    return open_serial_bus(bus, devices, ctx)


def _link_of(device: DeviceSpec) -> str:
    return _endpoint_text(endpoint_of(device))


def _register() -> None:
    common = {"protocol": MODBUS, "device_model": ModbusDeviceConfig, "check_devices": _check_devices}
    register(
        BusDriver(
            bus_type="modbus_tcp",
            bus_model=ModbusTcpBus,
            open_bus=_open_tcp,
            summary="Modbus TCP; devices behind one host:port share one connection",
            link_of=_link_of,
            **common,  # type: ignore[arg-type]
        )
    )
    for bus_type, model, summary in (
        ("modbus_rtu", ModbusRtuBus, "Modbus RTU on a serial line (RS-485/RS-232), one scheduler per port"),
        ("modbus_ascii", ModbusAsciiBus, "Modbus ASCII on a serial line, one scheduler per port"),
        ("modbus_rtu_tcp", ModbusRtuTcpBus, "Modbus RTU frames over TCP to a serial device server"),
    ):
        register(
            BusDriver(
                bus_type=bus_type,
                bus_model=model,
                open_bus=_open_serial,
                summary=summary,
                resource=_serial_resource,
                **common,  # type: ignore[arg-type]
            )
        )


_register()
