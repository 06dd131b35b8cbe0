"""Central's read side on PostgreSQL at scale: one point's 30-day history and fleet-wide alarm
statistics over a large, day-partitioned telemetry table.

The data are made inside the server (``INSERT ... SELECT generate_series`` straight into each day's
partition, faster than any client COPY), then ANALYZEd; the timed calls are the storage methods
the REST API calls (``history``, ``history_buckets``, ``alarm_counts``), each repeated over
several points and reported as median and worst.

Run: ``.venv/bin/python -m bench.central_query [ROWS_MILLIONS]`` (default 50); writes
``bench/results/central_query.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from cloud_sync.central.storage.postgres import PostgresStore
from cloud_sync.central.storage.postgres_schema import TELEMETRY, partition_bounds, partition_name
from tests.pg import start_postgres

RESULTS_NAME = "central_query.json"
DAYS = 30
POINTS = 5_000
GATEWAYS = 1_000
ALARMS = 300_000
END = 1_767_225_600.0  # 2026-01-01T00:00:00Z
START = END - DAYS * 86400.0
CLASSES = ("fire", "intrusion", "hvac", "power", "water", "lift")
PRIORITIES = ("critical", "high", "medium", "low")


async def _load(url: str, rows: int) -> dict[str, float]:
    per_point_per_day = max(1, rows // (POINTS * DAYS))
    interval = 86400.0 / per_point_per_day
    conn = await asyncpg.connect(url)
    timings: dict[str, float] = {}
    try:
        start = time.perf_counter()
        await conn.execute(
            "INSERT INTO points (id, point_id, gateway_id)"
            " SELECT p, 'gw-' || (p % $2) || '/dev' || p || '/value',"
            " 'gw-' || (p % $2) FROM generate_series(1, $1) p",
            POINTS,
            GATEWAYS,
        )
        for day in range(DAYS):
            day_start = START + day * 86400.0
            _, _, suffix = partition_bounds(TELEMETRY, day_start)
            name = partition_name(TELEMETRY, suffix)
            await conn.execute(
                f"INSERT INTO {name} (point, ts, source_ts, vnum, vtext, vkind, quality, reason,"
                " historical, seq)"
                " SELECT p, $1 + k * $2 + p * 0.0001, NULL, (p + k) % 1000 * 0.1, NULL, 3, 0, '', false, k"
                " FROM generate_series(0, $3 - 1) k, generate_series(1, $4) p",
                day_start,
                interval,
                per_point_per_day,
                POINTS,
            )
            print(f"  day {day + 1}/{DAYS} loaded ({time.perf_counter() - start:.0f} s)", flush=True)
        timings["telemetry_load_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        await conn.execute(
            "INSERT INTO alarms (gateway_id, alarm_key, point_id, alarm_class, priority, state, message,"
            " raised_at, acked_at, acked_by, cleared_at, updated_at, version)"
            " SELECT 'gw-' || (i % $2), 'a' || i, NULL, ($3::text[])[1 + i % 6], ($4::text[])[1 + i % 4],"
            " CASE WHEN i % 50 = 0 THEN 'active_unacked' ELSE 'closed' END, 'alarm',"
            " $5 + (i::bigint * 7919 % $6),"
            " NULL, NULL, NULL, $5 + (i::bigint * 7919 % $6), i FROM generate_series(1, $1) i",
            ALARMS,
            GATEWAYS,
            list(CLASSES),
            list(PRIORITIES),
            START,
            int(DAYS * 86400),
        )
        await conn.execute("ANALYZE")
        timings["alarms_load_s"] = round(time.perf_counter() - start, 1)
        timings["telemetry_rows"] = await conn.fetchval("SELECT count(*) FROM telemetry")
        timings["table_bytes"] = int(
            await conn.fetchval(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i"
                " JOIN pg_class c ON c.oid=i.inhrelid"
                " WHERE i.inhparent='telemetry'::regclass"
            )
        )
    finally:
        await conn.close()
    return timings


def _timed(fn: Any, runs: list[Any]) -> dict[str, float]:
    times = []
    for args in runs:
        start = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "median_ms": round(statistics.median(times), 1),
        "max_ms": round(max(times), 1),
        "runs": len(times),
    }


def main(argv: list[str]) -> dict[str, Any]:
    millions = float(argv[0]) if argv else 50.0
    rows = int(millions * 1_000_000)
    with start_postgres() as pg:
        url = pg.create_database()
        store = PostgresStore(url)
        try:
            store._run(store._ensure_partitions(TELEMETRY, [START + d * 86400.0 for d in range(DAYS)]))
            load = asyncio.run(_load(url, rows))
            print(f"  loaded: {load}", flush=True)
            points = [f"gw-{p % GATEWAYS}/dev{p}/value" for p in range(1, POINTS, POINTS // 9)]
            samples = len(store.history(points[0], START, END, 1_000_000))
            history = _timed(store.history, [(p, START, END, 100_000) for p in points])
            buckets = _timed(store.history_buckets, [(p, START, END, 3600.0) for p in points])
            stats_class = _timed(
                lambda: store.alarm_counts(gateways=None, start=START, end=END, by="class"), [()] * 5
            )
            stats_day = _timed(
                lambda: store.alarm_counts(gateways=None, start=START, end=END, by="day"), [()] * 5
            )
        finally:
            store.close()
    out = {
        "summary": {
            "telemetry_rows": load["telemetry_rows"],
            "history_30d_median_ms": history["median_ms"],
            "alarm_stats_by_class_median_ms": stats_class["median_ms"],
        },
        "targets": {"history_30d_ms": 300, "alarm_stats_ms": 1000},
        "load": load,
        "samples_per_point_30d": samples,
        "history_30d_raw": history,
        "history_30d_hourly_buckets": buckets,
        "alarm_stats_by_class": stats_class,
        "alarm_stats_by_day": stats_day,
        "alarms": ALARMS,
        "points": POINTS,
        "gateways": GATEWAYS,
        "postgresql": "15 (Debian), private, default settings but shared_buffers=128MB",
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }
    print(json.dumps(out, indent=2), flush=True)
    path = Path(__file__).resolve().parent / "results" / RESULTS_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
