"""OPC UA subscription throughput and latency, as the gateway delivers values.

Load: plant simulators (asyncua servers, ``simulators.opcua``), each in its own process with a
``BenchBlock`` of double variables. Each item changes ``--rate-hz`` times a second; the changes
are spread over the period in ``--slices`` slices (a plant's values do not all change at one
instant), and every change carries the server's source timestamp taken when it is written.

Gateway: the real driver in this process — one ``OpcUaLink`` and one ``OpcUaDevice`` per
server (one bus each), every variable a subscribed point (sampling and publishing interval
``--publish-ms``), values consumed from ``pushed()`` by a ``DeviceCoordinator`` whose sample
sink counts them. Measured over ``--seconds`` after a warm-up:

- values/s delivered to the coordinators' sink (and offered: items × rate);
- gateway CPU µs per delivered value (this process's CPU time — it holds nothing but the
  gateway side — divided by the values);
- each server process's CPU, reported apart: they are the load generator;
- change → sink latency: the sample's receipt time minus its source timestamp, p50/p99/max.

Scenarios (all by default): ``spec`` (10,000 items once a second from one server, the issue's
setup); ``target`` (10,000 items twice a second = 20,000 changes/s, split over two server
processes so that the pure-Python load generator is not the limit); ``target_gc_frozen`` (the
same with ``gc.freeze()`` in the gateway once its links are up — the daemon does not do that
today; full collections of the gateway's heap are the largest stalls). The simulators freeze
their built address space. The machine is shared: each run records the 1-minute load average.

Target: ≥ 20,000 values/s on one core, p99 ≤ 200 ms.

Run: ``.venv/bin/python -m bench.opcua_subscribe [--scenario spec|target] [--items N]
[--rate-hz R] [--servers K] [--seconds S] [--secure]``; writes
``bench/results/opcua_subscribe.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results" / "opcua_subscribe.json"
TARGET_VALUES_PER_S = 20_000
TARGET_P99_MS = 200.0
SCENARIOS: dict[str, dict[str, Any]] = {
    "spec": {"items": 10_000, "rate_hz": 1.0, "servers": 1},
    "target": {"items": 10_000, "rate_hz": 2.0, "servers": 2},
    # The same with the gateway's startup heap frozen (gc.freeze()), which the daemon does not
    # do today: shows what full collections of the gateway's heap cost in latency.
    "target_gc_frozen": {"items": 10_000, "rate_hz": 2.0, "servers": 2, "gateway_gc_freeze": True},
}


# -- load generator (one per process) -----------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    from simulators.opcua import BenchBlock, OpcUaSimulator

    block = BenchBlock(count=args.count, slices=args.slices)
    tick_s = 1.0 / (args.rate_hz * args.slices)
    async with OpcUaSimulator(
        [block],
        pki_dir=args.pki,
        port=args.serve,
        insecure=not args.secure,
        tick_s=tick_s,
        catch_up=True,
    ):
        # The address space is built and stays: keep the collector from walking it (full
        # collections of it stalled the server for up to a second).
        gc.freeze()
        print("ready", flush=True)
        while True:  # what this server really produced, for the bench to compare with delivered
            await asyncio.sleep(0.1)
            print(f"changes {block.changes}", flush=True)


def _start_servers(
    count: int, items: int, rate_hz: float, slices: int, pki: Path, secure: bool
) -> list[tuple[subprocess.Popen[str], int, int]]:
    """Start ``count`` simulator processes sharing ``items``; (process, port, items) each.
    The first one is waited for alone: it makes the certificate the others then load."""
    from tests.support import free_port

    started: list[tuple[subprocess.Popen[str], int, int]] = []
    for k in range(count):
        share = items // count + (1 if k < items % count else 0)
        port = free_port()
        command = [sys.executable, "-m", "bench.opcua_subscribe", "--serve", str(port)]
        command += ["--count", str(share), "--rate-hz", str(rate_hz), "--slices", str(slices)]
        command += ["--pki", str(pki / "sim"), *(["--secure"] if secure else [])]
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent
        )
        started.append((proc, port, share))
        if k == 0:
            _wait_ready(proc)
    for proc, _port, _share in started[1:]:
        _wait_ready(proc)
    return started


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("a simulator did not start")


class _Produced:
    """The latest change count each simulator process printed (read by one thread each)."""

    def __init__(self, procs: Sequence[subprocess.Popen[str]]) -> None:
        self.counts = [0] * len(procs)
        for index, proc in enumerate(procs):
            threading.Thread(target=self._follow, args=(index, proc), daemon=True).start()

    def _follow(self, index: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("changes "):
                self.counts[index] = int(line.split()[1])

    def total(self) -> int:
        return sum(self.counts)


# -- the gateway side ---------------------------------------------------------------------------


def _percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(
    args: argparse.Namespace, servers: list[tuple[subprocess.Popen[str], int, int]], pki: Path
) -> dict[str, Any]:
    from core.model import Event, Sample, SystemClock
    from drivers.config_base import ReportPolicy
    from drivers.opcua.certs import load_der
    from drivers.opcua.config import OpcUaBus, OpcUaPointConfig
    from drivers.opcua.device import OpcUaDevice, plan_items
    from drivers.opcua.session import OpcUaLink
    from edge.coordinator import DeviceCoordinator
    from simulators.opcua import BenchBlock

    site = pki / "gateway"
    (site / "pki" / "opcua" / "trusted").mkdir(parents=True, exist_ok=True)
    (site / "pass").write_text("operator-pass\n")
    if args.secure:
        (site / "pki" / "opcua" / "trusted" / "sim.der").write_bytes(
            load_der(pki / "sim" / "simulator-cert.der")
        )
    count = 0
    latencies: list[float] = []
    by_second: dict[int, list[float]] = {}  # when the tail happens: steady, or in stalls
    measuring = False
    start_wall = 0.0

    async def sink(samples: list[Sample]) -> None:
        nonlocal count
        if measuring:
            count += len(samples)
            for sample in samples:
                if sample.source_ts is not None:
                    latency = sample.receipt_ts - sample.source_ts
                    latencies.append(latency)
                    by_second.setdefault(int(sample.receipt_ts - start_wall), []).append(latency)

    async def events(event: Event) -> None:
        return None

    pauses: list[float] = []
    gc_started = 0.0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal gc_started
        if phase == "start":
            gc_started = time.perf_counter()
        elif measuring:
            pauses.append(time.perf_counter() - gc_started)

    gc.callbacks.append(on_gc)
    clock = SystemClock()
    links: list[OpcUaLink] = []
    coordinators: list[DeviceCoordinator] = []
    for k, (_proc, port, share) in enumerate(servers):
        fields: dict[str, Any] = {
            "id": f"bench{k}",
            "type": "opcua",
            "endpoint": f"opc.tcp://127.0.0.1:{port}/gatehouse/sim",
            "timeout_ms": 30000,
            "identity": "username",
            "username": "operator",
            "password_file": "pass",
        }
        if not args.secure:
            fields["security_policy"] = "None"
        block = BenchBlock(count=share)  # only for its paths
        points = [
            OpcUaPointConfig(
                id=f"v{i}",
                node_id=f"ns=2;s=Bench.{block.path(i).replace('/', '.')}",
                sampling_interval_ms=args.publish_ms,
            )
            for i in range(share)
        ]
        device = OpcUaDevice(f"bench{k}")
        link = OpcUaLink(OpcUaBus(**fields), [device], site_dir=site)
        device.attach(link, plan_items(device, points, poll_interval_s=1.0, report=ReportPolicy()))
        links.append(link)
        coordinators.append(
            DeviceCoordinator(
                device_id=f"bench{k}",
                driver=device,
                point_ids={p.id: f"bench{k}.{p.id}" for p in points},
                sink=sink,
                events=events,
                clock=clock,
            )
        )
    procs = [psutil.Process(proc.pid) for proc, _port, _share in servers]
    produced = _Produced([proc for proc, _port, _share in servers])
    running = [asyncio.create_task(c.run()) for c in coordinators]
    for link in links:
        await link.__aenter__()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and any(  # noqa: ASYNC110 - a bench warm-up
            link.stats.values < len(link.items) for link in links
        ):
            await asyncio.sleep(0.2)
        if args.gateway_gc_freeze:
            gc.freeze()
        await asyncio.sleep(args.warmup)
        load0 = os.getloadavg()[0]
        measuring = True
        start_wall = time.time()
        cpu0, wall0 = time.process_time(), time.monotonic()
        srv0, made0 = [p.cpu_times() for p in procs], produced.total()
        await asyncio.sleep(args.seconds)
        measuring = False
        cpu1, wall1 = time.process_time(), time.monotonic()
        srv1, made1 = [p.cpu_times() for p in procs], produced.total()
        backlog = sum(device.backlog for link in links for device in link.devices)
    finally:
        gc.callbacks.remove(on_gc)
        for link in links:
            await link.__aexit__(None, None, None)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    elapsed = wall1 - wall0
    gateway_cpu = cpu1 - cpu0
    server_cpu = [(b.user + b.system) - (a.user + a.system) for a, b in zip(srv0, srv1, strict=True)]
    offered = args.items * args.rate_hz
    lat_ms = sorted(x * 1000 for x in latencies)
    return {
        "items": args.items,
        "rate_hz": args.rate_hz,
        "servers": len(servers),
        "slices_per_period": args.slices,
        "publish_ms": args.publish_ms,
        "secure": "Basic256Sha256/SignAndEncrypt" if args.secure else "None (simulator in insecure mode)",
        "seconds": round(elapsed, 2),
        "values": count,
        "offered_values_per_s": round(offered),
        "produced_values_per_s": round((made1 - made0) / elapsed),
        "values_per_s": round(count / elapsed),
        "delivered_of_produced": round(count / (made1 - made0), 3) if made1 > made0 else None,
        "gateway_cpu_s": round(gateway_cpu, 2),
        "gateway_cpu_share": round(gateway_cpu / elapsed, 3),
        "gateway_cpu_us_per_value": round(gateway_cpu / count * 1e6, 1) if count else None,
        "gateway_capacity_values_per_core_s": round(count / gateway_cpu) if gateway_cpu else None,
        "server_cpu_share_each": [round(c / elapsed, 3) for c in server_cpu],
        "server_cpu_share_total": round(sum(server_cpu) / elapsed, 3),
        "server_cpu_us_per_change": round(sum(server_cpu) / (offered * elapsed) * 1e6, 1),
        "latency_ms_p50": round(statistics.median(lat_ms), 1) if lat_ms else None,
        "latency_ms_p90": round(_percentile(lat_ms, 0.90), 1) if lat_ms else None,
        "latency_ms_p99": round(_percentile(lat_ms, 0.99), 1) if lat_ms else None,
        "latency_ms_max": round(lat_ms[-1], 1) if lat_ms else None,
        "latency_ms_p99_each_second": [
            round(_percentile(sorted(by_second[k]), 0.99) * 1000) for k in sorted(by_second)
        ],
        "gateway_gc_pauses": len(pauses),
        "gateway_gc_pause_ms_max": round(max(pauses, default=0.0) * 1000, 1),
        "gateway_gc_frozen": args.gateway_gc_freeze,
        "backlog_at_end": backlog,
        "load_avg_1m_at_start": round(load0, 2),
    }


def _run_scenario(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        pki = Path(tmp)
        servers = _start_servers(args.servers, args.items, args.rate_hz, args.slices, pki, args.secure)
        try:
            return asyncio.run(_measure(args, servers, pki))
        finally:
            for proc, _port, _share in servers:
                proc.terminate()
            for proc, _port, _share in servers:
                proc.wait(10)


def _met(run: dict[str, Any]) -> bool:
    wanted = min(TARGET_VALUES_PER_S, run["offered_values_per_s"])
    return bool(run["values_per_s"] >= 0.99 * wanted and (run["latency_ms_p99"] or 1e9) <= TARGET_P99_MS)


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench.opcua_subscribe", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="run only this one")
    parser.add_argument("--items", type=int, help="monitored items in all (overrides the scenario)")
    parser.add_argument("--rate-hz", type=float, help="changes per item per second")
    parser.add_argument("--servers", type=int, help="simulator processes sharing the items")
    parser.add_argument(
        "--slices", type=int, default=10, help="slices the changes of a period are spread over"
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--publish-ms", type=int, default=100, help="sampling and publishing interval")
    parser.add_argument("--secure", action="store_true", help="Basic256Sha256/SignAndEncrypt + user/password")
    parser.add_argument(
        "--gateway-gc-freeze", action="store_true", help="gc.freeze() in the gateway once its links are up"
    )
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pki", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args))
        return {}
    runs: dict[str, dict[str, Any]] = {}
    for name in [args.scenario] if args.scenario else list(SCENARIOS):
        one = argparse.Namespace(**vars(args))
        for key, default in SCENARIOS[name].items():
            if getattr(one, key) in (None, False):
                setattr(one, key, default)
        print(f"-- {name}: {one.items} items × {one.rate_hz} Hz from {one.servers} server(s)", flush=True)
        runs[name] = _run_scenario(one)
        print(json.dumps(runs[name], indent=2), flush=True)
    summary: dict[str, Any] = {}
    for name, run in runs.items():
        summary[name] = {
            "values_per_s": run["values_per_s"],
            "offered_values_per_s": run["offered_values_per_s"],
            "produced_values_per_s": run["produced_values_per_s"],
            "servers": run["servers"],
            "gateway_cpu_us_per_value": run["gateway_cpu_us_per_value"],
            "gateway_capacity_values_per_core_s": run["gateway_capacity_values_per_core_s"],
            "server_cpu_share_total": run["server_cpu_share_total"],
            "server_cpu_us_per_change": run["server_cpu_us_per_change"],
            "latency_ms_p50": run["latency_ms_p50"],
            "latency_ms_p99": run["latency_ms_p99"],
            "gateway_gc_pause_ms_max": run["gateway_gc_pause_ms_max"],
            "gateway_gc_frozen": run["gateway_gc_frozen"],
            "load_avg_1m_at_start": run["load_avg_1m_at_start"],
            "met": _met(run),
        }
    summary["target_values_per_s"] = TARGET_VALUES_PER_S
    summary["target_p99_ms"] = TARGET_P99_MS
    result = {
        "summary": summary,
        "runs": runs,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "platform": platform.platform(),
        },
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if not args.scenario and args.items is None and args.rate_hz is None and args.servers is None:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"saved {RESULTS}")
    for name, figures in summary.items():
        if isinstance(figures, dict):
            print(
                f"{name}: {figures['values_per_s']:,} of {figures['offered_values_per_s']:,} values/s, "
                f"gateway {figures['gateway_cpu_us_per_value']} µs/value, "
                f"p50 {figures['latency_ms_p50']} ms, p99 {figures['latency_ms_p99']} ms"
            )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
