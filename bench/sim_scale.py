"""Scale mode of the simulators: N meters in one process, ours against pymodbus' own server.

For each implementation a fresh subprocess starts N servers on consecutive ports (one unit
each, an SDM630-sized register map), then this process polls every device with pymodbus'
client for a few seconds. Reported per implementation: start-up time, resident memory of the
simulator process, polls answered per second, the simulator's CPU share while being polled, and
(for ours) the cost of one physics tick of all N models.

Run: ``.venv/bin/python -m bench.sim_scale [--count 500]``; writes ``bench/results/sim_scale.json``.
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

import psutil
from pymodbus.client import AsyncModbusTcpClient

RESULTS = Path(__file__).resolve().parent / "results"
POLL_S = 5.0


def _serve_ours(count: int, base_port: int) -> None:
    from simulators.runner import SimulationRunner
    from simulators.scale import plan_scale

    async def run() -> None:
        started = time.perf_counter()
        plans = plan_scale("eastron-sdm630", count, base_port)
        async with SimulationRunner(plans, tick_s=1.0) as sim:
            ready_s = time.perf_counter() - started
            t0 = time.perf_counter()
            sim.tick(1.0)
            tick_ms = (time.perf_counter() - t0) * 1000
            print(json.dumps({"ready_s": ready_s, "tick_ms": tick_ms}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    asyncio.run(run())


def _serve_pymodbus(count: int, base_port: int) -> None:
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    async def run() -> None:
        started = time.perf_counter()
        servers = []
        for i in range(count):

            def block(kind: DataType, count: int) -> list[SimData]:
                return [SimData(address=0, count=count, values=0, datatype=kind)]

            tables = (
                block(DataType.BITS, 1),
                block(DataType.BITS, 1),
                block(DataType.REGISTERS, 400),
                block(DataType.REGISTERS, 400),
            )
            device = SimDevice(1, simdata=tables)
            server = ModbusTcpServer(device, address=("127.0.0.1", base_port + i))
            await server.serve_forever(background=True)
            servers.append(server)
        print(json.dumps({"ready_s": time.perf_counter() - started, "tick_ms": None}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for server in servers:
            await server.shutdown()  # type: ignore[no-untyped-call]

    asyncio.run(run())


async def _poll(count: int, base_port: int) -> dict[str, float]:
    clients = [
        AsyncModbusTcpClient("127.0.0.1", port=base_port + i, timeout=5, retries=0) for i in range(count)
    ]
    for chunk in range(0, count, 50):
        await asyncio.gather(*(c.connect() for c in clients[chunk : chunk + 50]))
    answered = 0
    errors = 0
    deadline = time.perf_counter() + POLL_S

    async def loop(client: AsyncModbusTcpClient) -> None:
        nonlocal answered, errors
        while time.perf_counter() < deadline:
            try:
                response = await client.read_input_registers(0, count=76, device_id=1)
            except Exception:  # noqa: BLE001 - a benchmark counts failures, it does not handle them
                errors += 1
                continue
            if response.isError():
                errors += 1
            else:
                answered += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in clients))
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    return {"reads_per_s": answered / elapsed, "errors": errors}


def _measure(impl: str, count: int, base_port: int) -> dict[str, Any]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.sim_scale",
            "--serve",
            impl,
            "--count",
            str(count),
            "--base-port",
            str(base_port),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None and proc.stdin is not None
    started = json.loads(proc.stdout.readline())
    info = psutil.Process(proc.pid)
    rss_mb = info.memory_info().rss / 1e6
    cpu_before = info.cpu_times()
    polled = asyncio.run(_poll(count, base_port))
    cpu_after = info.cpu_times()
    busy_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    proc.stdin.write("\n")
    proc.stdin.flush()
    proc.wait(timeout=60)
    return {
        "devices": count,
        "ready_s": round(started["ready_s"], 3),
        "rss_mb": round(rss_mb, 1),
        "tick_ms_all_devices": None if started["tick_ms"] is None else round(started["tick_ms"], 2),
        "reads_per_s": round(polled["reads_per_s"]),
        "read_errors": polled["errors"],
        "server_cpu_share_while_polled": round(busy_s / POLL_S, 2),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.sim_scale")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--base-port", type=int, default=12000)
    parser.add_argument("--serve", choices=("ours", "pymodbus"))
    args = parser.parse_args(argv)
    if args.serve:
        from edge.logs import configure_logging

        configure_logging("warning")  # logs to stderr; stdout carries the start-up report
    if args.serve == "ours":
        _serve_ours(args.count, args.base_port)
        return 0
    if args.serve == "pymodbus":
        _serve_pymodbus(args.count, args.base_port)
        return 0
    results = {
        "ours": _measure("ours", args.count, args.base_port),
        "pymodbus_server": _measure("pymodbus", args.count, args.base_port + args.count + 10),
    }
    report = {
        "benchmark": "sim_scale",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "summary": {
            "devices": args.count,
            "ours_ready_s": results["ours"]["ready_s"],
            "ours_rss_mb": results["ours"]["rss_mb"],
            "ours_reads_per_s": results["ours"]["reads_per_s"],
            "pymodbus_ready_s": results["pymodbus_server"]["ready_s"],
            "pymodbus_rss_mb": results["pymodbus_server"]["rss_mb"],
            "pymodbus_reads_per_s": results["pymodbus_server"]["reads_per_s"],
        },
        "results": results,
    }
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sim_scale.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
