"""Build the running device set of a site: one link per endpoint, one driver and one
coordinator per device.

Devices that share an endpoint (the same host:port, e.g. a TCP-to-RTU bridge with several unit
ids) share one link, which lets one request through at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from drivers.modbus import ModbusDevice, ModbusTcpLink
from edge.config.models import ModbusTcpBus, ReportPolicy
from edge.config.site import ResolvedDevice, Site
from edge.coordinator import DeviceCoordinator, EventSink, SampleSink
from edge.model import Clock

__all__ = ["DeviceSet", "build_devices"]


@dataclass
class DeviceSet:
    coordinators: dict[str, DeviceCoordinator] = field(default_factory=dict)
    drivers: dict[str, ModbusDevice] = field(default_factory=dict)
    links: dict[tuple[str, int], ModbusTcpLink] = field(default_factory=dict)
    report_policies: dict[str, ReportPolicy] = field(default_factory=dict)
    # Devices present in the site file that are not polled, with the reason (e.g. RTU not built).
    skipped: dict[str, str] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def build_devices(
    site: Site, *, sink: SampleSink, events: EventSink, clock: Clock
) -> AsyncIterator[DeviceSet]:
    async with AsyncExitStack() as stack:
        ds = DeviceSet()
        for device in site.devices:
            if not device.config.enabled:
                ds.skipped[device.id] = "disabled"
                continue
            if not isinstance(device.bus, ModbusTcpBus):
                ds.skipped[device.id] = f"bus type {device.bus.type} has no driver yet"
                continue
            endpoint = device.endpoint
            assert isinstance(endpoint, tuple)
            link = ds.links.get(endpoint)
            if link is None:
                link = ModbusTcpLink(
                    endpoint[0],
                    endpoint[1],
                    timeout_ms=device.timeout_ms,
                    retries=device.retries,
                    name=f"{device.bus.id}@{endpoint[0]}:{endpoint[1]}",
                )
                await stack.enter_async_context(link)
                ds.links[endpoint] = link
            driver = _driver(device, link)
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
        yield ds


def _driver(device: ResolvedDevice, link: ModbusTcpLink) -> ModbusDevice:
    return ModbusDevice(
        device.id,
        device.config.unit,
        link,
        device.points,
        poll_interval_s=device.poll_interval_s,
        max_registers=device.max_registers_per_read,
        max_bits=device.max_bits_per_read,
        max_gap=device.max_gap,
    )
