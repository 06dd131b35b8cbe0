"""Which waiting rows go into the next sealed batch, and how they are read back as rows.

Runs inside ``OutboxDb.seal``'s transaction on the database thread; returns the decoded rows and
the statement that removes exactly those rows once the batch is stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from cloud_sync.envelope import TelemetryColumns
from cloud_sync.ports import EventRow, Lane, SealMode, TelemetryRow
from edge.outbox.live_tail import LiveTail, TailRow
from edge.outbox.schema import BOOL_FLAG, NAN_FLAG, decode_flags, decode_value

__all__ = ["Taken", "take_from_tail", "take_rows"]

_SPECIAL_FLAGS = BOOL_FLAG | NAN_FLAG
_TELEMETRY_COLS = "id, point, value, flags, receipt_ts, source_ts"


@dataclass(frozen=True, slots=True)
class Taken:
    rows: TelemetryColumns | list[EventRow]
    first_ts: float
    last_ts: float
    delete_sql: str
    delete_args: tuple[Any, ...]
    last_id: int  # the newest row taken: none newer is deleted with them


def live_start_id(conn: sqlite3.Connection, cutoff_ts: float) -> int:
    """The first telemetry row id whose receipt time is at or after ``cutoff_ts``.

    Rows are appended in arrival order, so receipt times grow with the id and a binary search
    over ids replaces an index on ``receipt_ts`` (which would slow every insert). A late row
    with an old receipt time is simply not live; BACKLOG takes it.
    """
    # Two statements, not "SELECT min(id), max(id)": SQLite answers a lone min() or max() of the
    # rowid from the b-tree's edge, but both in one query scan the whole table (116 ms at 2 M
    # rows, on every LIVE seal: it starved the uplink exactly when a backlog had built up).
    first = conn.execute("SELECT min(id) FROM telemetry").fetchone()[0]
    if first is None:
        return 0
    lo, hi = int(first), int(conn.execute("SELECT max(id) FROM telemetry").fetchone()[0]) + 1
    probe = "SELECT id, receipt_ts FROM telemetry WHERE id >= ? ORDER BY id LIMIT 1"
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute(probe, (mid,)).fetchone()
        if row is None or row[1] >= cutoff_ts:
            hi = mid
        else:
            lo = int(row[0]) + 1
    return lo


def telemetry_columns(raw: list[tuple[Any, ...]], names: Sequence[str]) -> TelemetryColumns:
    """The rows as columns for the sealer (``cloud_sync.envelope.TelemetryColumns``): transposed
    in C (``zip``), flags decoded once per distinct value, values fixed only where flagged."""
    _ids, points, values, flags, receipt, source = (list(col) for col in zip(*raw, strict=True))
    return _columns(points, values, flags, receipt, source, names)


def tail_columns(rows: Sequence[TailRow], names: Sequence[str]) -> TelemetryColumns:
    """``telemetry_columns`` of rows as they were bound to SQLite (no id), from the live tail."""
    points, values, flags, receipt, source = (list(col) for col in zip(*rows, strict=True))
    return _columns(points, values, flags, receipt, source, names)


def _columns(
    points: list[int],
    values: list[Any],
    flags: list[int],
    receipt: list[float],
    source: list[float | None],
    names: Sequence[str],
) -> TelemetryColumns:
    index: dict[int, int] = {}
    p = [index.setdefault(point, len(index)) for point in points]
    decoded = {f: decode_flags(f) for f in set(flags)}
    if any(f & _SPECIAL_FLAGS for f in decoded):
        values = [decode_value(v, f) if f & _SPECIAL_FLAGS else v for v, f in zip(values, flags, strict=True)]
    return TelemetryColumns(
        [names[point] for point in index],
        p,
        values,
        [decoded[f][0] for f in flags],
        [decoded[f][1] for f in flags],
        receipt,
        source,
    )


def decode_telemetry(raw: list[tuple[Any, ...]], names: Sequence[str]) -> list[TelemetryRow]:
    out: list[TelemetryRow] = []
    for _id, point, value, flags, receipt_ts, source_ts in raw:
        quality, reason = decode_flags(flags)
        if flags & _SPECIAL_FLAGS:
            value = decode_value(value, flags)
        out.append(TelemetryRow(names[point], value, quality, reason, receipt_ts, source_ts))
    return out


def take_from_tail(
    tail: LiveTail, *, max_records: int, cutoff_ts: float, names: Sequence[str]
) -> Taken | None:
    """LIVE telemetry from the rows the outbox just wrote (``edge.outbox.live_tail``): the same
    rows a LIVE read would find when the tail reaches back to the live window, deleted by id."""
    found = tail.take(max_records, cutoff_ts)
    if found is None or not found[1]:
        return None
    first_id, rows = found
    columns = tail_columns(rows, names)
    return Taken(
        columns,
        min(columns.receipt),
        max(columns.receipt),
        "DELETE FROM telemetry WHERE id BETWEEN ? AND ?",
        (first_id, first_id + len(rows) - 1),
        first_id + len(rows) - 1,
    )


def take_rows(
    conn: sqlite3.Connection,
    lane: Lane,
    mode: SealMode,
    *,
    max_records: int,
    cutoff_ts: float,
    names: Sequence[str],
) -> Taken | None:
    """LIVE telemetry: the oldest of the rows received since ``cutoff_ts``; BACKLOG telemetry:
    the oldest rows; events: always the oldest (an alarm never overtakes an earlier one)."""
    if lane is Lane.EVENT:
        raw = conn.execute(
            "SELECT id, kind, source, ts, data FROM events ORDER BY id LIMIT ?", (max_records,)
        ).fetchall()
        if not raw:
            return None
        events = [EventRow(k, s, ts, msgpack.unpackb(d, raw=False)) for _i, k, s, ts, d in raw]
        stamps = [r.ts for r in events]
        last = raw[-1][0]
        return Taken(events, min(stamps), max(stamps), "DELETE FROM events WHERE id <= ?", (last,), last)
    if mode is SealMode.LIVE:
        start = live_start_id(conn, cutoff_ts)
        raw = conn.execute(
            f"SELECT {_TELEMETRY_COLS} FROM telemetry WHERE id >= ? AND receipt_ts >= ? ORDER BY id LIMIT ?",
            (start, cutoff_ts, max_records),
        ).fetchall()
        # Exactly the rows selected: those of the id span that pass the same time filter.
        delete = "DELETE FROM telemetry WHERE id BETWEEN ? AND ? AND receipt_ts >= ?"
        args: tuple[Any, ...] = (raw[0][0], raw[-1][0], cutoff_ts) if raw else ()
    else:
        raw = conn.execute(
            f"SELECT {_TELEMETRY_COLS} FROM telemetry ORDER BY id LIMIT ?", (max_records,)
        ).fetchall()
        delete = "DELETE FROM telemetry WHERE id <= ?"
        args = (raw[-1][0],) if raw else ()
    if not raw:
        return None
    columns = telemetry_columns(raw, names)
    return Taken(columns, min(columns.receipt), max(columns.receipt), delete, args, raw[-1][0])
