"""Requests/s on one emulated RS-485 line through the serial scheduler, against the line's bound.

The simulator (``simulators.modbus_rtu`` on a pty, emulating wire time at the baud with a
fixed turnaround) runs in a child process, so the CPU figure is the gateway's alone. For each
of 9,600 and 115,200 baud with 1 and 16 devices, every device reads ``REGISTERS`` holding
registers back to back through one ``SerialScheduler`` for ``--seconds``.

Theoretical bound per request (Modbus over Serial Line v1.02): request 8 bytes + answer
5 + 2N bytes at the character time (10 bits, 8N1), plus two t3.5 silences (the device's
end-of-frame detection and ours before the next request) and the simulator's turnaround.
Target: at least 85 % of that bound. CPU per request is process CPU time / requests.

Run: ``.venv/bin/python -m bench.rtu_bus [--seconds S]``; writes ``bench/results/rtu_bus.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "rtu_bus.json"
TARGET_FRACTION = 0.85
REGISTERS = 4
TURNAROUND_MS = 2.0
CASES = ((9600, 1), (9600, 16), (115200, 1), (115200, 16))


async def _serve(baudrate: int, devices: int, link: str) -> None:
    from simulators.device import SimulatedDevice
    from simulators.modbus_rtu import ModbusRtuServer
    from simulators.profile import PROFILE_DIR, load_profile_file

    profile = load_profile_file(PROFILE_DIR / "water-meter.yaml")
    units = {u: SimulatedDevice.build(f"m{u}", profile, seed=u) for u in range(1, devices + 1)}
    async with ModbusRtuServer(
        units, link_path=link, baudrate=baudrate, turnaround_ms=TURNAROUND_MS
    ) as server:
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print(
            json.dumps({"requests": server.line.requests, "collisions": server.line.collisions}), flush=True
        )


def bound_per_s(baudrate: int) -> float:
    char_s = 10 / baudrate
    silence_s = 3.5 * char_s if baudrate <= 19200 else 0.00175
    cycle_s = (8 + 5 + 2 * REGISTERS) * char_s + 2 * silence_s + TURNAROUND_MS / 1000
    return 1.0 / cycle_s


async def _measure(baudrate: int, devices: int, link: str, seconds: float) -> dict[str, Any]:
    from drivers.modbus.serial_port import SerialPortTransport
    from drivers.modbus.serial_scheduler import RTU, LineTiming, SerialScheduler, UnitPolicy
    from drivers.modbus.types import Table

    async def no_events(event: object) -> None:
        return None

    scheduler = SerialScheduler(
        SerialPortTransport(link, baudrate=baudrate),
        RTU,
        LineTiming.of(baudrate),
        bus_id="bench",
        events=no_events,
        wall=time.time,
        default_policy=UnitPolicy(timeout_s=0.5, retries=0),
    )
    await scheduler.start()
    done = 0
    stop = False

    async def poller(unit: int) -> None:
        nonlocal done
        while not stop:
            await scheduler.read(unit, Table.HOLDING, 0, REGISTERS)
            done += 1

    try:
        for unit in range(1, devices + 1):  # warm up every unit once
            await scheduler.read(unit, Table.HOLDING, 0, REGISTERS)
        tasks = [asyncio.create_task(poller(u)) for u in range(1, devices + 1)]
        cpu0, t0, done = time.process_time(), time.perf_counter(), 0
        await asyncio.sleep(seconds)
        stop = True
        await asyncio.gather(*tasks)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        await scheduler.aclose()
    rate = done / elapsed
    bound = bound_per_s(baudrate)
    return {
        "baudrate": baudrate,
        "devices": devices,
        "registers_per_read": REGISTERS,
        "requests": done,
        "requests_per_s": round(rate, 1),
        "bound_per_s": round(bound, 1),
        "fraction_of_bound": round(rate / bound, 3),
        "cpu_us_per_request": round(cpu / max(done, 1) * 1e6, 1),
        "timeouts": scheduler.stats.timeouts,
    }


def _run_case(baudrate: int, devices: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        link = os.path.join(folder, "ttyBENCH")
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.rtu_bus", "--serve", str(baudrate), str(devices), link],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            assert child.stdout is not None and child.stdin is not None
            while child.stdout.readline().strip() != "READY":
                if child.poll() is not None:
                    raise RuntimeError("the simulator did not start")
            result = asyncio.run(_measure(baudrate, devices, link, seconds))
            child.stdin.close()
            line = json.loads(child.stdout.readline())
            result["line_collisions"] = line["collisions"]
        finally:
            child.kill() if child.poll() is None else None
            child.wait()
    return result


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["--serve"]:
        import logging

        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        asyncio.run(_serve(int(args_list[1]), int(args_list[2]), args_list[3]))
        return 0
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(
        prog="bench.rtu_bus", description=__doc__.split("\n")[0] if __doc__ else None
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="measuring time per case")
    args = parser.parse_args(args_list)
    cases = []
    for baudrate, devices in CASES:
        case = _run_case(baudrate, devices, args.seconds)
        cases.append(case)
        print(
            f"{baudrate:>6} baud, {devices:>2} device(s): {case['requests_per_s']:>6} req/s of a "
            f"{case['bound_per_s']} bound ({case['fraction_of_bound']:.0%}), "
            f"{case['cpu_us_per_request']} µs CPU/request, collisions {case['line_collisions']}",
            flush=True,
        )
    worst = min(c["fraction_of_bound"] for c in cases)
    summary = {
        "worst_fraction_of_bound": worst,
        "target_fraction": TARGET_FRACTION,
        "met": worst >= TARGET_FRACTION,
        "cpu_us_per_request_max": max(c["cpu_us_per_request"] for c in cases),
        "collisions": sum(c["line_collisions"] for c in cases),
    }
    result: dict[str, Any] = {
        "summary": summary,
        "cases": cases,
        "turnaround_ms": TURNAROUND_MS,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    verdict = "meets" if summary["met"] else "MISSES"
    print(
        f"worst case {worst:.0%} of the bound {verdict} the target of {TARGET_FRACTION:.0%}; saved {RESULTS}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
