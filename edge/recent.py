"""A bounded window of the most recent floats, in one flat array.

Each device keeps its recent poll lateness for percentiles; a ``deque(maxlen=128)`` of floats
held about 4.6 KB a device (deque blocks plus a float object per entry), 9 MB at 2,000 devices,
where this ring holds the same 128 values in about 1.1 KB (issue 19).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator


class RecentFloats:
    """The last ``maxlen`` values appended, oldest first when iterated."""

    __slots__ = ("_items", "_maxlen", "_next")

    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        self._maxlen = maxlen
        self._items = array("d")  # grows to maxlen, then is overwritten in a ring
        self._next = 0  # where the next value goes once the ring is full

    @property
    def maxlen(self) -> int:
        return self._maxlen

    def append(self, value: float) -> None:
        if len(self._items) < self._maxlen:
            self._items.append(value)
            return
        self._items[self._next] = value
        self._next = (self._next + 1) % self._maxlen

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.append(value)

    def clear(self) -> None:
        self._items = array("d")
        self._next = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[float]:
        items = self._items
        yield from items[self._next :]
        yield from items[: self._next]

    def __repr__(self) -> str:
        return f"RecentFloats({list(self)!r}, maxlen={self._maxlen})"
