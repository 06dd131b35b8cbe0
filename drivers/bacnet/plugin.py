"""Registers the ``bacnet_ip`` bus type (one BACnet/IP UDP endpoint) with the driver registry.

Only configuration models are imported here; bacpypes3 is imported inside ``open_bus`` so
that ``gatehouse check`` stays quick and a site without BACnet never loads it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import cast

from drivers.bacnet.config import (
    BacnetBus,
    BacnetDeviceConfig,
    BacnetPointConfig,
    BacnetProfile,
    parse_host_port,
)
from drivers.base import Driver
from drivers.config_base import BusBase, PointBase
from drivers.registry import BusContext, BusDriver, DeviceSpec, Finding, Protocol_, register

__all__ = ["BACNET", "find_duplicates", "open_bacnet_bus"]


def find_duplicates(points: Sequence[PointBase]) -> Iterable[tuple[int, int]]:
    """Pairs of points that read the same property of the same object."""
    seen: dict[str, int] = {}
    for j, point in enumerate(cast("Sequence[BacnetPointConfig]", points)):
        if point.address in seen:
            yield (seen[point.address], j)
        else:
            seen[point.address] = j


def duplicate_message(point: PointBase, other: PointBase) -> tuple[str, str]:
    p = cast("BacnetPointConfig", point)
    return "instance", f"point '{p.id}' reads the same property as '{other.id}' ({p.address})"


BACNET = Protocol_(
    name="bacnet",
    point_model=BacnetPointConfig,
    profile_model=BacnetProfile,
    conflicts=find_duplicates,
    conflict_message=duplicate_message,
    discover="drivers.bacnet.discover",
)


def _resource(bus: BusBase) -> tuple[str, str] | None:
    config = cast("BacnetBus", bus)
    if config.port == 0:
        return None
    return f"udp:{config.host}:{config.port}", "port"


def _check_devices(devices: Sequence[DeviceSpec]) -> list[tuple[int, Finding]]:
    """A device instance twice (on any BACnet bus: instances are unique in a BACnet network),
    or two devices at one address."""
    out: list[tuple[int, Finding]] = []
    instances: dict[int, str] = {}
    addresses: dict[tuple[str, int], str] = {}
    for index, device in enumerate(devices):
        config = cast("BacnetDeviceConfig", device.config)
        if config.instance in instances:
            message = f"device instance {config.instance} is also device '{instances[config.instance]}'"
            out.append((index, Finding(("instance",), message)))
        else:
            instances[config.instance] = device.id
        if config.address is not None:
            where = parse_host_port(config.address)
            if where in addresses:
                message = f"address {config.address} is also device '{addresses[where]}'"
                out.append((index, Finding(("address",), message)))
            else:
                addresses[where] = device.id
    return out


@contextlib.asynccontextmanager
async def open_bacnet_bus(
    bus: BusBase, devices: Sequence[DeviceSpec], ctx: BusContext
) -> AsyncIterator[Mapping[str, Driver]]:
    """One ``BacnetLink`` (bacpypes3 application) for the bus, one ``BacnetDevice`` per device,
    and the link's COV subscriptions."""
    from drivers.bacnet.cov import CovManager
    from drivers.bacnet.device import BacnetDevice
    from drivers.bacnet.link import BacnetLink
    from drivers.bacnet.plan import plan_points

    config = cast("BacnetBus", bus)
    async with BacnetLink(config, events=ctx.events, wall=ctx.clock.wall) as link:
        cov = CovManager(link)
        drivers: dict[str, BacnetDevice] = {}
        for spec in devices:
            plans = plan_points(link, cast("Sequence[BacnetPointConfig]", spec.points), spec.report)
            device = BacnetDevice(
                spec.id,
                cast("BacnetDeviceConfig", spec.config),
                plans,
                link,
                poll_interval_s=spec.poll_interval_s,
            )
            cov.add(device, plans)
            drivers[spec.id] = device
        async with cov:
            yield cast("Mapping[str, Driver]", drivers)


register(
    BusDriver(
        bus_type="bacnet_ip",
        protocol=BACNET,
        bus_model=BacnetBus,
        device_model=BacnetDeviceConfig,
        open_bus=open_bacnet_bus,
        summary="BACnet/IP client: ReadPropertyMultiple, COV subscriptions, priority writes, who-is",
        resource=_resource,
        check_devices=_check_devices,
    )
)
