"""End-to-end uplink throughput and alarm latency over a real TLS Mosquitto.

Pipeline measured: SQLite outbox (edge.outbox.Outbox, pre-filled) → seal (msgpack + zstd +
Ed25519, on the outbox's thread) → MQTT v5 QoS 1 over TLS → a test central that verifies every
signature and acks → outbox deletes. Reported:

* ``points_per_s``: samples delivered and acknowledged per second while draining a backlog;
* ``alarm_latency_ms``: from ``put_event`` + flush of an alarm in the middle of that drain to its
  arrival at central (median and worst of several alarms).

Run: ``.venv/bin/python -m bench.uplink [POINTS]``; writes ``bench/results/uplink.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from cloud_sync.ports import Lane
from cloud_sync.uplink import Uplink
from core.model import Event, Quality, Sample
from edge.outbox import Outbox
from tests.broker import start_broker
from tests.integration.sync.fake_central import FakeCentral
from tests.integration.sync.helpers import signing_key, uplink_config
from tests.support import wait_until

RESULTS = Path(__file__).resolve().parent / "results" / "uplink.json"
GW = "gw-a"


async def _fill(outbox: Outbox, points: int, ts0: float) -> None:
    chunk = 10_000
    for start in range(0, points, chunk):
        n = min(chunk, points - start)
        await outbox.put_samples(
            [
                Sample(f"estate/meter-{i % 200}/power_w", float(i), Quality.GOOD, ts0 + i * 1e-4)
                for i in range(start, start + n)
            ]
        )
    await outbox.flush()


def _at_least(central: FakeCentral, lane: Lane, count: int) -> bool:
    return len(central.seqs(GW, lane)) >= count


async def _run(points: int, workdir: Path) -> dict[str, Any]:
    broker = start_broker(workdir / "mq")
    try:
        key_path, key = signing_key(workdir)
        config = uplink_config(
            broker, key_path, batch_max_records=5_000, inflight_window=32, idle_poll_s=0.05
        )
        async with Outbox(workdir / "outbox.db", queue_size=200_000, commit_batch=10_000) as outbox:
            await _fill(outbox, points, ts0=time.time() - 3600)  # an hour old: a backlog
            batches = -(-points // 5_000)
            async with FakeCentral(broker, {GW: key.public_key()}) as central:
                started = time.perf_counter()
                async with Uplink(config, store=outbox) as uplink:
                    latencies_ms: list[float] = []
                    for n in range(5):
                        target = batches * (n + 1) // 7
                        await wait_until(
                            partial(_at_least, central, Lane.TELEMETRY, target),
                            timeout_s=600,
                            message="drain progress",
                        )
                        put_at = time.monotonic()
                        await outbox.put_event(
                            Event("alarm.raised", "estate/tank-1/level", time.time(), {"n": n})
                        )
                        await outbox.flush()
                        uplink.wake()
                        await wait_until(
                            partial(_at_least, central, Lane.EVENT, n + 1),
                            timeout_s=60,
                            message="alarm",
                        )
                        arrival = central.arrivals_of(GW, Lane.EVENT)[-1].at
                        latencies_ms.append((arrival - put_at) * 1000)
                    await wait_until(
                        lambda: central.acked(GW, Lane.TELEMETRY) >= batches,
                        timeout_s=600,
                        message="all acked",
                    )

                    async def drained() -> bool:
                        return not await outbox.pending(Lane.TELEMETRY, limit=1)

                    await wait_until(drained, timeout_s=120, message="outbox empty")
                    elapsed_s = time.perf_counter() - started
                    status = uplink.status()
        return {
            "points": points,
            "batches": batches,
            "batch_max_records": 5_000,
            "inflight_window": 32,
            "elapsed_s": round(elapsed_s, 3),
            "points_per_s": round(points / elapsed_s),
            "batches_per_s": round(batches / elapsed_s, 1),
            "alarm_latency_ms": {
                "median": round(statistics.median(latencies_ms), 1),
                "max": round(max(latencies_ms), 1),
                "all": [round(x, 1) for x in latencies_ms],
            },
            "resends": status["counters"]["resends"],
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        }
    finally:
        broker.stop()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = sys.argv[1:] if argv is None else argv
    points = int(args[0]) if args else 500_000
    with tempfile.TemporaryDirectory(prefix="bench-uplink-") as tmp:
        result = asyncio.run(_run(points, Path(tmp)))
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
