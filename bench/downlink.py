"""downlink: a command issued at central's API, run at a simulated device, its result back at central.

Every part runs as deployed, each in its own process:

* a simulated access-door controller (``gatehouse simulate``, Modbus TCP);
* the project's TLS Mosquitto (``tests.broker``: config/mosquitto, password auth, the ACL that
  lets only central publish on ``gh/v1/+/cmd``);
* the real central (``gatehouse central``: HTTPS-less API on loopback, MQTT ingest, SQLite,
  ``commands.db``);
* the real gateway daemon (``gatehouse run``) polling the door, at shipped settings (only where
  the broker is and who the gateway is are set).

Each command is ``point.write`` of the door's ``release`` coil (alternating true/false). Its
latency is measured by the client, from just before ``POST /api/v1/gateways/{gw}/commands`` to
the first ``GET /api/v1/commands/{cid}`` that answers ``done``: central signs and publishes, the
gateway verifies, writes through its device coordinator and reads back, reports
``command.result`` on its event lane, central stores it and matches it to the command. The GET
is repeated every ``--poll-ms`` (5 ms), which bounds what polling adds to a figure.

Two phases: ``--count`` commands one after another, then the same number with ``--concurrency``
in flight. Target: p99 ≤ 1 s on loopback. Run: ``python -m bench downlink`` or
``python -m bench.downlink [--count 200] [--concurrency 8]``. Writes
``bench/results/downlink.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

from cloud_sync.certs import CENTRAL_USER
from cloud_sync.keys import load_private_key, public_key_pem
from tests.broker import Broker, start_broker
from tests.integration.sync.helpers import CENTRAL_PUB_NAME, central_signing_key, signing_key
from tests.support import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "downlink.json"
GW = "gw-bench-door"
TOKEN = "bench-operator"
TARGET_P99_MS = 1000.0
_EDGE = [sys.executable, "-m", "edge"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _popen(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def _wait(cond: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _dump(path: Path, data: dict[str, Any]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(data, fh)
    return path


def _site(folder: Path, broker: Broker, sim_port: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    signing_key(folder)  # signing.key, and central's public key pinned beside it
    creds = broker.clients[GW]
    return _dump(
        folder / "site.yaml",
        {
            "site": {"id": "bench"},
            "gateway": {"id": GW, "data_dir": "data"},
            "buses": [{"id": "lan", "type": "modbus_tcp", "host": "127.0.0.1", "port": sim_port}],
            "devices": [{"id": "door", "bus": "lan", "unit": 2, "profile": "access-door"}],
            "uplink": {
                "broker_host": broker.host,
                "broker_port": broker.port,
                "ca_file": str(broker.ca_path),
                "username": creds.name,
                "password_file": str(creds.password_path),
                "signing_key": "signing.key",
                "central_key": CENTRAL_PUB_NAME,
            },
        },
    )


def _central(folder: Path, broker: Broker, gw_folder: Path, api_port: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    user, password = broker.credentials(CENTRAL_USER)
    key = load_private_key(gw_folder / "signing.key")
    return _dump(
        folder / "central.yaml",
        {
            "database": str(folder / "central.db"),
            "signing_key": str(central_signing_key(folder)),
            "broker": {
                "host": broker.host,
                "port": broker.port,
                "ca_file": str(broker.ca_path),
                "username": user,
                "password": password,
                "client_id": "central-bench-downlink",
            },
            "api": {
                "host": "127.0.0.1",
                "port": api_port,
                "tokens": [{"name": "bench", "token": TOKEN, "scopes": ["read", "command"]}],
            },
            "gateways": [{"id": GW, "keys": [{"pem": public_key_pem(key.public_key())}]}],
        },
    )


@contextlib.contextmanager
def _stack(workdir: Path) -> Iterator[tuple[str, str]]:
    """Broker, simulator, central, gateway; yields (API base URL, the door's release point id)."""
    procs: list[subprocess.Popen[bytes]] = []
    with start_broker(workdir / "mq", gateways=(GW,)) as broker:
        try:
            sim_port, api_port = free_port(), free_port()
            site = _site(workdir / "gw", broker, sim_port)
            sim_log, central_log, gw_log = workdir / "sim.log", workdir / "central.log", workdir / "gw.log"
            procs.append(_popen([*_EDGE, "simulate", str(site), "--control-port", str(free_port())], sim_log))
            central_cfg = _central(workdir / "central", broker, workdir / "gw", api_port)
            central = _popen(
                [*_EDGE, "central", "--config", str(central_cfg), "--log-level", "info"], central_log
            )
            procs.append(central)
            _wait(
                lambda: (
                    central.poll() is not None or "mqtt subscribed" in central_log.read_text(errors="replace")
                ),
                60,
                "central subscribed",
            )
            gateway = _popen([*_EDGE, "run", "--config", str(site), "--log-level", "warning"], gw_log)
            procs.append(gateway)
            base = f"http://127.0.0.1:{api_port}"
            for proc, log in zip(procs, (sim_log, central_log, gw_log), strict=True):
                if proc.poll() is not None:
                    raise RuntimeError(f"{log.name}: {log.read_text(errors='replace')[-3000:]}")
            yield base, "bench/door/release"
        finally:
            for proc in reversed(procs):
                _stop(proc)


async def _one(client: httpx.AsyncClient, point: str, value: bool, poll_s: float) -> tuple[float, str]:
    started = time.perf_counter()
    sent = await client.post(
        f"/api/v1/gateways/{GW}/commands",
        json={"action": "point.write", "args": {"point": point, "value": value}, "ttl_s": 60},
    )
    sent.raise_for_status()
    cid = sent.json()["cid"]
    while True:
        shown = (await client.get(f"/api/v1/commands/{cid}")).raise_for_status().json()
        if shown["state"] != "pending":
            return time.perf_counter() - started, f"{shown['state']} {shown['detail']}".strip()
        await asyncio.sleep(poll_s)


async def _phase(
    client: httpx.AsyncClient, point: str, *, count: int, concurrency: int, poll_s: float
) -> dict[str, Any]:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int) -> None:
        async with gate:
            latency, outcome = await _one(client, point, i % 2 == 0, poll_s)
        latencies.append(latency)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    started = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for i in range(count):
            tg.create_task(run(i))
    wall = time.perf_counter() - started
    ms = [x * 1000 for x in latencies]
    return {
        "count": count,
        "concurrency": concurrency,
        "outcomes": outcomes,
        "p50_ms": round(_percentile(ms, 0.50), 1),
        "p99_ms": round(_percentile(ms, 0.99), 1),
        "max_ms": round(max(ms), 1),
        "min_ms": round(min(ms), 1),
        "commands_per_s": round(count / wall, 1),
    }


async def _measure(base: str, point: str, *, count: int, concurrency: int, poll_s: float) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        # Ready when the gateway polls the door and runs a command end to end (this one is not timed).
        deadline = time.monotonic() + 120
        outcome = "no answer"
        while True:
            with contextlib.suppress(httpx.HTTPError, TimeoutError):
                _, outcome = await asyncio.wait_for(_one(client, point, False, 0.05), 10)
                if outcome.startswith("done"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway never ran a warm-up command (last: {outcome})")
            await asyncio.sleep(0.5)
        await asyncio.gather(*(_one(client, point, False, poll_s) for _ in range(10)))  # warm-up
        sequential = await _phase(client, point, count=count, concurrency=1, poll_s=poll_s)
        concurrent = await _phase(client, point, count=count, concurrency=concurrency, poll_s=poll_s)
    return {"sequential": sequential, "concurrent": concurrent}


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.downlink")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--poll-ms", type=float, default=5.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gh-downlink-") as tmp, _stack(Path(tmp)) as (base, point):
        phases = asyncio.run(
            _measure(base, point, count=args.count, concurrency=args.concurrency, poll_s=args.poll_ms / 1000)
        )
    worst = max(p["p99_ms"] for p in phases.values())
    all_done = all(set(p["outcomes"]) == {"done"} for p in phases.values())
    result = {
        "benchmark": "downlink",
        "what": "point.write issued at central's API → run at a simulated Modbus door by the real gateway "
        "→ its command.result visible at central's API; every part its own process, loopback",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "settings": {"count": args.count, "concurrency": args.concurrency, "poll_ms": args.poll_ms},
        **phases,
        "target_p99_ms": TARGET_P99_MS,
        "summary": {
            "sequential_p50_ms": phases["sequential"]["p50_ms"],
            "sequential_p99_ms": phases["sequential"]["p99_ms"],
            "concurrent_p99_ms": phases["concurrent"]["p99_ms"],
            "max_ms": max(p["max_ms"] for p in phases.values()),
            "all_done": all_done,
            "met": all_done and worst <= TARGET_P99_MS,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result["summary"], ensure_ascii=False))
    for name in ("sequential", "concurrent"):
        p = phases[name]
        print(
            f"{name:>10}: n={p['count']} c={p['concurrency']} p50={p['p50_ms']} ms p99={p['p99_ms']} ms "
            f"max={p['max_ms']} ms {p['commands_per_s']}/s outcomes={p['outcomes']}"
        )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
