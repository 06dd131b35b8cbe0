"""Event-loop lag while the dashboard searches a big alarm history (issue 17, item 5).

The gateway's event loop also polls the devices, so a dashboard query that runs on it delays
every poll tick by the query's duration. This fills a real rules store (``rules.db``, the
schema the gateway writes) with ``ROWS`` history rows and times, for three queries (the text
search the history view sends, a key-paged next page, the 100,000-row CSV read):

* the query itself;
* the worst lateness of a 10 ms ticker (a stand-in for a poll loop) while the query runs
  (a) on the loop, as the dashboard did before, and (b) on a worker thread, as it does now
  (the CSV read in pages of 5,000 by key, as the export now does).

Run: ``python -m bench.dashboard_loop_lag [ROWS]``; saves ``bench/results/dashboard_loop_lag.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.rules_host.store import RulesStore

RESULTS = Path(__file__).resolve().parent / "results" / "dashboard_loop_lag.json"
ROWS = 300_000
TICK_S = 0.010
T0 = 1_767_225_600.0


async def fill(path: Path, rows: int) -> RulesStore:
    store = RulesStore(path, "bench")
    await store.open()
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executemany(
            "INSERT INTO alarm_history (ts, key, transition, by, priority, class, message_zh, message_en,"
            " point, zone, device, value, comment, drill) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
            (
                (
                    T0 + i,
                    f"bench/dev{i % 500}/p{i % 7}/hi",
                    ("raised", "acked", "cleared")[i % 3],
                    "system",
                    "high",
                    "fault",
                    f"{i % 500}号设备温度高",
                    f"device {i % 500} temperature high",
                    f"bench/dev{i % 500}/p{i % 7}",
                    f"Z{i % 40}",
                    f"dev{i % 500}",
                    "1.5",
                    "",
                )
                for i in range(rows)
            ),
        )
        conn.commit()
    store = RulesStore(path, "bench")
    await store.open()
    return store


async def lag_during(work: Callable[[], Any], *, threaded: bool) -> dict[str, float]:
    """Run ``work`` once (inline or on a thread) beside a 10 ms ticker; the ticker's worst delay."""
    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not stop.is_set():
            due = time.perf_counter() + TICK_S
            await asyncio.sleep(TICK_S)
            worst = max(worst, time.perf_counter() - due)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(5 * TICK_S)
    worst = 0.0
    started = time.perf_counter()
    if threaded:
        await asyncio.to_thread(work)
    else:
        work()
    took = time.perf_counter() - started
    await asyncio.sleep(2 * TICK_S)
    stop.set()
    await tick
    return {"query_ms": round(took * 1000, 1), "worst_tick_lag_ms": round(worst * 1000, 1)}


async def run(rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gh-bench-lag-") as tmp:
        store = await fill(Path(tmp) / "rules.db", rows)
        try:
            first = store.history(limit=200)
            cursor = (first[-1]["ts"], first[-1]["id"])

            def csv_pages() -> None:
                # what the CSV export does now: pages of 5,000 by key (edge.dashboard.routes_alarms)
                before: tuple[float, int] | None = None
                for _ in range(20):
                    rows = store.history(limit=5000, before=before)
                    if len(rows) < 5000:
                        return
                    before = (rows[-1]["ts"], rows[-1]["id"])

            # (before: on the loop, after: on a worker thread)
            queries: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
                # a text nobody wrote: the unanchored match scans every row (the worst case)
                "text_search": (lambda: store.history(text="no such text", limit=200),) * 2,
                "next_page_by_key": (lambda: store.history(limit=200, before=cursor),) * 2,
                "page_by_offset_50k": (lambda: store.history(limit=200, offset=50_000),) * 2,
                "csv_100k_rows": (lambda: store.history(limit=100_000), csv_pages),
            }
            out: dict[str, Any] = {}
            for name, (before_fix, after_fix) in queries.items():
                before_fix()  # warm the page cache
                out[name] = {
                    "on_loop": await lag_during(before_fix, threaded=False),
                    "worker_thread": await lag_during(after_fix, threaded=True),
                }
            return out
        finally:
            await store.close()


def main(argv: list[str]) -> dict[str, Any]:
    rows = int(argv[0]) if argv else ROWS
    runs = asyncio.run(run(rows))
    summary = {
        f"{name}_tick_lag_ms": {
            "on_loop": r["on_loop"]["worst_tick_lag_ms"],
            "thread": r["worker_thread"]["worst_tick_lag_ms"],
        }
        for name, r in runs.items()
    }
    print(f"alarm history rows: {rows:,}; ticker every {TICK_S * 1000:.0f} ms")
    print(f"{'query':<20}{'query ms':>10}{'lag on loop':>14}{'lag, thread':>14}")
    for name, r in runs.items():
        print(
            f"{name:<20}{r['on_loop']['query_ms']:>10.1f}{r['on_loop']['worst_tick_lag_ms']:>12.1f} ms"
            f"{r['worker_thread']['worst_tick_lag_ms']:>12.1f} ms"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "bench": "dashboard_loop_lag",
                "rows": rows,
                "tick_ms": TICK_S * 1000,
                "machine": {
                    "python": platform.python_version(),
                    "cpu": platform.processor() or platform.machine(),
                },
                "summary": summary,
                "runs": runs,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
