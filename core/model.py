"""The shared vocabulary every layer may import: point ids, samples, quality and the clock.

This module is deliberately tiny and dependency-free: drivers, rules, cloud_sync and the
simulators all import it, so nothing here may import the rest of the project.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

__all__ = [
    "Clock",
    "Event",
    "ManualClock",
    "Quality",
    "Reason",
    "Sample",
    "SystemClock",
    "Value",
    "make_point_id",
    "split_point_id",
]

Value: TypeAlias = bool | int | float | str | None


class Quality(enum.IntEnum):
    """OPC-style quality, ordered so that ``max()`` of several gives the worst."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class Reason(enum.StrEnum):
    """Why a value is not good. ``NONE`` only ever goes with ``Quality.GOOD``."""

    NONE = ""
    COMM_FAILURE = "comm_failure"
    DEVICE_ERROR = "device_error"
    STALE = "stale"
    OUT_OF_RANGE = "out_of_range"
    CONFIG_ERROR = "config_error"
    NOT_YET_READ = "not_yet_read"
    OUT_OF_SERVICE = "out_of_service"  # the device says the object is out of service (BACnet)


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one point, as it travels from the driver to the outbox.

    ``receipt_ts`` is the gateway's wall clock when the value arrived; ``source_ts`` is the
    device's own timestamp where the protocol carries one (BACnet, OPC UA, GB/T 26875 frames).
    Both are seconds since the Unix epoch.
    """

    point_id: str
    value: Value
    quality: Quality
    receipt_ts: float
    reason: Reason = Reason.NONE
    source_ts: float | None = None

    @property
    def good(self) -> bool:
        return self.quality is Quality.GOOD


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, for the outbox's event lane (never evicted for telemetry).

    ``kind`` is dotted, e.g. ``device.offline``, ``alarm.raised``, ``linkage.step``,
    ``outbox.gap``, ``system.alarm``. ``source`` is the point, device or subsystem it concerns.
    ``data`` holds only msgpack- and JSON-friendly values (str, int, float, bool, None, lists
    and str-keyed dicts of those).
    """

    kind: str
    source: str
    ts: float
    data: dict[str, Any]


def make_point_id(site: str, device: str, point: str) -> str:
    """The unique id of a point (R5.4): ``site/device/point``."""
    return f"{site}/{device}/{point}"


def split_point_id(point_id: str) -> tuple[str, str, str]:
    site, device, point = point_id.split("/", 2)
    return site, device, point


class Clock(Protocol):
    """Time is injected so that pure code (rules, report policy) can run on a simulated clock."""

    def wall(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; only differences mean anything."""
        ...


class SystemClock:
    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to: for tests and the rule test mode."""

    def __init__(self, start_wall: float = 1_767_225_600.0) -> None:
        self._wall = start_wall
        self._mono = 0.0

    def wall(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._wall += seconds
        self._mono += seconds
