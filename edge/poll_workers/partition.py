"""Which links each poll worker runs: pure.

The unit is a link: a whole bus (one serial port or endpoint with one scheduler: splitting it
over two processes would put two requests on one RS-485 line), or, where the bus type says its
devices use separate links (``BusDriver.link_of``: a Modbus TCP device with its own host:port),
the devices of one link. Links are spread by their number of points (the work of polling),
largest first onto the least loaded worker.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["partition"]


def partition(bus_points: Iterable[tuple[str, int]], workers: int) -> list[list[str]]:
    """Link keys per worker; never an empty worker (fewer workers than asked when links are few)."""
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
