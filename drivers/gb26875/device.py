"""The ``Driver`` of one transmission device: push-only, fed by its bus's link.

The link (``drivers.gb26875.transport``) decodes frames and hands each device its objects;
the device turns them into readings through its :class:`~drivers.gb26875.mapping.Mapper` and
queues them for ``pushed()``, with a ``LinkState`` whenever it is heard again after silence or
lost (its connection closed, or nothing within the heartbeat timeout). The queue is bounded:
when the coordinator falls behind, the link stops reading the socket, and the device's TCP
window does the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import structlog

from core.errors import DeviceError
from core.model import Value
from drivers.base import LinkState, PollGroup, Reading
from drivers.gb26875.mapping import Mapper
from drivers.gb26875.objects import InfoObject

__all__ = ["Gb26875Device"]

_LOG = structlog.get_logger(__name__)
_QUEUE_SIZE = 1024


class Gb26875Device:
    """One transmission device as a push-only driver."""

    def __init__(
        self, device_id: str, address: bytes | None, mapper: Mapper, *, clock_mono: float = 0.0
    ) -> None:
        self._device_id = device_id
        self.address = address
        self.mapper = mapper
        self.online = False
        self.last_heard_mono = clock_mono
        self._queue: asyncio.Queue[Reading | LinkState] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        # The link that serves this device (set by the link), for tests and diagnostics.
        self.link: object | None = None

    @property
    def device_id(self) -> str:
        return self._device_id

    def poll_groups(self) -> Sequence[PollGroup]:
        return ()

    async def read(self, group: PollGroup) -> list[Reading]:
        raise DeviceError("a GB/T 26875 transmission device is not polled")

    async def write(self, key: str, value: Value, *, verify: bool = True) -> Value | None:
        raise DeviceError(f"point {key!r}: GB/T 26875 points are read-only")

    async def pushed(self) -> AsyncIterator[Reading | LinkState]:
        while True:
            yield await self._queue.get()

    # -- called by the link ----------------------------------------------------------------

    async def heard(self, now_mono: float) -> None:
        """A valid frame from this device arrived: online (with every point's value) if it
        was not."""
        self.last_heard_mono = now_mono
        if self.online:
            return
        self.online = True
        _LOG.info("transmission device online", device=self._device_id)
        await self._queue.put(LinkState(True))
        for reading in self.mapper.snapshot():
            await self._queue.put(reading)

    async def lost(self, error: str) -> None:
        if not self.online:
            return
        self.online = False
        _LOG.warning("transmission device offline", device=self._device_id, error=error)
        await self._queue.put(LinkState(False, error))

    async def deliver(self, objects: Sequence[InfoObject]) -> None:
        for obj in objects:
            for reading in self.mapper.apply(obj):
                await self._queue.put(reading)
