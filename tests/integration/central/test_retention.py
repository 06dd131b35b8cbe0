"""Retention per data class on both backends; on PostgreSQL by dropping whole partitions after the
finished days are rolled up into hourly aggregates."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from cloud_sync.central.config import RetentionConfig
from cloud_sync.central.storage.interface import CentralStorage, open_store
from cloud_sync.central.store import BatchMeta
from cloud_sync.ports import EventRow, Lane, TelemetryRow

DAY = 86400.0
NOW = 1_767_225_600.0 + 400 * DAY  # early February 2027


def meta(lane: Lane, seq: int) -> BatchMeta:
    return BatchMeta("gw-a", lane, seq, "k", NOW, False, bytes([seq]) * 32)


def fill(store: CentralStorage) -> None:
    ages = (200, 100, 10, 0.5)  # days before NOW
    for seq, age in enumerate(ages, start=1):
        t = NOW - age * DAY
        rows = [TelemetryRow("gw-a/p", float(i), 0, "", t + i * 60, None) for i in range(3)]
        store.store_batch(meta(Lane.TELEMETRY, seq), rows, transport="mqtt", received_at=t)
        alarm = EventRow("alarm.raised", f"fire.{seq}", t, {"to": "normal", "class": "fire"})
        store.store_batch(meta(Lane.EVENT, seq), [alarm], transport="mqtt", received_at=t)


async def partitions(url: str, table: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid=i.inhrelid"
            " WHERE i.inhparent=$1::regclass",
            table,
        )
    finally:
        await conn.close()
    return sorted(r[0] for r in rows)


async def test_each_data_class_keeps_its_own_age(tmp_path: Path, database: str | None) -> None:
    store = await asyncio.to_thread(open_store, database or tmp_path / "c.db")
    try:
        await asyncio.to_thread(fill, store)
        if database is not None:
            before = await partitions(database, "telemetry")
            assert len(before) == 5  # four days and the default partition
        keep = RetentionConfig(telemetry_days=30, hourly_days=150, events_days=180, alarms_days=180)
        await asyncio.to_thread(store.apply_retention, keep, NOW)
        history = await asyncio.to_thread(store.history, "gw-a/p", 0.0, NOW + DAY, 100)
        # Raw telemetry: only what is younger than 30 days is left.
        assert sorted({round((NOW - r["ts"]) / DAY) for r in history}) == [0, 10]
        events = await asyncio.to_thread(store.events, gateways=None, limit=100)
        # Alarm events (R3.5: >= 180 days): the 200-day-old one is gone, the 100-day-old one stays.
        assert sorted(round((NOW - e["ts"]) / DAY) for e in events) == [0, 10, 100]
        assert store.ack_position("gw-a", Lane.TELEMETRY) == (4, ())  # bookkeeping untouched
        if database is not None:
            after = await partitions(database, "telemetry")
            assert len(after) == 3 and set(after) < set(before)  # two whole days dropped
            conn = await asyncpg.connect(database)
            try:
                hours = await conn.fetch("SELECT hour, count, avg FROM telemetry_hourly ORDER BY hour")
            finally:
                await conn.close()
            # The 100-day-old hour survives as an aggregate (hourly_days=150); the 200-day one not.
            assert [(round((NOW - h["hour"]) / DAY), h["count"], h["avg"]) for h in hours] == [
                (100, 3, 1.0),
                (10, 3, 1.0),
            ]
    finally:
        await asyncio.to_thread(store.close)
