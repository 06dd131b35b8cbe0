"""Registers the ``serial_line`` bus type (devices that print text lines or answer ASCII
commands) with the driver registry: its models, its checks and how to open it.

Only configuration models are imported here; the port (pyserial) is imported in ``open_bus``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import cast

from pydantic import ValidationError

from drivers.base import Driver
from drivers.config_base import BusBase
from drivers.registry import BusContext, BusDriver, DeviceSpec, Finding, Protocol_, register
from drivers.serial_line.config import (
    LineFormat,
    LineMode,
    SerialLineBus,
    SerialLineDeviceConfig,
    SerialLinePointConfig,
    SerialLineProfile,
    effective_format,
)

__all__ = ["SERIAL_LINE", "device_format", "serial_line_device"]

SERIAL_LINE = Protocol_(
    name="serial_line", point_model=SerialLinePointConfig, profile_model=SerialLineProfile
)


def device_format(device: DeviceSpec) -> LineFormat:
    """The device's line format: its profile's, with the device's own ``line`` changes.
    Raises pydantic's ``ValidationError`` when they do not make a whole."""
    config = cast("SerialLineDeviceConfig", device.config)
    profile = device.profile
    base = profile.line if isinstance(profile, SerialLineProfile) else None
    return effective_format(base, config.line)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _check_devices(devices: Sequence[DeviceSpec]) -> list[tuple[int, Finding]]:
    """Each device's line format holds together, its points' groups exist in the pattern, and
    two unsolicited devices on one port do not claim the same lines."""
    from drivers.serial_line.parser import LineParser

    out: list[tuple[int, Finding]] = []
    claimed: dict[tuple[str, str], str] = {}
    for index, device in enumerate(devices):
        config = cast("SerialLineDeviceConfig", device.config)
        try:
            line = device_format(device)
        except ValidationError as exc:
            out.append((index, Finding(("line",), f"line format: {_first_error(exc)}")))
            continue
        points = cast("Sequence[SerialLinePointConfig]", device.points)
        parser = LineParser(line, points, address=config.address)
        for key in parser.missing_groups():
            out.append(
                (
                    index,
                    Finding(
                        ("points",),
                        f"point '{key}' reads group '{_group_of(points, key)}', which the line pattern "
                        f"does not have (pattern: {line.pattern!r})",
                    ),
                )
            )
        if line.mode is LineMode.UNSOLICITED and config.enabled:
            bus = cast("SerialLineBus", device.bus)
            prefix = line.address_prefix(config.address) or ""
            other = claimed.get((bus.port, prefix))
            if other is not None:
                what = f"prefix {prefix!r}" if prefix else "no prefix"
                out.append(
                    (
                        index,
                        Finding(
                            ("address",),
                            f"device '{other}' on {bus.port} prints with {what} too: give each an "
                            "'address' (or line prefix) so their lines can be told apart",
                        ),
                    )
                )
            else:
                claimed[(bus.port, prefix)] = device.id
    return out


def _group_of(points: Sequence[SerialLinePointConfig], key: str) -> str:
    for point in points:
        if point.id == key:
            return point.group_name or key
    return key


def _resource(bus: BusBase) -> tuple[str, str] | None:
    return ("port", f"serial port {cast('SerialLineBus', bus).port}")


def serial_line_device(device: DeviceSpec, port: object) -> Driver:
    """The ``SerialLineDevice`` driver of one resolved device on an open ``SerialLinePort``."""
    from drivers.serial_line.device import SerialLineDevice
    from drivers.serial_line.parser import LineParser
    from drivers.serial_line.port import SerialLinePort

    config = cast("SerialLineDeviceConfig", device.config)
    bus = cast("SerialLineBus", device.bus)
    line = device_format(device)
    parser = LineParser(
        line,
        cast("Sequence[SerialLinePointConfig]", device.points),
        encoding=bus.encoding,
        address=config.address,
        name=device.id,
    )
    return SerialLineDevice(
        device.id,
        cast("SerialLinePort", port),
        parser,
        line,
        address=config.address,
        encoding=bus.encoding,
        poll_interval_s=device.poll_interval_s,
        timeout_ms=device.timeout_ms,
        retries=device.retries,
    )


@contextlib.asynccontextmanager
async def _open_bus(
    bus: BusBase, devices: Sequence[DeviceSpec], ctx: BusContext
) -> AsyncIterator[Mapping[str, Driver]]:
    from drivers.serial_line.port import SerialLinePort

    line = cast("SerialLineBus", bus)
    if not line.port.startswith("/"):
        # A relative path (a demo's or test's linked pty) is taken from the site file's folder.
        line = line.model_copy(update={"port": str(ctx.site_dir / line.port)})
    async with SerialLinePort(line, events=ctx.events, clock=ctx.clock) as port:
        yield {device.id: serial_line_device(device, port) for device in devices}


register(
    BusDriver(
        bus_type="serial_line",
        protocol=SERIAL_LINE,
        bus_model=SerialLineBus,
        device_model=SerialLineDeviceConfig,
        open_bus=_open_bus,
        summary="text lines on a serial port: ASCII command/answer or unsolicited (printer ports)",
        resource=_resource,
        check_devices=_check_devices,
    )
)
