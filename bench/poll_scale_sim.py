"""The simulator side of ``bench.poll_scale``: N bench devices on consecutive ports, every
register changing every second. Run as its own process so that its CPU is not the gateway's."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
from pathlib import Path

import structlog

from simulators.profile import load_profile_file
from simulators.runner import SimulationRunner
from simulators.site_plan import PlannedDevice

PROFILE = Path(__file__).resolve().parent / "profiles" / "bench-30hr.yaml"


async def serve(count: int, base_port: int, change_s: float) -> None:
    profile = load_profile_file(PROFILE)
    planned = [
        PlannedDevice(id=f"b{i:04d}", profile=profile, endpoint=("127.0.0.1", base_port + i), unit=1, seed=i)
        for i in range(count)
    ]
    rng = random.Random(1)
    async with SimulationRunner(planned, tick_s=None) as sim:
        print("ready", flush=True)
        devices = list(sim.devices.values())
        points = list(profile.points)
        # Phase-locked ticks (not a sleep after the work): every device changes exactly once per
        # period, at the same offset, so a gateway polling each device once per period sees a new
        # value on every poll and reports every one (the worst case the benches are about).
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            for device in devices:
                for point in points:
                    device.image.set_point(point, rng.randrange(65536))
            next_tick += change_s
            await asyncio.sleep(max(0.0, next_tick - loop.time()))


def main() -> None:
    # The ready line is the only thing on stdout; the simulators' logs stay quiet.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--base-port", type=int, required=True)
    parser.add_argument("--change-s", type=float, default=1.0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.count, args.base_port, args.change_s))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
