"""Backlog statistics of an outbox database, read-only, for ``gatehouse buffer stats``.

Opened with ``mode=ro`` so that it can run while the daemon writes: WAL lets a reader see the
last committed state without blocking the writer. Row counts are exact (``count(*)``), which
on a very large backlog takes a moment; this is an operator's command, not a hot path.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from core.errors import StorageError
from edge.outbox import migrations
from edge.outbox.seqmark import read_marks, seq_path

__all__ = ["format_stats", "read_stats"]

_LANES = ("event", "telemetry")


def read_stats(path: Path) -> dict[str, Any]:
    """Per lane: rows waiting, sealed batches waiting, their bytes, oldest record, last seq."""
    path = Path(path)
    if not path.exists():
        raise StorageError(f"{path}: no outbox database here")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot open read-only: {exc}") from exc
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        version = migrations.schema_version(conn)
        if version == 0:
            raise StorageError(f"{path}: not an outbox database (schema version 0)")
        if version > migrations.CURRENT_VERSION:
            raise StorageError(f"{path}: schema v{version} is newer than this release knows")
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        last_seq = dict(conn.execute("SELECT lane, last_seq FROM lane_seq").fetchall())
        lanes: dict[str, Any] = {}
        for lane in _LANES:
            if lane == "telemetry":
                rows = conn.execute("SELECT count(*), min(receipt_ts) FROM telemetry").fetchone()
                row_bytes = _table_bytes(conn, "telemetry")
            else:
                rows = conn.execute("SELECT count(*), min(ts) FROM events").fetchone()
                row_bytes = _table_bytes(conn, "events")
            batches = conn.execute(
                "SELECT count(*), coalesce(sum(length(payload)), 0), min(first_ts) FROM batches"
                " WHERE lane = ?",
                (lane,),
            ).fetchone()
            stamps = [t for t in (rows[1], batches[2]) if t is not None]
            lanes[lane] = {
                "rows": int(rows[0]),
                "row_bytes": row_bytes,
                "batches": int(batches[0]),
                "batch_bytes": int(batches[1]),
                "oldest_ts": min(stamps) if stamps else None,
                "last_seq": int(last_seq.get(lane, 0)),
            }
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot read the outbox: {exc}") from exc
    finally:
        conn.close()
    marks = read_marks(seq_path(path))
    quota = meta.get("quota_bytes")
    return {
        "path": str(path),
        "schema_version": version,
        "file_bytes": pages * page_size,
        "used_bytes": (pages - free) * page_size,
        "quota_bytes": None if quota is None else int(quota),
        "telemetry_refused": meta.get("outbox_full") == 1,
        "seq_reserved": None if marks is None else marks.reserved,
        "lanes": lanes,
    }


def _table_bytes(conn: sqlite3.Connection, table: str) -> int | None:
    """Pages a table occupies, where SQLite was built with the dbstat table (Debian's is)."""
    try:
        row = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (table,)).fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row[0] is None else int(row[0])


def _iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="seconds")


def _age(ts: float | None, now_s: float) -> str:
    if ts is None:
        return "-"
    seconds = max(0, int(now_s - ts))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


def format_stats(stats: dict[str, Any], *, now_s: float) -> str:
    quota = stats["quota_bytes"]
    used = stats["used_bytes"]
    share = f" ({100 * used / quota:.1f} % of quota {_mb(quota)})" if quota else ""
    lines = [
        f"outbox {stats['path']} (schema v{stats['schema_version']})",
        f"used {_mb(used)}{share}, file {_mb(stats['file_bytes'])}"
        + ("  TELEMETRY REFUSED: full of events" if stats["telemetry_refused"] else ""),
        f"{'lane':<10} {'rows':>10} {'row bytes':>11} {'batches':>8} {'batch bytes':>12} "
        f"{'last seq':>9}  oldest record",
    ]
    for lane, info in stats["lanes"].items():
        oldest = info["oldest_ts"]
        when = "-" if oldest is None else f"{_iso(oldest)} ({_age(oldest, now_s)} ago)"
        lines.append(
            f"{lane:<10} {info['rows']:>10} {_mb(info['row_bytes']):>11} {info['batches']:>8} "
            f"{_mb(info['batch_bytes']):>12} {info['last_seq']:>9}  {when}"
        )
    return "\n".join(lines)
