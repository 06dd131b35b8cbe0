"""Disk-quota bookkeeping: how full the outbox is and which telemetry to give up first.

The size that counts is the pages in use, ``(page_count - freelist_count) × page_size``: pages
freed by deletes go to SQLite's free list and are reused by the next inserts, so the file does
not have to shrink for the space to count as available again (no VACUUM on a busy gateway).
The WAL file is not counted; it is bounded instead (``wal_bounds``): checkpoints run every
``quota/32`` bytes of WAL (at most SQLite's default 1,000 pages) and the WAL file is truncated
back to ``quota/16`` (1–64 MB) after one, so the files on disk stay near the quota plus a
sixteenth.

Eviction takes the oldest telemetry first, comparing the oldest waiting rows with the oldest
sealed-but-unsent telemetry batch; event rows and event batches are never touched. One round
of eviction leaves one ``outbox.gap`` event describing everything it dropped.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Gap", "evict_oldest_telemetry", "used_bytes", "wal_bounds"]

# Deleting fewer rows than this per step costs more in round trips than it saves in precision.
_MIN_CHUNK_ROWS = 512


def wal_bounds(quota_bytes: int, page_size: int = 4096) -> tuple[int, int]:
    """``(wal_autocheckpoint pages, journal_size_limit bytes)`` for a quota."""
    checkpoint_pages = max(100, min(1000, quota_bytes // 32 // page_size))
    limit_bytes = max(1 << 20, min(64 << 20, quota_bytes // 16))
    return checkpoint_pages, limit_bytes


def used_bytes(conn: sqlite3.Connection, page_size: int) -> int:
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    return (pages - free) * page_size


@dataclass(slots=True)
class Gap:
    """What one eviction round dropped; becomes the data of one ``outbox.gap`` event."""

    rows: int = 0
    point_ids: set[int] = field(default_factory=set)
    from_ts: float | None = None
    to_ts: float | None = None
    batches: int = 0
    batch_records: int = 0
    seq_from: int | None = None
    seq_to: int | None = None

    def __bool__(self) -> bool:
        return self.rows > 0 or self.batches > 0

    def _span(self, lo: float | None, hi: float | None) -> None:
        if lo is not None:
            self.from_ts = lo if self.from_ts is None else min(self.from_ts, lo)
        if hi is not None:
            self.to_ts = hi if self.to_ts is None else max(self.to_ts, hi)

    def as_data(self, *, reason: str, used_bytes: int, quota_bytes: int) -> dict[str, Any]:
        return {
            "reason": reason,
            "rows": self.rows,
            "points": len(self.point_ids),
            "from_ts": self.from_ts,
            "to_ts": self.to_ts,
            "batches": self.batches,
            "batch_records": self.batch_records,
            "seq_from": self.seq_from,
            "seq_to": self.seq_to,
            "used_bytes": used_bytes,
            "quota_bytes": quota_bytes,
        }


def _drop_oldest_batch(conn: sqlite3.Connection, gap: Gap) -> bool:
    row = conn.execute(
        "SELECT seq, record_count, first_ts, last_ts FROM batches WHERE lane = 'telemetry'"
        " ORDER BY seq LIMIT 1"
    ).fetchone()
    if row is None:
        return False
    seq, count, first_ts, last_ts = row
    conn.execute("DELETE FROM batches WHERE lane = 'telemetry' AND seq = ?", (seq,))
    gap.batches += 1
    gap.batch_records += int(count)
    gap.seq_from = seq if gap.seq_from is None else min(gap.seq_from, seq)
    gap.seq_to = seq if gap.seq_to is None else max(gap.seq_to, seq)
    gap._span(first_ts, last_ts)
    return True


def _drop_oldest_rows(conn: sqlite3.Connection, gap: Gap, chunk_rows: int) -> int:
    last = conn.execute("SELECT id FROM telemetry ORDER BY id LIMIT 1 OFFSET ?", (chunk_rows - 1,)).fetchone()
    if last is None:
        last = conn.execute("SELECT max(id) FROM telemetry").fetchone()
        if last is None or last[0] is None:
            return 0
    upto = int(last[0])
    count, lo, hi = conn.execute(
        "SELECT count(*), min(receipt_ts), max(receipt_ts) FROM telemetry WHERE id <= ?", (upto,)
    ).fetchone()
    gap.point_ids.update(
        p for (p,) in conn.execute("SELECT DISTINCT point FROM telemetry WHERE id <= ?", (upto,))
    )
    conn.execute("DELETE FROM telemetry WHERE id <= ?", (upto,))
    gap.rows += int(count)
    gap._span(lo, hi)
    return int(count)


def evict_oldest_telemetry(
    conn: sqlite3.Connection,
    *,
    measure: Callable[[], int],
    target_bytes: int,
    telemetry_rows: int,
    gap: Gap,
) -> int:
    """Delete the oldest telemetry until ``measure()`` ≤ ``target_bytes`` or none is left.

    Runs inside the caller's transaction. Returns the rows deleted from ``telemetry`` (sealed
    batches dropped are in ``gap``); the caller keeps its counters.
    """
    used = measure()
    deleted = 0
    while used > target_bytes:
        oldest_row = conn.execute("SELECT receipt_ts FROM telemetry ORDER BY id LIMIT 1").fetchone()
        oldest_batch = conn.execute(
            "SELECT first_ts FROM batches WHERE lane = 'telemetry' ORDER BY seq LIMIT 1"
        ).fetchone()
        if oldest_row is None and oldest_batch is None:
            break
        if oldest_batch is not None and (oldest_row is None or (oldest_batch[0] or 0.0) <= oldest_row[0]):
            _drop_oldest_batch(conn, gap)
        else:
            remaining = max(telemetry_rows - deleted, 1)
            # Assume the rows share the excess in proportion to their number: usually too few
            # on a mixed database, which the loop corrects; never the whole table at once.
            share = math.ceil(remaining * (used - target_bytes) / max(used, 1))
            deleted += _drop_oldest_rows(conn, gap, max(_MIN_CHUNK_ROWS, share))
        used = measure()
    return deleted
