"""``PushQueue``: the bounded hand-over from a library's callback to a driver's ``pushed()``.

Subscription and COV callbacks (asyncua, bacpypes3) run synchronously and must not block, so
they cannot wait for room; the coordinator on the other side may be slow when the outbox is.
The queue is therefore bounded by count and, when full, sheds the *oldest reading* (a newer
value of a point supersedes an older one; a ``LinkState`` is never shed) and counts what it
shed, so an overload costs intermediate values rather than memory.

The consumer takes what has arrived as one batch (``list[Reading]``), or a ``LinkState`` on
its own so that order around a link change is kept: one sink call per burst instead of one
per value.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from drivers.base import LinkState, Reading

__all__ = ["PushQueue"]


class PushQueue:
    def __init__(self, max_items: int = 50_000) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = max_items
        self.shed = 0  # readings dropped because the consumer fell behind
        self._items: deque[Reading | LinkState] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Reading | LinkState) -> None:
        """Never blocks: when full, the oldest reading makes room."""
        items = self._items
        if len(items) >= self.max_items:
            for i, old in enumerate(items):
                if isinstance(old, Reading):
                    del items[i]
                    self.shed += 1
                    break
            else:
                items.popleft()  # only link states queued: keep the newest ones
        items.append(item)
        self._ready.set()

    async def batches(self) -> AsyncIterator[list[Reading] | LinkState]:
        """What has arrived since the last turn: readings as one list, link states alone."""
        items = self._items
        while True:
            while not items:
                self._ready.clear()
                await self._ready.wait()
            if isinstance(items[0], LinkState):
                state = items.popleft()
                assert isinstance(state, LinkState)
                yield state
                continue
            batch: list[Reading] = []
            while items and isinstance(items[0], Reading):
                reading = items.popleft()
                assert isinstance(reading, Reading)
                batch.append(reading)
            yield batch
