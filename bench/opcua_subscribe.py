"""OPC UA subscription throughput: 10,000 monitored items changing once per second.

The plant simulator (an asyncua server) runs in its own process with a ``BenchBlock`` of
``--items`` double variables, all changed once per second (each change stamped with the server's
source timestamp). The gateway side is the real driver: one ``OpcUaLink``, one device, every
variable a subscribed point (sampling/publishing ``--publish-ms``), values consumed from
``pushed()`` as the coordinator would. Measured over ``--seconds`` after a warm-up:

- values/s delivered to ``pushed()`` consumers;
- client CPU µs per value (this process's CPU time / values);
- change → delivery latency (source timestamp → dequeued), p50/p99/max;
- the server process's CPU (it is often the limit: asyncua's server is pure Python).

Target: ≥ 20,000 values/s on one core, p99 ≤ 200 ms.

Run: ``.venv/bin/python -m bench.opcua_subscribe [--items N] [--seconds S] [--secure]``; writes
``bench/results/opcua_subscribe.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results" / "opcua_subscribe.json"
TARGET_VALUES_PER_S = 20_000
TARGET_P99_MS = 200.0


async def _serve(port: int, items: int, pki: Path, secure: bool) -> None:
    from simulators.opcua import BenchBlock, OpcUaSimulator

    async with OpcUaSimulator(
        [BenchBlock(count=items)], pki_dir=pki, port=port, insecure=not secure, tick_s=1.0
    ):
        print("ready", flush=True)
        await asyncio.Event().wait()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(
    args: argparse.Namespace, endpoint: str, pki: Path, server: psutil.Process
) -> dict[str, Any]:
    from drivers.base import Reading
    from drivers.config_base import ReportPolicy
    from drivers.opcua.certs import load_der
    from drivers.opcua.config import OpcUaBus, OpcUaPointConfig
    from drivers.opcua.device import OpcUaDevice, plan_items
    from drivers.opcua.session import OpcUaLink

    site = pki / "gateway"
    site.mkdir(parents=True, exist_ok=True)
    fields: dict[str, Any] = {"id": "bench", "type": "opcua", "endpoint": endpoint, "timeout_ms": 30000}
    if args.secure:
        trusted = site / "pki" / "opcua" / "trusted"
        trusted.mkdir(parents=True, exist_ok=True)
        (trusted / "sim.der").write_bytes(load_der(pki / "sim" / "simulator-cert.der"))
        (site / "pass").write_text("operator-pass\n")
        fields.update(identity="username", username="operator", password_file="pass")
    else:
        fields.update(security_policy="None", identity="username", username="operator", password_file="pass")
        (site / "pass").write_text("operator-pass\n")
    bus = OpcUaBus(**fields)
    points = [
        OpcUaPointConfig(id=f"v{i}", node_id=f"ns=2;s=Bench.V{i}", sampling_interval_ms=args.publish_ms)
        for i in range(args.items)
    ]
    device = OpcUaDevice("bench")
    link = OpcUaLink(bus, [device], site_dir=site)
    device.attach(link, plan_items(device, points, poll_interval_s=1.0, report=ReportPolicy()))
    count = 0
    latencies: list[float] = []
    measuring = False

    async def consume() -> None:
        nonlocal count
        now = time.time
        async for reading in device.pushed():
            if measuring and isinstance(reading, Reading):
                count += 1
                if reading.source_ts is not None:
                    latencies.append(now() - reading.source_ts)

    consumer = asyncio.create_task(consume())
    async with link:
        deadline = time.monotonic() + 120
        while link.stats.values < args.items and time.monotonic() < deadline:  # noqa: ASYNC110 - a bench warm-up
            await asyncio.sleep(0.2)
        await asyncio.sleep(args.warmup)
        measuring = True
        cpu0, wall0, srv0 = time.process_time(), time.monotonic(), server.cpu_times()
        await asyncio.sleep(args.seconds)
        measuring = False
        cpu1, wall1, srv1 = time.process_time(), time.monotonic(), server.cpu_times()
    consumer.cancel()
    elapsed = wall1 - wall0
    client_cpu = cpu1 - cpu0
    server_cpu = (srv1.user + srv1.system) - (srv0.user + srv0.system)
    lat_ms = [x * 1000 for x in latencies]
    return {
        "items": args.items,
        "publish_ms": args.publish_ms,
        "secure": "Basic256Sha256/SignAndEncrypt" if args.secure else "None (simulator in insecure mode)",
        "seconds": round(elapsed, 2),
        "values": count,
        "values_per_s": round(count / elapsed),
        "offered_values_per_s": args.items,
        "client_cpu_s": round(client_cpu, 2),
        "client_cpu_share": round(client_cpu / elapsed, 3),
        "client_cpu_us_per_value": round(client_cpu / count * 1e6, 1) if count else None,
        "client_capacity_values_per_core_s": round(count / client_cpu) if client_cpu else None,
        "server_cpu_share": round(server_cpu / elapsed, 3),
        "server_cpu_us_per_value": round(server_cpu / count * 1e6, 1) if count else None,
        "latency_ms_p50": round(statistics.median(lat_ms), 1) if lat_ms else None,
        "latency_ms_p99": round(_percentile(lat_ms, 0.99), 1) if lat_ms else None,
        "latency_ms_max": round(max(lat_ms), 1) if lat_ms else None,
    }


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench.opcua_subscribe", description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--publish-ms", type=int, default=100, help="sampling and publishing interval")
    parser.add_argument("--secure", action="store_true", help="Basic256Sha256/SignAndEncrypt + user/password")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--pki", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve, args.items, args.pki, args.secure))
        return {}
    from tests.support import free_port

    with tempfile.TemporaryDirectory() as tmp:
        pki = Path(tmp)
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "bench.opcua_subscribe",
            "--serve",
            str(port),
            "--items",
            str(args.items),
        ]
        command += ["--pki", str(pki / "sim"), *(["--secure"] if args.secure else [])]
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent
        )
        try:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit("the simulator did not start")
            run = asyncio.run(
                _measure(args, f"opc.tcp://127.0.0.1:{port}/gatehouse/sim", pki, psutil.Process(proc.pid))
            )
        finally:
            proc.terminate()
            proc.wait(10)
    met = (
        run["values_per_s"] >= min(TARGET_VALUES_PER_S, args.items)
        and (run["latency_ms_p99"] or 1e9) <= TARGET_P99_MS
    )
    result = {
        "summary": {
            "values_per_s": run["values_per_s"],
            "client_cpu_us_per_value": run["client_cpu_us_per_value"],
            "client_capacity_values_per_core_s": run["client_capacity_values_per_core_s"],
            "latency_ms_p99": run["latency_ms_p99"],
            "server_cpu_share": run["server_cpu_share"],
            "target_values_per_s": TARGET_VALUES_PER_S,
            "target_p99_ms": TARGET_P99_MS,
            "met": met,
        },
        "run": run,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "platform": platform.platform(),
        },
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(run, indent=2))
    print(f"{run['values_per_s']:,} values/s, p99 {run['latency_ms_p99']} ms; saved {RESULTS}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
