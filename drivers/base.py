"""The one small protocol every driver implements, for polled and pushed sources alike.

A coordinator (``edge.coordinator``) owns one device. It asks the driver for its poll groups
once, then calls ``read`` for each group at the group's interval, and ``write`` for commands.
Drivers whose devices push (BACnet COV, OPC UA subscriptions, GB/T 26875.3 transmission
devices, serial panels that print events) return their readings from ``pushed()``; a polled
driver returns no poll groups or an empty ``pushed()`` as fits.

Drivers raise only ``core.errors`` types: ``TransportError`` (retry after a pause) or
``DeviceError`` (the device said no). A value the driver got but could not make sense of is
not an exception: it is a ``Reading`` with bad quality and a reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from core.model import Quality, Reason, Value

__all__ = ["Driver", "LinkState", "PollGroup", "PriorityWriter", "Reading", "raise_if_cancelling"]


@dataclass(frozen=True, slots=True)
class Reading:
    """A value of one point of the device, keyed by the point's local id."""

    key: str
    value: Value
    quality: Quality = Quality.GOOD
    reason: Reason = Reason.NONE
    source_ts: float | None = None


@dataclass(frozen=True, slots=True)
class LinkState:
    """Yielded by ``pushed()`` of a device that only pushes (a 26875 transmission device, a COV
    or subscription session): whether the device can be heard now. The coordinator turns a
    change into exactly one ``device.online``/``device.offline`` event, and offline marks every
    point bad (comm failure), as for a polled device that stops answering."""

    online: bool
    error: str = ""


class PollGroup(Protocol):
    """A set of points read together at one interval; otherwise opaque to the coordinator."""

    @property
    def interval_s(self) -> float: ...

    @property
    def keys(self) -> tuple[str, ...]: ...


class Driver(Protocol):
    @property
    def device_id(self) -> str: ...

    def poll_groups(self) -> Sequence[PollGroup]: ...

    async def read(self, group: PollGroup) -> list[Reading]:
        """Read one group. Raises ``TransportError`` or ``DeviceError``."""
        ...

    async def write(self, key: str, value: Value, *, verify: bool = True) -> Value | None:
        """Write one point; with ``verify`` read it back and return what the device holds."""
        ...

    def pushed(self) -> AsyncIterator[Reading | list[Reading] | LinkState] | None:
        """Readings the device sends on its own — one at a time, or a list that arrived together
        (one sink call for a subscription's burst) — and ``LinkState`` changes of a push-only
        device; or None for a purely polled device."""
        ...


@runtime_checkable
class PriorityWriter(Protocol):
    """A driver whose devices keep a priority array (BACnet commandable objects): a write may
    name its priority (1 highest .. ``priority_levels``) instead of the point's own. The
    attribute marks such a driver: every driver has ``write``, only these take ``priority``."""

    priority_levels: int

    async def write(
        self, key: str, value: Value, *, verify: bool = True, priority: int | None = None
    ) -> Value | None: ...


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that a library swallowed.

    On Python 3.11, ``asyncio.wait_for`` (used inside driver libraries) returns the result instead of
    raising when the cancel arrives just as the answer does. The task is then still marked as
    cancelling but runs on, and whatever waits for it to stop (a TaskGroup at shutdown or
    reload) waits for ever. Called after every library await in a driver, and once per loop
    turn by the coordinator.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
