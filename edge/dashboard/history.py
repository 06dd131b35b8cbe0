"""The local rolling trend history behind the site view's charts (SQLite, kept ``history_days``).

Every sample the point bus delivers is folded into the current bucket of its point (count, min,
sum, max; ``history_interval_s`` wide). At each bucket boundary the finished buckets are written
in one transaction on a worker thread, so the event loop only does dictionary updates. Only
numeric values of good or uncertain quality are kept (a bool counts as 0/1): a chart of a
string or of a comm failure says nothing. A purge deletes rows older than ``history_days``
every hour, in chunks so that the writer never holds the file long. ``query`` downsamples in
SQL to at most ``max_points`` rows, on a worker thread.

The trends have a file of their own (``trends_path``: ``dashboard-trends.db`` beside
``dashboard.db``): its big writes and deletes happen on worker threads, and sharing a file with
the accounts, whose small queries run on the event loop, made a sign-in wait out SQLite's
busy timeout (5 s) behind an hourly purge. Trends of an older release that kept them in
``dashboard.db`` are moved over once, at start. The schema goes through the shared migration
runner (``edge.outbox.migrator``).
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog

from core.errors import StorageError
from core.model import Clock, Quality, Sample
from edge.outbox.migrator import Step, run_migrations

__all__ = ["MIGRATIONS", "ClosedBuckets", "TrendStore", "trends_path"]

_LOG = structlog.get_logger(__name__)


def _v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS trend (point TEXT NOT NULL, bucket REAL NOT NULL, n INTEGER NOT NULL,"
        " min REAL NOT NULL, avg REAL NOT NULL, max REAL NOT NULL, PRIMARY KEY (point, bucket)) WITHOUT ROWID"
    )


MIGRATIONS: tuple[Step, ...] = (_v1,)
_PURGE_EVERY_S = 3600.0
_PURGE_CHUNK = 5000  # rows per delete transaction: the file is never locked for long
_BUSY_TIMEOUT_MS = 30_000  # waits happen on worker threads only
_EMPTY = (math.nan, 0.0, 0.0, 0.0, 0.0)

Row = tuple[str, float, int, float, float, float]
"""A finished bucket as stored: point, start, n, min, avg, max."""


class ClosedBuckets:
    """Finished buckets waiting for the writer, six doubles each in one flat array (slot, start,
    n, min, sum, max); the rows are made one at a time as SQLite takes them. At each boundary
    every point's bucket closes at once: as a list of row tuples that was about 150 bytes a
    point, 9 MB at 2,000 devices of 30 points for a moment each interval, and the freed tuples
    left the heap fragmented (issue 19's memory breakdown)."""

    __slots__ = ("_flat", "_names")

    def __init__(self, names: list[str]) -> None:
        self._names = names  # append-only: a slot's name never changes
        self._flat = array("d")

    def add(self, slot: int, start: float, n: float, low: float, total: float, high: float) -> None:
        self._flat.extend((slot, start, n, low, total, high))

    def __len__(self) -> int:
        return len(self._flat) // 6

    def __iter__(self) -> Iterator[Row]:
        flat, names = self._flat, self._names
        for i in range(0, len(flat), 6):
            n = flat[i + 2]
            yield (names[int(flat[i])], flat[i + 1], int(n), flat[i + 3], flat[i + 4] / n, flat[i + 5])


def trends_path(dashboard_db: Path) -> Path:
    """The trend file that goes with a dashboard database: ``dashboard.db`` → ``dashboard-trends.db``."""
    return dashboard_db.with_name(f"{dashboard_db.stem}-trends{dashboard_db.suffix or '.db'}")


class TrendStore:
    def __init__(
        self,
        path: Path,
        *,
        interval_s: float,
        history_days: float,
        clock: Clock,
        legacy: Path | None = None,
    ) -> None:
        """``path``: the trend file; ``legacy``: a ``dashboard.db`` whose ``trend`` table (an
        older release's) is moved into it."""
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
            # Appends of closed buckets and range reads of one point: SQLite's default 2 MB
            # cache bought nothing here but RSS (issue 19).
            self._db.execute("PRAGMA cache_size=-500")
            self._db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS:d}")
            run_migrations(self._db, MIGRATIONS, store="trend history", path=str(path))
            if legacy is not None and legacy.exists():
                self._adopt(legacy)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"{path}: cannot open the trend history: {exc}") from exc
        # The open bucket of every point, five doubles a slot in one flat array (start, n, min,
        # sum, max; start NaN while the slot has none): a list of five floats per point was 250
        # bytes a point, 3.7 MB at 500 devices of 30 points (issue 19's memory breakdown).
        self._slot: dict[str, int] = {}
        self._names: list[str] = []
        self._acc = array("d")
        # Buckets pushed out by a newer sample before the writer came round.
        self._pending = ClosedBuckets(self._names)
        self.rows_written = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _adopt(self, legacy: Path) -> None:
        """Move the ``trend`` table of an older ``dashboard.db`` here (idempotent: a crash
        between the copy and the drop copies again, and the primary key ignores the repeats)."""
        db = self._db
        db.execute("ATTACH DATABASE ? AS legacy", (str(legacy),))
        try:
            found = db.execute(
                "SELECT 1 FROM legacy.sqlite_master WHERE type = 'table' AND name = 'trend'"
            ).fetchone()
            if found is None:
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute(
                    "INSERT OR IGNORE INTO main.trend (point, bucket, n, min, avg, max)"
                    " SELECT point, bucket, n, min, avg, max FROM legacy.trend"
                )
                db.execute("DROP TABLE legacy.trend")
                db.execute("COMMIT")
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise
            _LOG.info("dashboard.trends_moved", rows=cur.rowcount, source=str(legacy), target=str(self.path))
        finally:
            db.execute("DETACH DATABASE legacy")

    # -- collecting --------------------------------------------------------------------------

    def add(self, samples: list[Sample]) -> None:
        """LiveState listener: fold samples into their buckets (cheap, on the event loop)."""
        width = self.interval_s
        slots = self._slot
        acc = self._acc
        pending = self._pending
        for sample in samples:
            if sample.quality is Quality.BAD or isinstance(sample.value, str) or sample.value is None:
                continue
            value = float(sample.value)
            if not math.isfinite(value):
                continue
            start = sample.receipt_ts - sample.receipt_ts % width
            slot = slots.get(sample.point_id)
            if slot is None:
                slot = slots[sample.point_id] = len(self._names)
                self._names.append(sample.point_id)
                acc.extend(_EMPTY)
            i = slot * 5
            current = acc[i]
            if current != start:
                if current == current:  # noqa: PLR0124 - NaN marks a slot with no open bucket
                    if current > start:
                        continue  # a late sample of a bucket already closed
                    pending.add(slot, current, acc[i + 1], acc[i + 2], acc[i + 3], acc[i + 4])
                acc[i] = start
                acc[i + 1] = 1.0
                acc[i + 2] = acc[i + 3] = acc[i + 4] = value
                continue
            acc[i + 1] += 1.0
            if value < acc[i + 2]:
                acc[i + 2] = value
            acc[i + 3] += value
            if value > acc[i + 4]:
                acc[i + 4] = value

    def take_closed(self, now: float) -> ClosedBuckets:
        """The buckets that ended before ``now`` (and those pushed out by a newer sample)."""
        rows = self._pending
        self._pending = ClosedBuckets(self._names)
        width = self.interval_s
        acc = self._acc
        for slot in range(len(self._names)):
            i = slot * 5
            start = acc[i]
            if start + width <= now:  # False for NaN: an empty slot
                rows.add(slot, start, acc[i + 1], acc[i + 2], acc[i + 3], acc[i + 4])
                acc[i] = math.nan
        return rows

    def _open_bucket(self, point: str) -> list[float] | None:
        """``[start, min, avg, max]`` of the bucket still being filled for ``point``, if any."""
        slot = self._slot.get(point)
        if slot is None:
            return None
        start, n, low, total, high = self._acc[slot * 5 : slot * 5 + 5]
        if math.isnan(start):
            return None
        return [start, low, total / n, high]

    def write(self, rows: ClosedBuckets | list[Row]) -> None:
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
        """Delete rows past ``history_days`` (worker thread), a chunk per transaction."""
        cutoff = now - self.keep_s
        where = "bucket < ?"
        args: list[Any] = [cutoff]
        if self.retain_prefixes:
            # Points of longer-kept classes (vehicle passages, edge.retention) stay.
            where += "".join(" AND NOT (point >= ? AND point < ?)" for _ in self.retain_prefixes)
            args += [x for p in self.retain_prefixes for x in (p, p + "\uffff")]
        sql = (
            "DELETE FROM trend WHERE (point, bucket) IN"  # noqa: S608 - only placeholders are added
            f" (SELECT point, bucket FROM trend WHERE {where} LIMIT {_PURGE_CHUNK:d})"
        )
        deleted = 0
        try:
            while True:
                with self._lock:
                    count = self._db.execute(sql, args).rowcount
                deleted += count
                if count < _PURGE_CHUNK:
                    return deleted
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot purge trend rows: {exc}") from exc

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
        bucket = self._open_bucket(point)
        if bucket is not None and since <= bucket[0] < until and (not result or result[-1][0] < bucket[0]):
            result.append(bucket)
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
