"""Registers the ``gb26875`` bus type (GB/T 26875.3 transmission devices) with the driver
registry: its config models, its checks and how to open it.

One bus type with ``mode: server|client|serial``: the transport differs, the devices, points
and replies do not. Only configuration models are imported here; the link and pyserial load
when a bus opens.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import cast

from drivers.base import Driver
from drivers.config_base import BusBase
from drivers.gb26875.config import (
    Gb26875Bus,
    Gb26875DeviceConfig,
    Gb26875PointConfig,
    Gb26875Profile,
)
from drivers.registry import BusContext, BusDriver, DeviceSpec, Finding, Protocol_, register

__all__ = ["GB26875"]

GB26875 = Protocol_(name="gb26875", point_model=Gb26875PointConfig, profile_model=Gb26875Profile)


def _check_devices(devices: Sequence[DeviceSpec]) -> list[tuple[int, Finding]]:
    """Addresses: unique on each bus, and given for every device of a bus that has several
    (frames are told apart by their source address)."""
    out: list[tuple[int, Finding]] = []
    by_bus: dict[str, list[tuple[int, DeviceSpec]]] = {}
    for index, device in enumerate(devices):
        if device.config.enabled:
            by_bus.setdefault(device.bus.id, []).append((index, device))
    for bus_id, enabled in by_bus.items():
        taken: dict[bytes, str] = {}
        for index, device in enabled:
            address = cast("Gb26875DeviceConfig", device.config).address_bytes
            if address is None:
                if len(enabled) > 1:
                    message = (
                        f"bus '{bus_id}' has {len(enabled)} transmission devices: each needs its "
                        "'address' (the source address in its frames)"
                    )
                    out.append((index, Finding(("address",), message)))
                continue
            other = taken.get(address)
            if other is not None:
                text = f"address {address.hex()} is already device '{other}' on bus '{bus_id}'"
                out.append((index, Finding(("address",), text)))
            else:
                taken[address] = device.id
    return out


def _resource(bus: BusBase) -> tuple[str, str] | None:
    b = cast("Gb26875Bus", bus)
    if b.mode == "serial":
        return ("port", f"serial port {b.port}")
    if b.mode == "server" and b.port != 0:
        return ("port", f"tcp listen {b.host}:{b.port}")
    return None


@contextlib.asynccontextmanager
async def _open(
    bus: BusBase, devices: Sequence[DeviceSpec], ctx: BusContext
) -> AsyncIterator[Mapping[str, Driver]]:
    from drivers.gb26875.device import Gb26875Device  # noqa: PLC0415 - loaded when a bus opens
    from drivers.gb26875.mapping import Mapper  # noqa: PLC0415
    from drivers.gb26875.transport import Gb26875Link  # noqa: PLC0415

    b = cast("Gb26875Bus", bus)
    drivers: dict[str, Gb26875Device] = {}
    for device in devices:
        config = cast("Gb26875DeviceConfig", device.config)
        mapper = Mapper(
            cast("Sequence[Gb26875PointConfig]", device.points),
            utc_offset_s=b.utc_offset_h * 3600.0,
            test_bit=config.test_bit,
            reset_clears=config.reset_clears,
        )
        drivers[device.id] = Gb26875Device(
            device.id, config.address_bytes, mapper, clock_mono=ctx.clock.monotonic()
        )
    link = Gb26875Link(b, drivers, clock=ctx.clock, events=ctx.events)
    async with link.running():
        yield dict(drivers)


register(
    BusDriver(
        bus_type="gb26875",
        protocol=GB26875,
        bus_model=Gb26875Bus,
        device_model=Gb26875DeviceConfig,
        open_bus=_open,
        summary="GB/T 26875.3 transmission devices (fire panels): TCP server, TCP client or serial",
        resource=_resource,
        check_devices=_check_devices,
    )
)
