"""Shared bits of the outbox tests: a trivial sealer and direct reads of the database file."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack

from cloud_sync.ports import EventRow, Lane, TelemetryRow
from core.model import Event, Quality, Sample

T0 = 1_767_225_600.0


def sealer(
    *,
    lane: Lane,
    seq: int,
    rows: Sequence[TelemetryRow] | Sequence[EventRow],
    historical: bool,
    sealed_at: float,
) -> bytes:
    """Deterministic bytes that carry every field, so tests can decode what was sealed."""
    body = [
        [r.point_id, r.value, r.quality, r.reason, r.receipt_ts, r.source_ts]
        if isinstance(r, TelemetryRow)
        else [r.kind, r.source, r.ts, r.data]
        for r in rows
    ]
    packed: bytes = msgpack.packb(
        {"lane": lane.value, "seq": seq, "historical": historical, "sealed_at": sealed_at, "rows": body}
    )
    return packed


def unseal(payload: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = msgpack.unpackb(payload, raw=False)
    return decoded


def sample(n: int, *, points: int = 10, ts: float | None = None) -> Sample:
    return Sample(f"site/dev{n % points}/p", float(n), Quality.GOOD, T0 + n * 0.001 if ts is None else ts)


def event(n: int, *, kind: str = "alarm.raised", size: int = 0) -> Event:
    return Event(kind, f"site/dev/p{n}", T0 + n, {"n": n, "pad": "x" * size})


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the file with a separate connection, as a restarted process would."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def events_of_kind(db: Path, kind: str) -> list[dict[str, Any]]:
    """Data of the stored events of ``kind``, in rows and in sealed event batches."""
    found: list[dict[str, Any]] = []
    for (payload,) in query(db, "SELECT payload FROM batches WHERE lane = 'event' ORDER BY seq"):
        found.extend(r[3] for r in unseal(payload)["rows"] if r[0] == kind)
    for (data,) in query(db, "SELECT data FROM events WHERE kind = ? ORDER BY id", kind):
        found.append(msgpack.unpackb(data, raw=False))
    return found
