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
from pathlib import Path
from typing import Any

import structlog

from core.errors import StorageError
from core.model import Clock, Quality, Sample
from edge.outbox.migrator import Step, run_migrations

__all__ = ["MIGRATIONS", "TrendStore", "trends_path"]

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
            self._db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS:d}")
            run_migrations(self._db, MIGRATIONS, store="trend history", path=str(path))
            if legacy is not None and legacy.exists():
                self._adopt(legacy)
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
