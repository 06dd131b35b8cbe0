"""The driver registry: which bus types the gateway can poll, and how each is configured and built.

Each protocol package (``drivers/modbus``, ``drivers/gb26875``, ``drivers/serial_line``,
``drivers/bacnet``, ``drivers/opcua``) has a ``plugin`` module that calls :func:`register` for
every bus type it serves. ``drivers.catalog`` names the packages; nothing else in the gateway
names a protocol. The site loader takes its bus, device, point and profile models from here
(so ``gatehouse check`` rejects a bus type nobody registered, and the JSON Schema lists every
one), and ``edge.wiring`` asks the bus type's ``open_bus`` for the drivers of its devices.

A plugin module imports only its configuration models at module level: heavy libraries
(bacpypes3, asyncua, pyserial) are imported inside ``open_bus``, so ``gatehouse check`` stays
quick and a site without BACnet never loads bacpypes3.

Adding a protocol is the checklist in ``docs/architecture.md`` ("Adding a protocol").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from core.model import Clock, Event
from drivers.base import Driver
from drivers.config_base import (
    BusBase,
    ConfigModel,
    DeviceBase,
    PointBase,
    ProfileBase,
    ProfileDefaultsBase,
    ReportPolicy,
    make_patch_model,
)

__all__ = [
    "BusContext",
    "BusDriver",
    "DeviceSpec",
    "Finding",
    "Protocol_",
    "bus_driver",
    "bus_drivers",
    "protocol",
    "protocols",
    "register",
    "register_protocol",
]


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem a plugin finds: the location below the node it was asked about (a device:
    ``("unit",)``), the message, and whether it belongs at the key rather than its value (a key
    that should not be there at all)."""

    loc: tuple[str | int, ...]
    message: str
    at_key: bool = False


class DeviceSpec(Protocol):
    """A device as the loader resolved it (``edge.config.site.ResolvedDevice`` fits): its own
    config (the bus type's ``device_model``), its bus, its profile and effective points."""

    @property
    def id(self) -> str: ...
    @property
    def config(self) -> DeviceBase: ...
    @property
    def bus(self) -> BusBase: ...
    @property
    def profile(self) -> ProfileBase | None: ...
    @property
    def points(self) -> tuple[PointBase, ...]: ...
    @property
    def poll_interval_s(self) -> float: ...
    @property
    def timeout_ms(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def defaults(self) -> ProfileDefaultsBase: ...
    @property
    def report(self) -> ReportPolicy: ...


@dataclass(frozen=True, slots=True)
class BusContext:
    """What a bus may need from the gateway while it runs."""

    # Bus-level events (a serial port lost and reopened, a BBMD registration refused): one per
    # change, kind ``bus.<something>``, source the bus id.
    events: Callable[[Event], Awaitable[None]]
    clock: Clock
    site_dir: Path  # relative paths in the bus config (certificates) are taken from here
    data_dir: Path


# open_bus(bus, devices, ctx): an async context manager that opens the bus's links (one per
# physical port or endpoint) and yields a driver per device id; leaving it closes everything.
OpenBus = Callable[
    [BusBase, Sequence[DeviceSpec], BusContext], AbstractAsyncContextManager[Mapping[str, Driver]]
]


@dataclass(frozen=True, slots=True)
class Protocol_:  # noqa: N801 - ``Protocol`` is typing's
    """What a profile's ``protocol:`` key selects: how its points are written down."""

    name: str
    point_model: type[PointBase]
    profile_model: type[ProfileBase]
    # Pairs (i, j) of points that claim the same place on the device (two points on one
    # register), and the message for one of a pair: (field to point at, text). The loader
    # reports a pair in the profile, or at the device's patch that made it.
    conflicts: Callable[[Sequence[PointBase]], Iterable[tuple[int, int]]] | None = None
    conflict_message: Callable[[PointBase, PointBase], tuple[str, str]] | None = None
    # ``gatehouse discover <name> ...``: the dotted name of a module with ``main(argv) -> int``
    # that finds devices and writes a site-file fragment (imported only when asked for).
    discover: str | None = None
    patch_model: type[ConfigModel] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_model", make_patch_model(self.point_model))


@dataclass(frozen=True, slots=True)
class BusDriver:
    """One bus type: its models, its checks, and how to run it."""

    bus_type: str
    protocol: Protocol_
    bus_model: type[BusBase]
    device_model: type[DeviceBase]
    open_bus: OpenBus
    summary: str
    # The exclusive resource a bus holds, e.g. ``serial:/dev/ttyUSB0`` or ``udp:0.0.0.0:47808``,
    # and the field that names it: two buses that claim one are a config error, whatever their
    # types (a Modbus RTU bus and a serial-line bus cannot share a port).
    resource: Callable[[BusBase], tuple[str, str] | None] | None = None
    # Checks of the resolved devices of every bus of this type together (a unit id used twice
    # on one line, or on one host reached through two buses). Returns (index in the given
    # sequence, finding below that device).
    check_devices: Callable[[Sequence[DeviceSpec]], list[tuple[int, Finding]]] | None = None
    # Which of the bus's links a device uses (a Modbus TCP device's own host:port). Devices of
    # one bus on different links share nothing, so poll workers (``gateway.poll_workers``) may
    # run them in different processes; None: the whole bus is one link (one serial port).
    link_of: Callable[[DeviceSpec], str] | None = None


_BUSES: dict[str, BusDriver] = {}
_PROTOCOLS: dict[str, Protocol_] = {}


def register_protocol(spec: Protocol_) -> Protocol_:
    existing = _PROTOCOLS.get(spec.name)
    if existing is not None and existing is not spec:
        raise ValueError(f"protocol {spec.name!r} is registered twice")
    _PROTOCOLS[spec.name] = spec
    return spec


def register(driver: BusDriver) -> BusDriver:
    """Make ``driver.bus_type`` known to the loader, the schema and the wiring."""
    if driver.bus_type in _BUSES and _BUSES[driver.bus_type] is not driver:
        raise ValueError(f"bus type {driver.bus_type!r} is registered twice")
    if "type" not in driver.bus_model.model_fields:
        raise ValueError(f"bus model of {driver.bus_type!r} has no 'type' field")
    register_protocol(driver.protocol)
    _BUSES[driver.bus_type] = driver
    return driver


def _loaded() -> None:
    from drivers import catalog

    catalog.load()


def bus_driver(bus_type: str) -> BusDriver | None:
    _loaded()
    return _BUSES.get(bus_type)


def bus_drivers() -> dict[str, BusDriver]:
    """Every registered bus type, in registration order."""
    _loaded()
    return dict(_BUSES)


def protocol(name: str) -> Protocol_ | None:
    _loaded()
    return _PROTOCOLS.get(name)


def protocols() -> dict[str, Protocol_]:
    _loaded()
    return dict(_PROTOCOLS)
