"""The local rolling trend history behind the site view's charts (SQLite, kept ``history_days``).

Every sample the point bus delivers is folded into the current bucket of its point (count, min,
sum, max; ``history_interval_s`` wide). At each bucket boundary the finished buckets are written
in one transaction on a worker thread, so the event loop only does dictionary updates. Only
numeric values of good or uncertain quality are kept (a bool counts as 0/1): a chart of a
string or of a comm failure says nothing. A purge deletes rows older than ``history_days``
every hour. ``query`` downsamples in SQL to at most ``max_points`` rows.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
from pathlib import Path
from typing import Any

import structlog

from core.errors import StorageError
from core.model import Clock, Quality, Sample

__all__ = ["TrendStore"]

_LOG = structlog.get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trend (
    point TEXT NOT NULL,
    bucket REAL NOT NULL,
    n INTEGER NOT NULL,
    min REAL NOT NULL,
    avg REAL NOT NULL,
    max REAL NOT NULL,
    PRIMARY KEY (point, bucket)
) WITHOUT ROWID;
"""
_PURGE_EVERY_S = 3600.0


class TrendStore:
    def __init__(self, path: Path, *, interval_s: float, history_days: float, clock: Clock) -> None:
        self.path = path
        self.retain_prefixes: tuple[str, ...] = ()
        self.interval_s = interval_s
        self.keep_s = history_days * 86400.0
        self._clock = clock
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"{path}: cannot open the trend history: {exc}") from exc
        # point -> [bucket start, n, min, sum, max]
        self._open: dict[str, list[float]] = {}
        # Buckets pushed out by a newer sample before the writer came round.
        self._pending: list[tuple[str, list[float]]] = []
        self.rows_written = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- collecting --------------------------------------------------------------------------

    def add(self, samples: list[Sample]) -> None:
        """LiveState listener: fold samples into their buckets (cheap, on the event loop)."""
        width = self.interval_s
        buckets = self._open
        finished: list[tuple[str, list[float]]] = []
        for sample in samples:
            if sample.quality is Quality.BAD or isinstance(sample.value, str) or sample.value is None:
                continue
            value = float(sample.value)
            if not math.isfinite(value):
                continue
            start = sample.receipt_ts - sample.receipt_ts % width
            acc = buckets.get(sample.point_id)
            if acc is None or acc[0] != start:
                if acc is not None:
                    if acc[0] > start:
                        continue  # a late sample of a bucket already closed
                    finished.append((sample.point_id, acc))
                buckets[sample.point_id] = [start, 1.0, value, value, value]
                continue
            acc[1] += 1
            if value < acc[2]:
                acc[2] = value
            acc[3] += value
            if value > acc[4]:
                acc[4] = value
        if finished:
            self._pending.extend(finished)

    def take_closed(self, now: float) -> list[tuple[str, float, int, float, float, float]]:
        """The buckets that ended before ``now`` (and those pushed out by a newer sample)."""
        rows = [(p, a[0], int(a[1]), a[2], a[3] / a[1], a[4]) for p, a in self._pending]
        self._pending = []
        width = self.interval_s
        for point, acc in list(self._open.items()):
            if acc[0] + width <= now:
                rows.append((point, acc[0], int(acc[1]), acc[2], acc[3] / acc[1], acc[4]))
                del self._open[point]
        return rows

    def write(self, rows: list[tuple[str, float, int, float, float, float]]) -> None:
        """Store finished buckets (worker thread). A bucket seen twice is merged."""
        if not rows:
            return
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO trend (point, bucket, n, min, avg, max) VALUES (?,?,?,?,?,?)"
                    " ON CONFLICT (point, bucket) DO UPDATE SET"
                    " avg = (avg * n + excluded.avg * excluded.n) / (n + excluded.n),"
                    " n = n + excluded.n, min = min(min, excluded.min), max = max(max, excluded.max)",
                    rows,
                )
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot write trend rows: {exc}") from exc
        self.rows_written += len(rows)

    def purge(self, now: float) -> int:
        try:
            with self._lock:
                cutoff = now - self.keep_s
                if not self.retain_prefixes:
                    cur = self._db.execute("DELETE FROM trend WHERE bucket < ?", (cutoff,))
                else:
                    # Points of longer-kept classes (vehicle passages, edge.retention) stay.
                    keep = " AND ".join("NOT (point >= ? AND point < ?)" for _ in self.retain_prefixes)
                    args = [x for p in self.retain_prefixes for x in (p, p + "\uffff")]
                    cur = self._db.execute(f"DELETE FROM trend WHERE bucket < ? AND {keep}", (cutoff, *args))
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot purge trend rows: {exc}") from exc
        return cur.rowcount

    async def run(self) -> None:
        """Write finished buckets at each boundary and purge hourly, until cancelled."""
        next_purge = 0.0
        try:
            while True:
                now = self._clock.wall()
                await asyncio.sleep(self.interval_s - now % self.interval_s + 0.05)
                now = self._clock.wall()
                await asyncio.to_thread(self.write, self.take_closed(now))
                if self._clock.monotonic() >= next_purge:
                    deleted = await asyncio.to_thread(self.purge, now)
                    if deleted:
                        _LOG.info("dashboard.trend_purged", rows=deleted)
                    next_purge = self._clock.monotonic() + _PURGE_EVERY_S
        finally:
            # Keep what was collected so far (the gateway is stopping).
            rows = self.take_closed(math.inf)
            if rows:
                self.write(rows)

    # -- reading -----------------------------------------------------------------------------

    async def query(
        self, point: str, *, since: float, until: float, max_points: int = 500
    ) -> list[list[Any]]:
        """Rows ``[ts, min, avg, max]``, oldest first, at most ``max_points`` of them; ``ts`` is the
        start of each (merged) bucket."""
        max_points = max(1, min(max_points, 10_000))
        result = await asyncio.to_thread(self.query_stored, point, since, until, max_points)
        # Include the bucket still being filled, so a fresh chart is not empty.
        acc = self._open.get(point)
        if acc is not None and since <= acc[0] < until and (not result or result[-1][0] < acc[0]):
            result.append([acc[0], acc[2], acc[3] / acc[1], acc[4]])
        return result[-max_points:]

    def query_stored(self, point: str, since: float, until: float, max_points: int) -> list[list[Any]]:
        width = max(self.interval_s, (until - since) / max_points)
        try:
            with self._lock:
                rows = self._db.execute(
                    "SELECT CAST((bucket - ?) / ? AS INTEGER) AS b, min(min), sum(avg * n) / sum(n), max(max)"
                    " FROM trend WHERE point = ? AND bucket >= ? AND bucket < ? GROUP BY b ORDER BY b",
                    (since, width, point, since, until),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot read trend rows: {exc}") from exc
        return [[since + b * width, lo, avg, hi] for b, lo, avg, hi in rows]
