"""Which buses each poll worker runs: pure.

Whole buses only: a bus is one physical port or endpoint with one scheduler, and splitting it
over two processes would put two requests on one RS-485 line. Buses are spread by their number
of points (the work of polling), largest first onto the least loaded worker.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["partition"]


def partition(bus_points: Iterable[tuple[str, int]], workers: int) -> list[list[str]]:
    """Bus ids per worker; never an empty worker (fewer workers than asked when buses are few)."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    buses = sorted(bus_points, key=lambda bp: (-bp[1], bp[0]))
    count = min(workers, len(buses))
    slots: list[tuple[int, int, list[str]]] = [(0, n, []) for n in range(count)]
    for bus, points in buses:
        load, n, owned = min(slots)
        owned.append(bus)
        slots[n] = (load + max(points, 1), n, owned)
    return [sorted(owned) for _, _, owned in sorted(slots, key=lambda s: s[1])]
