"""poll_scale: N simulated Modbus TCP devices x 30 holding registers polled every second.

The setup EMQ Neuron publishes (500 devices, 15,000 tags/s). The simulators run in a separate
process; this process *is* the gateway (the real ``Gateway`` with its outbox), so its CPU time
and RSS are the gateway's. Every register changes every second, so every tag is also reported
and committed to the outbox: the worst case for the reporter and the outbox.

Reports, per device count: CPU µs per tag, RSS, poll lateness p50/p99 (how late a poll started
against its schedule), tags/s achieved, and whether it kept up (no skipped ticks, ≥ 98 % of the
tags due). Usage: ``python -m bench.poll_scale [--main-s 60] [--step-s 20] [--counts 500,1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from ruamel.yaml import YAML

from edge.app import Gateway
from edge.config.loader import load_site
from edge.logs import configure_logging

RESULTS = Path(__file__).resolve().parent / "results"
PROFILES = Path(__file__).resolve().parent / "profiles"
POINTS_PER_DEVICE = 30


def _site(path: Path, count: int, base_port: int) -> Path:
    site = {
        "site": {"id": "bench"},
        "gateway": {"id": "gw-bench", "data_dir": str(path.parent / "data")},
        "profile_dirs": [str(PROFILES)],
        "buses": [{"id": "lan", "type": "modbus_tcp", "host": "127.0.0.1", "port": base_port}],
        "devices": [
            {"id": f"b{i:04d}", "bus": "lan", "port": base_port + i, "unit": 1, "profile": "bench-30hr"}
            for i in range(count)
        ],
    }
    with path.open("w") as fh:
        YAML().dump(site, fh)
    return path


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(count: int, warmup_s: float, window_s: float, base_port: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gh-poll-scale-") as tmp:
        site_path = _site(Path(tmp) / "site.yaml", count, base_port)
        # Popen only forks; the simulator runs beside this loop, which is what is measured.
        sim = subprocess.Popen(  # noqa: ASYNC220
            [
                sys.executable,
                "-m",
                "bench.poll_scale_sim",
                "--count",
                str(count),
                "--base-port",
                str(base_port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert sim.stdout is not None
            while True:
                line = await asyncio.to_thread(sim.stdout.readline)
                if not line:
                    raise RuntimeError("the simulator process did not start")
                if line.strip() == b"ready":
                    break
            site = load_site(site_path)
            proc = psutil.Process()
            async with Gateway(site) as gw:
                tags = 0

                def count_tags(batch: list[Any]) -> None:
                    nonlocal tags
                    tags += len(batch)

                gw.live.subscribe(count_tags)
                run = asyncio.create_task(gw.run(), name="gateway")
                await asyncio.sleep(warmup_s)
                assert gw.devices is not None
                coords = list(gw.devices.coordinators.values())
                for c in coords:
                    c.stats.lateness_s.clear()
                skipped0 = sum(c.stats.skipped_ticks for c in coords)
                tags0, cpu0, t0 = tags, time.process_time(), time.monotonic()
                rss_max = 0
                while time.monotonic() - t0 < window_s:
                    await asyncio.sleep(1.0)
                    rss_max = max(rss_max, proc.memory_info().rss)
                elapsed = time.monotonic() - t0
                cpu = time.process_time() - cpu0
                polled = tags - tags0
                lateness = [x for c in coords for x in c.stats.lateness_s]
                skipped = sum(c.stats.skipped_ticks for c in coords) - skipped0
                online = sum(1 for c in coords if c.online)
                gw.stop()
                await run
        finally:
            sim.terminate()
            sim.wait(10)
    due = count * POINTS_PER_DEVICE * elapsed
    return {
        "devices": count,
        "online": online,
        "window_s": round(elapsed, 1),
        "tags_per_s": round(polled / elapsed),
        "tags_due_per_s": count * POINTS_PER_DEVICE,
        "cpu_us_per_tag": round(cpu * 1e6 / polled, 2) if polled else None,
        "cpu_percent": round(100 * cpu / elapsed, 1),
        "rss_mb": round(rss_max / 2**20, 1),
        "lateness_p50_ms": round(_percentile(lateness, 0.50) * 1000, 2),
        "lateness_p99_ms": round(_percentile(lateness, 0.99) * 1000, 2),
        "lateness_mean_ms": round(statistics.fmean(lateness) * 1000, 2) if lateness else None,
        "skipped_ticks": skipped,
        "kept_up": skipped == 0 and polled >= 0.98 * due and online == count,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.poll_scale")
    parser.add_argument("--main-s", type=float, default=60.0, help="measurement window at 500 devices")
    parser.add_argument("--step-s", type=float, default=20.0, help="window for each scale step")
    parser.add_argument("--counts", default="1000,1667,2000,2500", help="scale steps after 500")
    parser.add_argument("--base-port", type=int, default=int(os.environ.get("GH_BENCH_PORT", "12000")))
    args = parser.parse_args(argv)
    configure_logging("warning")

    runs = [asyncio.run(_measure(500, 8.0, args.main_s, args.base_port))]
    print(json.dumps(runs[0]), flush=True)
    for count in (int(c) for c in args.counts.split(",") if c):
        result = asyncio.run(_measure(count, 8.0, args.step_s, args.base_port))
        print(json.dumps(result), flush=True)
        runs.append(result)
        if not result["kept_up"]:
            break
    kept = [r for r in runs if r["kept_up"]]
    main_run = runs[0]
    summary = {
        "cpu_us_per_tag_at_500": main_run["cpu_us_per_tag"],
        "rss_mb_at_500": main_run["rss_mb"],
        "lateness_p50_ms_at_500": main_run["lateness_p50_ms"],
        "lateness_p99_ms_at_500": main_run["lateness_p99_ms"],
        "largest_device_count_kept_up": max((r["devices"] for r in kept), default=0),
        "largest_tags_per_s_kept_up": max((r["tags_per_s"] for r in kept), default=0),
    }
    print("poll_scale summary:", json.dumps(summary))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "poll_scale.json").write_text(
        json.dumps(
            {
                "benchmark": "poll_scale",
                "targets": {"cpu_us_per_tag": 20, "rss_mb": 80, "p99_lateness_ms": 50, "tags_per_s": 50000},
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                "summary": summary,
                "runs": runs,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
