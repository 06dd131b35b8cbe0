"""An asyncio FIFO bounded by item count *and* by total bytes (central's MQTT ingest queues).

A count alone does not bound memory when items vary from a few bytes to 8 MiB: 256 queued
batches may be 2 GiB. ``put`` waits while either bound would be exceeded; one item always fits
into an empty queue, so an item larger than ``max_bytes`` still passes (alone) instead of
blocking for ever.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ["ByteBoundedQueue"]

T = TypeVar("T")


class ByteBoundedQueue(Generic[T]):
    def __init__(self, *, max_items: int, max_bytes: int) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError("a queue needs room for at least one item and one byte")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._changed = asyncio.Condition()
        self.peak_bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def _fits(self, size: int) -> bool:
        if not self._items:
            return True
        return len(self._items) < self.max_items and self._bytes + size <= self.max_bytes

    async def put(self, item: T, size: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._fits(size))
            self._items.append((item, size))
            self._bytes += size
            self.peak_bytes = max(self.peak_bytes, self._bytes)
            self._changed.notify_all()

    def _pop(self) -> T:
        item, size = self._items.popleft()
        self._bytes -= size
        return item

    async def get(self) -> T:
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            item = self._pop()
            self._changed.notify_all()
            return item

    async def get_nowait(self) -> T:
        """The next item if there is one (``asyncio.QueueEmpty`` otherwise); never waits for one."""
        async with self._changed:
            if not self._items:
                raise asyncio.QueueEmpty
            item = self._pop()
            self._changed.notify_all()
            return item
