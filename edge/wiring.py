"""Build the running device set of a site: each bus opened by its registered driver, one
coordinator per device.

The bus type's ``open_bus`` (``drivers.registry``) opens the bus's links — one scheduler per
physical port or endpoint, so devices that share an RS-485 line or a TCP-to-RTU bridge take
turns on it — and hands back a driver per device. This module names no protocol: a bus type
that nobody registered never gets here, because ``gatehouse check`` rejects it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError, ConfigProblem
from core.model import Clock
from drivers.base import Driver
from drivers.config_base import ReportPolicy
from drivers.registry import BusContext, bus_driver
from edge.config.site import ResolvedDevice, Site
from edge.coordinator import DeviceCoordinator, EventSink, SampleSink

__all__ = ["DeviceSet", "build_devices"]


@dataclass
class DeviceSet:
    coordinators: dict[str, DeviceCoordinator] = field(default_factory=dict)
    drivers: dict[str, Driver] = field(default_factory=dict)
    report_policies: dict[str, ReportPolicy] = field(default_factory=dict)
    # Devices present in the site file that are not polled, with the reason (disabled).
    skipped: dict[str, str] = field(default_factory=dict)
    # The poll worker processes when gateway.poll_workers is set (edge.poll_workers.pool).
    workers: list[Any] = field(default_factory=list)


@contextlib.asynccontextmanager
async def build_devices(
    site: Site,
    *,
    sink: SampleSink,
    events: EventSink,
    clock: Clock,
    only: Collection[str] | None = None,
) -> AsyncIterator[DeviceSet]:
    """Open the site's buses for its devices (only the devices in ``only`` when given: a poll
    worker's share)."""
    ds = DeviceSet()
    by_bus: dict[str, list[ResolvedDevice]] = {}
    for device in site.devices:
        if only is not None and device.id not in only:
            continue
        if not device.config.enabled:
            ds.skipped[device.id] = "disabled"
            continue
        by_bus.setdefault(device.bus.id, []).append(device)
    ctx = BusContext(events=events, clock=clock, site_dir=site.path.parent, data_dir=site.data_dir)
    async with AsyncExitStack() as stack:
        for devices in by_bus.values():
            bus = devices[0].bus
            driver = bus_driver(bus.type)
            if driver is None:
                # The loader rejects such a site; a Site built by hand could still hold one.
                problem = ConfigProblem(str(site.path), 1, 1, "buses", f"no driver for bus type {bus.type!r}")
                raise ConfigError([problem])
            drivers: Mapping[str, Driver] = await stack.enter_async_context(
                driver.open_bus(bus, devices, ctx)
            )
            for device in devices:
                _add(ds, site, device, drivers[device.id], sink=sink, events=events, clock=clock)
        yield ds


def _add(
    ds: DeviceSet,
    site: Site,
    device: ResolvedDevice,
    driver: Driver,
    *,
    sink: SampleSink,
    events: EventSink,
    clock: Clock,
) -> None:
    point_ids = {p.id: site.point_id(device.id, p.id) for p in device.points}
    for point in device.points:
        ds.report_policies[point_ids[point.id]] = device.report_policy(point)
    ds.drivers[device.id] = driver
    ds.coordinators[device.id] = DeviceCoordinator(
        device_id=device.id,
        driver=driver,
        point_ids=point_ids,
        sink=sink,
        events=events,
        clock=clock,
        backoff_max_s=device.bus.backoff_max_s,
    )
