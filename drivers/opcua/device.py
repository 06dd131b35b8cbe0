"""The driver of one OPC UA device (a group of nodes on a server) and what the link needs to
know about each of its points.

Everything an OPC UA device reports arrives through ``pushed()``: subscribed values, the
results of the link's own batched polls, and ``LinkState`` when the session to the server is
lost or regained. The coordinator therefore gets no poll groups. Writes go through the link,
which owns the session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from core.errors import DeviceError
from core.model import Value
from drivers.base import LinkState, PollGroup, Reading
from drivers.config_base import ReportPolicy
from drivers.opcua.codec import Converter, deadband_raw
from drivers.opcua.config import OpcUaPointConfig, PointMode
from drivers.push_queue import PushQueue

if TYPE_CHECKING:
    from asyncua.ua import NodeId

    from drivers.opcua.config import OpcUaDeviceConfig

__all__ = ["Item", "OpcUaDevice", "Writer", "plan_items"]


class Writer(Protocol):
    async def write_item(self, item: Item, value: Value, *, verify: bool) -> Value | None: ...


@dataclass(slots=True, eq=False)
class Item:
    """One point as the link handles it. ``node`` is its NodeId in this session (None until
    resolved, or when resolution failed)."""

    device: OpcUaDevice
    point: OpcUaPointConfig
    convert: Converter
    mode: PointMode
    sampling_ms: int
    deadband: float | None
    node: NodeId | None = field(default=None)

    @property
    def key(self) -> str:
        return self.point.id


def plan_items(
    device: OpcUaDevice,
    points: Sequence[OpcUaPointConfig],
    *,
    poll_interval_s: float,
    report: ReportPolicy,
) -> list[Item]:
    """The items of one device's points: sampling interval (the point's, else its poll
    interval), and the absolute deadband of its report policy in server units."""
    items: list[Item] = []
    for point in points:
        if point.sampling_interval_ms is not None:
            sampling_ms = point.sampling_interval_ms
        else:
            sampling_ms = round(1000 * (point.poll_interval_s or poll_interval_s))
        policy = point.report or report
        items.append(
            Item(
                device=device,
                point=point,
                convert=Converter.of(point),
                mode=point.mode,
                sampling_ms=sampling_ms,
                deadband=deadband_raw(point, policy.deadband_abs),
            )
        )
    return items


class OpcUaDevice:
    """``drivers.base.Driver`` of one device on an OPC UA link."""

    def __init__(self, device_id: str, config: OpcUaDeviceConfig | None = None) -> None:
        self._device_id = device_id
        self.config = config
        self.items: dict[str, Item] = {}
        self._writer: Writer | None = None
        self._queue = PushQueue()

    @property
    def device_id(self) -> str:
        return self._device_id

    def attach(self, writer: Writer, items: Sequence[Item]) -> None:
        self._writer = writer
        self.items = {item.key: item for item in items}

    def poll_groups(self) -> Sequence[PollGroup]:
        return ()

    async def read(self, group: PollGroup) -> list[Reading]:
        raise DeviceError("an OPC UA device reports through pushed(); it has no poll groups")

    async def write(self, key: str, value: Value, *, verify: bool = True) -> Value | None:
        item = self.items.get(key)
        if item is None:
            raise KeyError(f"device {self._device_id} has no point {key!r}")
        if not item.point.writable:
            raise DeviceError(f"point '{key}' of {self._device_id} is read-only")
        if self._writer is None:
            raise DeviceError(f"device {self._device_id} is not attached to a link")
        return await self._writer.write_item(item, value, verify=verify)

    def pushed(self) -> AsyncIterator[list[Reading] | LinkState]:
        return self._queue.batches()

    # -- called by the link -------------------------------------------------------------------

    def put(self, reading: Reading | LinkState) -> None:
        self._queue.put(reading)

    @property
    def backlog(self) -> int:
        return len(self._queue)

    @property
    def shed(self) -> int:
        """Values dropped because the gateway fell behind (newer values of the points came)."""
        return self._queue.shed
