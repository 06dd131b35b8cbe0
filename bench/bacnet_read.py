"""bacnet_read: points/s and gateway CPU µs per point reading 20 simulated BACnet devices of
100 analog inputs each, with ReadPropertyMultiple (packed to the device's max-APDU) and with
one ReadProperty per point. Target: RPM ≥ 10× ReadProperty in points/s.

The simulator runs in a child process (``python -m simulators.bacnet --model bank``) so the
gateway CPU figure is the gateway's alone; the simulator's CPU (from ``/proc``) is reported
beside it, per point and as a share of one core, since both share the machine's cores. Each
device is read in a loop, all devices at once.

Run: ``.venv/bin/python -m bench.bacnet_read [--seconds S] [--devices N]``; writes
``bench/results/bacnet_read.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.process_tree import cpu_s

RESULTS = Path(__file__).resolve().parent / "results" / "bacnet_read.json"
TARGET_RATIO = 10.0
OBJECTS = 100


def _start_simulator(devices: int) -> tuple[subprocess.Popen[str], dict[int, str]]:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.bacnet",
            "--devices",
            str(devices),
            "--base-port",
            "0",
            "--model",
            "bank",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    addresses: dict[int, str] = {}
    while len(addresses) < devices:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError("the simulator stopped before listing its devices")
        row = json.loads(line)
        addresses[int(row["instance"])] = str(row["address"])
    return child, addresses


async def _measure(addresses: dict[int, str], seconds: float, sim_pid: int) -> dict[str, Any]:
    from core.model import Event, SystemClock
    from drivers.bacnet.config import BacnetBus
    from drivers.bacnet.device import BacnetDevice
    from drivers.bacnet.plugin import open_bacnet_bus
    from drivers.registry import BusContext
    from simulators.bacnet.models import PointBank
    from simulators.bacnet.sitegen import points_of, resolved_device

    async def no_events(event: Event) -> None:
        return None

    bus = BacnetBus(id="bench", type="bacnet_ip", address="127.0.0.1", port=0, timeout_ms=3000, retries=1)
    points = points_of(PointBank(count=OBJECTS))
    specs = [
        resolved_device(f"d{instance}", bus, instance, points, address=address)
        for instance, address in addresses.items()
    ]
    ctx = BusContext(events=no_events, clock=SystemClock(), site_dir=Path("."), data_dir=Path("."))
    out: dict[str, Any] = {}
    async with open_bacnet_bus(bus, specs, ctx) as drivers:
        devices = [d for d in drivers.values() if isinstance(d, BacnetDevice)]
        for device in devices:  # learn each device's limits before timing
            for group in device.poll_groups():
                await device.read(group)
        for mode in ("rpm", "read_property"):
            for device in devices:
                device.peer.rpm = mode == "rpm"
            counts = [0] * len(devices)
            requests_before = sum(d.peer.requests for d in devices)
            stop = time.monotonic() + seconds

            async def loop(i: int, device: BacnetDevice, stop: float, counts: list[int]) -> None:
                while time.monotonic() < stop:
                    for group in device.poll_groups():
                        counts[i] += len(await device.read(group))

            cpu0, sim0, t0 = time.process_time(), cpu_s(sim_pid), time.monotonic()
            await asyncio.gather(*(loop(i, d, stop, counts) for i, d in enumerate(devices)))
            cpu, elapsed = time.process_time() - cpu0, time.monotonic() - t0
            sim_cpu = cpu_s(sim_pid) - sim0
            total = sum(counts)
            out[mode] = {
                "points": total,
                "seconds": round(elapsed, 2),
                "points_per_s": round(total / elapsed, 1),
                "cpu_us_per_point": round(cpu / total * 1e6, 1) if total else None,
                "requests": sum(d.peer.requests for d in devices) - requests_before,
                "gateway_cpu_share": round(cpu / elapsed, 2),
                "simulator_cpu_us_per_point": round(sim_cpu / total * 1e6, 1) if total else None,
                "simulator_cpu_share": round(sim_cpu / elapsed, 2),
            }
            print(
                f"{mode:>13}: {out[mode]['points_per_s']:>9,.0f} points/s, "
                f"{out[mode]['cpu_us_per_point']} µs CPU/point, {out[mode]['requests']:,} requests; "
                f"gateway {out[mode]['gateway_cpu_share']:.0%} of a core, simulator "
                f"{out[mode]['simulator_cpu_us_per_point']} µs/point, "
                f"{out[mode]['simulator_cpu_share']:.0%} of a core",
                flush=True,
            )
    return out


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench.bacnet_read")
    parser.add_argument("--seconds", type=float, default=8.0, help="per mode")
    parser.add_argument("--devices", type=int, default=20)
    args = parser.parse_args(argv)
    child, addresses = _start_simulator(args.devices)
    try:
        figures = asyncio.run(_measure(addresses, args.seconds, child.pid))
    finally:
        child.terminate()
        child.wait(timeout=10)
    ratio = figures["rpm"]["points_per_s"] / max(figures["read_property"]["points_per_s"], 1e-9)
    # what RPM saves the gateway itself, whatever the simulator and the machine's load do
    cpu_ratio = (figures["read_property"]["cpu_us_per_point"] or 0.0) / max(
        figures["rpm"]["cpu_us_per_point"] or 0.0, 1e-9
    )
    print(
        f"RPM / ReadProperty: {ratio:.1f}× in points/s (target ≥ {TARGET_RATIO:g}×), "
        f"{cpu_ratio:.1f}× in gateway CPU per point"
    )
    result = {
        "summary": {
            "rpm_points_per_s": figures["rpm"]["points_per_s"],
            "read_property_points_per_s": figures["read_property"]["points_per_s"],
            "ratio": round(ratio, 1),
            "gateway_cpu_ratio": round(cpu_ratio, 1),
            "target_ratio": TARGET_RATIO,
            "met": ratio >= TARGET_RATIO,
            "rpm_cpu_us_per_point": figures["rpm"]["cpu_us_per_point"],
            "read_property_cpu_us_per_point": figures["read_property"]["cpu_us_per_point"],
            "rpm_simulator_cpu_us_per_point": figures["rpm"]["simulator_cpu_us_per_point"],
            "read_property_simulator_cpu_us_per_point": figures["read_property"][
                "simulator_cpu_us_per_point"
            ],
        },
        "devices": args.devices,
        "objects_per_device": OBJECTS,
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
