"""bacnet_cov: latency from a value change in a simulated BACnet device to its ``Reading`` out of
the driver's ``pushed()``, with 2,000 objects subscribed (20 devices × 100 analog inputs,
confirmed COV). Target: p99 ≤ 200 ms.

Simulator and gateway share this process (the change time and the arrival time are read from
one clock); changes come at ``--rate`` per second on random objects.

Run: ``.venv/bin/python -m bench.bacnet_cov [--changes N] [--rate R]``; writes
``bench/results/bacnet_cov.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "bacnet_cov.json"
TARGET_P99_MS = 200.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(devices: int, objects: int, changes: int, rate: float) -> dict[str, Any]:
    from core.model import Event, SystemClock
    from drivers.bacnet.config import BacnetBus
    from drivers.bacnet.device import BacnetDevice
    from drivers.bacnet.plugin import open_bacnet_bus
    from drivers.registry import BusContext
    from simulators.bacnet import BacnetSimulator, PointBank, SimSpec
    from simulators.bacnet.sitegen import points_of, resolved_device

    async def no_events(event: Event) -> None:
        return None

    specs = [SimSpec(5000 + i, PointBank(count=objects)) for i in range(devices)]
    async with BacnetSimulator(specs, tick_s=3600) as sim:
        bus = BacnetBus(id="bench", type="bacnet_ip", address="127.0.0.1", port=0, timeout_ms=3000, retries=1)
        points = points_of(PointBank(count=objects), cov=True)
        resolved = [
            resolved_device(
                f"d{s.instance}", bus, s.instance, points, address=sim.address(s.instance), cov_lifetime_s=600
            )
            for s in specs
        ]
        ctx = BusContext(events=no_events, clock=SystemClock(), site_dir=Path("."), data_dir=Path("."))
        sent: dict[tuple[str, str, float], float] = {}
        latencies: list[float] = []

        async def consume(device: BacnetDevice) -> None:
            async for item in device.pushed():
                for reading in item if isinstance(item, list) else ():
                    if isinstance(reading.value, float):
                        t0 = sent.pop((device.device_id, reading.key, reading.value), None)
                        if t0 is not None:
                            latencies.append(time.monotonic() - t0)

        async with open_bacnet_bus(bus, resolved, ctx) as drivers:
            bn = [d for d in drivers.values() if isinstance(d, BacnetDevice)]
            consumers = [asyncio.create_task(consume(d)) for d in bn]
            t_sub = time.monotonic()
            for device in bn:
                for group in device.poll_groups():
                    await device.read(group)
            cov = bn[0].cov
            deadline = time.monotonic() + 120
            while sum(1 for s in cov.subs.values() if s.state == "active") < devices * objects:
                if time.monotonic() > deadline:
                    raise RuntimeError("not every object subscribed within 120 s")
                await asyncio.sleep(0.1)
            subscribe_s = time.monotonic() - t_sub
            print(f"{devices * objects:,} subscriptions in {subscribe_s:.1f} s", flush=True)
            await asyncio.sleep(1.0)  # initial notifications drain
            rng = random.Random(7)
            for n in range(changes):
                s = rng.choice(specs)
                i = rng.randrange(1, objects + 1)
                value = float(100_000 + n)
                sent[(f"d{s.instance}", f"ai-{i}", value)] = time.monotonic()
                sim.set(s.instance, f"analog-input,{i}", value)
                await asyncio.sleep(1.0 / rate)
            for _ in range(200):  # up to 10 s for the last notifications
                if not sent:
                    break
                await asyncio.sleep(0.05)
            for task in consumers:
                task.cancel()
            await asyncio.gather(*consumers, return_exceptions=True)
        lost = len(sent)
    ms = [x * 1000 for x in latencies]
    return {
        "subscriptions": devices * objects,
        "subscribe_s": round(subscribe_s, 2),
        "changes": changes,
        "delivered": len(ms),
        "lost": lost,
        "p50_ms": round(_pct(ms, 0.50), 1) if ms else None,
        "p99_ms": round(_pct(ms, 0.99), 1) if ms else None,
        "max_ms": round(max(ms), 1) if ms else None,
        "rate_per_s": rate,
    }


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench.bacnet_cov")
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="value changes per second")
    args = parser.parse_args(argv)
    figures = asyncio.run(_run(args.devices, args.objects, args.changes, args.rate))
    p99 = figures["p99_ms"]
    print(
        f"COV: p50 {figures['p50_ms']} ms, p99 {p99} ms, max {figures['max_ms']} ms "
        f"({figures['delivered']}/{figures['changes']} delivered; target p99 ≤ {TARGET_P99_MS:g} ms)"
    )
    result = {
        "summary": {
            "p50_ms": figures["p50_ms"],
            "p99_ms": p99,
            "target_p99_ms": TARGET_P99_MS,
            "met": p99 is not None and p99 <= TARGET_P99_MS and figures["lost"] == 0,
            "subscriptions": figures["subscriptions"],
        },
        **figures,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "platform": platform.platform(),
        },
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
