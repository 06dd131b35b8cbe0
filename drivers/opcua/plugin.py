"""Registers the ``opcua`` bus type (one OPC UA server endpoint) with the driver registry.

Only configuration models are imported here; asyncua is imported inside ``open_bus`` so that
``gatehouse check`` stays quick and a site without OPC UA never loads it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import cast

from drivers.base import Driver
from drivers.config_base import BusBase, PointBase
from drivers.opcua.config import (
    OpcUaBus,
    OpcUaDeviceConfig,
    OpcUaPointConfig,
    OpcUaProfile,
    parse_browse_path,
)
from drivers.registry import BusContext, BusDriver, DeviceSpec, Finding, Protocol_, register

__all__ = ["OPCUA", "find_duplicates", "open_opcua_bus"]


def find_duplicates(points: Sequence[PointBase]) -> Iterable[tuple[int, int]]:
    """Pairs of points that name the same node (the same NodeId or the same browse path)."""
    seen: dict[str, int] = {}
    for j, point in enumerate(cast("Sequence[OpcUaPointConfig]", points)):
        key = point.address
        if key in seen:
            yield (seen[key], j)
        else:
            seen[key] = j


def duplicate_message(point: PointBase, other: PointBase) -> tuple[str, str]:
    p = cast("OpcUaPointConfig", point)
    field = "node_id" if p.node_id is not None else "browse_path"
    return field, f"point '{p.id}' names the same node as '{other.id}' ({getattr(p, field)})"


OPCUA = Protocol_(
    name="opcua",
    point_model=OpcUaPointConfig,
    profile_model=OpcUaProfile,
    conflicts=find_duplicates,
    conflict_message=duplicate_message,
    discover="drivers.opcua.discover",
)


def _check_devices(devices: Sequence[DeviceSpec]) -> list[tuple[int, Finding]]:
    """A browse path whose first segment has no namespace to take (no 'N:', no 'namespace',
    no root)."""
    out: list[tuple[int, Finding]] = []
    for index, device in enumerate(devices):
        config = cast("OpcUaDeviceConfig", device.config)
        if config.namespace is not None:
            continue
        if config.root is not None:
            first_ns = parse_browse_path(config.root)[0][0]
            if first_ns is None:
                message = "the root's first segment needs 'N:', or the device a 'namespace'"
                out.append((index, Finding(("root",), message)))
            continue
        for point in cast("Sequence[OpcUaPointConfig]", device.points):
            if point.browse_path is not None and parse_browse_path(point.browse_path)[0][0] is None:
                message = (
                    f"point '{point.id}' has browse path {point.browse_path!r} without 'N:': "
                    "give the device a 'namespace' (URI) or a 'root'"
                )
                out.append((index, Finding(("points",), message)))
                break
    return out


@contextlib.asynccontextmanager
async def open_opcua_bus(
    bus: BusBase, devices: Sequence[DeviceSpec], ctx: BusContext
) -> AsyncIterator[Mapping[str, Driver]]:
    """One ``OpcUaLink`` (session) for the bus's endpoint, one ``OpcUaDevice`` per device."""
    from drivers.opcua.device import OpcUaDevice, plan_items
    from drivers.opcua.session import OpcUaLink

    config = cast("OpcUaBus", bus)
    drivers: dict[str, OpcUaDevice] = {}
    for spec in devices:
        device = OpcUaDevice(spec.id, cast("OpcUaDeviceConfig", spec.config))
        drivers[spec.id] = device
    link = OpcUaLink(
        config, list(drivers.values()), site_dir=ctx.site_dir, events=ctx.events, wall=ctx.clock.wall
    )
    for spec in devices:
        device = drivers[spec.id]
        points = cast("Sequence[OpcUaPointConfig]", spec.points)
        device.attach(
            link, plan_items(device, points, poll_interval_s=spec.poll_interval_s, report=spec.report)
        )
    async with link:
        yield cast("Mapping[str, Driver]", drivers)


register(
    BusDriver(
        bus_type="opcua",
        protocol=OPCUA,
        bus_model=OpcUaBus,
        device_model=OpcUaDeviceConfig,
        open_bus=open_opcua_bus,
        summary="OPC UA client: one server endpoint, secure channel and session; subscriptions and polls",
        check_devices=_check_devices,
    )
)
