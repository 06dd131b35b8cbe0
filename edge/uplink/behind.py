"""Is the uplink falling behind? A pure estimator over the outbox's backlog, and its alarm.

The outbox holds everything central has not acknowledged. When the uplink keeps up, the oldest
unacknowledged value is a second or two old and the outbox does not grow. When it cannot keep up
(a slow or lossy link, a central that acks slowly, more values than the uplink can seal and send)
the oldest value gets older and the outbox grows, until the quota is reached and the oldest
telemetry is evicted. This module says so long before that:

* :class:`BacklogTrend` keeps the observations of the last ``window_s`` seconds (how far behind,
  the bytes the outbox uses) and fits a least-squares line through the bytes: the growth rate in
  bytes/s, and from it how long until the quota is full;
* :class:`BehindAlarm` raises when the uplink is ``raise_s`` seconds behind and clears once it is
  back within ``clear_s`` (hysteresis, so a backlog that drains around the threshold does not
  flap). Each transition comes back as a :class:`BehindChange` with the figures to report.

No clock and no I/O: the caller (``edge.uplink.watch``) feeds observations with their times.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["BacklogTrend", "BehindAlarm", "BehindChange", "Observation", "Trend", "describe"]


@dataclass(frozen=True, slots=True)
class Observation:
    at_s: float  # monotonic seconds
    behind_s: float  # age of the oldest unacknowledged record (0 when there is none)
    used_bytes: int  # what the outbox occupies
    quota_bytes: int


@dataclass(frozen=True, slots=True)
class Trend:
    """The figures at the latest observation."""

    behind_s: float
    growth_bytes_per_s: float  # least-squares slope of used bytes over the window (may be < 0)
    quota_full_in_s: float | None  # None while the outbox is not growing
    used_bytes: int
    quota_bytes: int
    span_s: float  # how much time the window covers so far


class BacklogTrend:
    """Observations of the last ``window_s`` seconds, bounded to ``max_points``."""

    def __init__(self, *, window_s: float = 60.0, max_points: int = 256) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self._window_s = window_s
        self._points: deque[Observation] = deque(maxlen=max_points)

    def add(self, obs: Observation) -> Trend:
        points = self._points
        if points and obs.at_s < points[-1].at_s:
            raise ValueError("observations must come in time order")
        points.append(obs)
        while points and obs.at_s - points[0].at_s > self._window_s:
            points.popleft()
        growth = _slope([(p.at_s, float(p.used_bytes)) for p in points])
        room = max(0, obs.quota_bytes - obs.used_bytes)
        full_in = room / growth if growth > 0 else None
        return Trend(
            behind_s=obs.behind_s,
            growth_bytes_per_s=growth,
            quota_full_in_s=full_in,
            used_bytes=obs.used_bytes,
            quota_bytes=obs.quota_bytes,
            span_s=obs.at_s - points[0].at_s,
        )


def _slope(xy: list[tuple[float, float]]) -> float:
    """Least-squares slope; 0 with fewer than two distinct times."""
    n = len(xy)
    if n < 2:
        return 0.0
    mean_x = math.fsum(x for x, _ in xy) / n
    mean_y = math.fsum(y for _, y in xy) / n
    sxx = math.fsum((x - mean_x) ** 2 for x, _ in xy)
    if sxx == 0:
        return 0.0
    return math.fsum((x - mean_x) * (y - mean_y) for x, y in xy) / sxx


@dataclass(frozen=True, slots=True)
class BehindChange:
    active: bool
    trend: Trend

    def as_data(self) -> dict[str, object]:
        """The event's ``data`` (``system.alarm``, ``code: uplink_behind``)."""
        t = self.trend
        return {
            "code": "uplink_behind",
            "active": self.active,
            "behind_s": round(t.behind_s, 1),
            "growth_bytes_per_s": round(t.growth_bytes_per_s),
            "quota_full_in_s": None if t.quota_full_in_s is None else round(t.quota_full_in_s),
            "used_bytes": t.used_bytes,
            "quota_bytes": t.quota_bytes,
            "message": describe(t) if self.active else f"uplink caught up (behind by {t.behind_s:.0f} s)",
        }


class BehindAlarm:
    """Raise at ``raise_s`` behind, clear at ``clear_s`` (< ``raise_s``)."""

    def __init__(self, *, raise_s: float = 60.0, clear_s: float = 10.0) -> None:
        if not 0 <= clear_s < raise_s:
            raise ValueError("need 0 <= clear_s < raise_s")
        self.raise_s = raise_s
        self.clear_s = clear_s
        self.active = False

    def update(self, trend: Trend) -> BehindChange | None:
        if not self.active and trend.behind_s >= self.raise_s:
            self.active = True
            return BehindChange(True, trend)
        if self.active and trend.behind_s <= self.clear_s:
            self.active = False
            return BehindChange(False, trend)
        return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 120 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def describe(trend: Trend) -> str:
    """``uplink behind by 95 s / backlog growing at 0.61 MB/s, quota full in 53 min``."""
    head = f"uplink behind by {_duration(trend.behind_s)}"
    rate = trend.growth_bytes_per_s / 1e6
    if trend.quota_full_in_s is None:
        return f"{head} / backlog not growing ({rate:+.2f} MB/s)"
    return f"{head} / backlog growing at {rate:.2f} MB/s, quota full in {_duration(trend.quota_full_in_s)}"
