"""Sustained samples/s into the outbox with durable commits, and batch-seal throughput.

Phases (each on a fresh database in a temporary folder):

- ``bulk``: ``put_samples`` of 1,000 samples at a time (what the reporter hands over per poll
  round of a large site) for ``--seconds`` (default 12 s), then ``flush()``; the rate counts only
  samples whose commit had returned. WAL, ``synchronous=NORMAL`` (the default: durable against
  a process kill, see ``edge.outbox.store``). Target: ≥ 200,000 samples/s.
- ``bulk_full``: the same with ``synchronous=FULL`` (an fsync per group commit), shorter.
- ``single``: ``put_sample`` one at a time, the per-call path.
- ``seal``: seal the bulk phase's backlog in 1,000-row BACKLOG batches with a trivial sealer
  (constant bytes) and with a msgpack sealer (closer to the real envelope, minus signing).

The samples are built before timing (2,000 points, floats, good quality): producing them is the
pollers' cost, not the outbox's.

Run: ``.venv/bin/python -m bench.outbox [--seconds S]``; writes ``bench/results/outbox.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import msgpack

from cloud_sync.ports import EventRow, Lane, SealMode, TelemetryRow
from core.model import Quality, Sample
from edge.outbox import Outbox

RESULTS = Path(__file__).resolve().parent / "results" / "outbox.json"
TARGET_SAMPLES_PER_S = 200_000
CHUNK = 1_000
POINTS = 2_000
T0 = 1_767_225_600.0


def _pool(size: int) -> list[list[Sample]]:
    samples = [
        Sample(f"estate/meter{n % POINTS // 10}/p{n % 10}", n * 0.5, Quality.GOOD, T0 + n * 1e-4)
        for n in range(size)
    ]
    return [samples[i : i + CHUNK] for i in range(0, size, CHUNK)]


def _trivial_sealer(
    *,
    lane: Lane,
    seq: int,
    rows: Sequence[TelemetryRow] | Sequence[EventRow],
    historical: bool,
    sealed_at: float,
) -> bytes:
    return b"batch-%d-%d" % (seq, len(rows))


def _msgpack_sealer(
    *,
    lane: Lane,
    seq: int,
    rows: Sequence[TelemetryRow] | Sequence[EventRow],
    historical: bool,
    sealed_at: float,
) -> bytes:
    columns = list(zip(*[(r.point_id, r.value, r.quality, r.receipt_ts) for r in rows], strict=True))  # type: ignore[union-attr]
    packed: bytes = msgpack.packb({"lane": lane.value, "seq": seq, "columns": columns})
    return packed


async def _bulk(
    db: Path, seconds: float, synchronous: Literal["normal", "full"], pool: list[list[Sample]]
) -> dict[str, Any]:
    async with Outbox(db, synchronous=synchronous, queue_size=50_000, commit_batch=5_000) as ob:
        put = 0
        started = time.perf_counter()
        deadline = started + seconds
        i = 0
        while time.perf_counter() < deadline:
            for _ in range(50):
                await ob.put_samples(pool[i % len(pool)])
                i += 1
            put += 50 * CHUNK
        await ob.flush()
        elapsed = time.perf_counter() - started
        backlog = await ob.backlog()
        commits = ob.commits
    size = _file_bytes(db)
    return {
        "synchronous": synchronous,
        "samples": put,
        "seconds": round(elapsed, 2),
        "samples_per_s": round(put / elapsed),
        "commits": commits,
        "samples_per_commit": round(put / max(commits, 1)),
        "bytes_per_sample": round(backlog["used_bytes"] / put, 1),
        "file_bytes": size,
    }


def _file_bytes(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def _single(db: Path, seconds: float, pool: list[list[Sample]]) -> dict[str, Any]:
    flat = [s for chunk in pool[:200] for s in chunk]
    async with Outbox(db) as ob:
        put = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            for s in flat[(put % len(flat)) : (put % len(flat)) + 10_000]:
                await ob.put_sample(s)
                put += 1
        await ob.flush()
        elapsed = time.perf_counter() - started
    return {"samples": put, "seconds": round(elapsed, 2), "samples_per_s": round(put / elapsed)}


async def _seal(db: Path, sealer_name: str, max_rows: int) -> dict[str, Any]:
    sealer = _trivial_sealer if sealer_name == "trivial" else _msgpack_sealer
    async with Outbox(db) as ob:
        rows = batches = 0
        started = time.perf_counter()
        while rows < max_rows:
            batch = await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=CHUNK, sealer=sealer)
            if batch is None:
                break
            rows += batch.record_count
            batches += 1
        elapsed = time.perf_counter() - started
        # Acknowledge them all, as central would, to time the delete.
        ack_started = time.perf_counter()
        await ob.acknowledge(Lane.TELEMETRY, batch.seq if batch else 0)
        ack_s = time.perf_counter() - ack_started
    return {
        "sealer": sealer_name,
        "rows": rows,
        "batches": batches,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed),
        "batches_per_s": round(batches / elapsed),
        "acknowledge_all_s": round(ack_s, 3),
    }


def _report_seal(result: dict[str, Any]) -> None:
    print(
        f"seal, {result['sealer']} sealer: {result['rows_per_s']:,} rows/s "
        f"({result['batches_per_s']:,} batches/s)"
    )


async def _run(seconds: float) -> dict[str, Any]:
    pool = _pool(200_000)
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        folder = Path(tmp)
        bulk = await _bulk(folder / "bulk.db", seconds, "normal", pool)
        print(
            f"bulk (synchronous=NORMAL): {bulk['samples_per_s']:,} samples/s, "
            f"{bulk['samples_per_commit']:,} per commit, {bulk['bytes_per_sample']} B/sample"
        )
        seal_trivial = await _seal(folder / "bulk.db", "trivial", 1_000_000)
        _report_seal(seal_trivial)
        seal_msgpack = await _seal(folder / "bulk.db", "msgpack", 1_000_000)
        _report_seal(seal_msgpack)
        full = await _bulk(folder / "full.db", max(3.0, seconds / 3), "full", pool)
        print(f"bulk (synchronous=FULL): {full['samples_per_s']:,} samples/s, {full['commits']:,} commits")
        single = await _single(folder / "single.db", max(3.0, seconds / 3), pool)
        print(f"single put_sample: {single['samples_per_s']:,} samples/s")
    return {
        "summary": {
            "samples_per_s": bulk["samples_per_s"],
            "target_samples_per_s": TARGET_SAMPLES_PER_S,
            "met": bulk["samples_per_s"] >= TARGET_SAMPLES_PER_S,
            "samples_per_s_sync_full": full["samples_per_s"],
            "seal_rows_per_s": seal_trivial["rows_per_s"],
        },
        "bulk": bulk,
        "bulk_full": full,
        "single": single,
        "seal_trivial": seal_trivial,
        "seal_msgpack": seal_msgpack,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "platform": platform.platform(),
        },
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench.outbox", description=__doc__.split("\n")[0] if __doc__ else None
    )
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the bulk phase")
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args.seconds))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    summary = result["summary"]
    verdict = "meets" if summary["met"] else "MISSES"
    print(
        f"{summary['samples_per_s']:,} samples/s {verdict} the target of {TARGET_SAMPLES_PER_S:,}; "
        f"saved {RESULTS}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
