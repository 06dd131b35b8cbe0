"""Central's ingest into PostgreSQL off a real broker, with 1 and with 2 ingest workers.

A backlog of signed telemetry batches from several gateways waits at a private Mosquitto (TLS,
the project's ACL) in central's persistent shared-subscription sessions; then ``gatehouse central
--workers N --role ingest`` starts against a private PostgreSQL (fsync on, as in production) and
drains it. Timed: from the first stored batch to the last (process start-up excluded), by
polling the batches table. Records/s = records stored / that time.

Run: ``.venv/bin/python -m bench.central_ingest_pg [BATCHES [RECORDS_PER_BATCH]]``; writes
``bench/results/central_ingest_pg.json``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from ruamel.yaml import YAML

from cloud_sync.central.storage.postgres import PostgresStore
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import key_id, public_key_pem
from cloud_sync.ports import Lane, TelemetryRow
from tests.broker import Broker, start_broker
from tests.integration.sync.helpers import central_signing_key
from tests.pg import Postgres, start_postgres

RESULTS = Path(__file__).resolve().parent / "results" / "central_ingest_pg.json"
GATEWAYS = 4
POINTS_PER_GATEWAY = 2_000
T0 = 1_767_225_600.0


def _seal_all(batches: int, per_batch: int) -> tuple[dict[str, Ed25519PrivateKey], list[tuple[str, bytes]]]:
    keys = {f"gw-{g}": Ed25519PrivateKey.generate() for g in range(GATEWAYS)}
    out: list[tuple[str, bytes]] = []
    sealers = {gw: make_sealer(gw, key_id(k.public_key()), k) for gw, k in keys.items()}
    for n in range(batches):
        gw = f"gw-{n % GATEWAYS}"
        seq = n // GATEWAYS + 1
        base = seq * per_batch
        rows = [
            TelemetryRow(
                f"{gw}/dev{(base + i) % POINTS_PER_GATEWAY // 20}/p{(base + i) % 20}",
                (base + i) * 0.1,
                0,
                "",
                T0 + (base + i) * 0.001,
                None,
            )
            for i in range(per_batch)
        ]
        payload = sealers[gw](lane=Lane.TELEMETRY, seq=seq, rows=rows, historical=True, sealed_at=T0 + seq)
        out.append((gw, payload))
    return keys, out


def _config(folder: Path, broker: Broker, database: str, keys: dict[str, Ed25519PrivateKey]) -> Path:
    user, password = broker.credentials(CENTRAL_USER)
    data: dict[str, Any] = {
        "database": database,
        "signing_key": str(central_signing_key(folder)),
        "broker": {
            "host": broker.host,
            "port": broker.port,
            "ca_file": str(broker.ca_path),
            "username": user,
            "password": password,
            "client_id": "central-bench",
            "queue_max_bytes": 256 * 1024 * 1024,
            "queue_size": 4096,
        },
        "api": {"host": "127.0.0.1", "port": 0, "tokens": [{"name": "bench", "token": "bench-token"}]},
        "gateways": [{"id": gw, "keys": [{"pem": public_key_pem(k.public_key())}]} for gw, k in keys.items()],
    }
    path = folder / "central.yaml"
    with path.open("w", encoding="utf-8") as f:
        YAML(typ="safe").dump(data, f)
    return path


def _central(config: Path, workers: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from edge.cli import main; raise SystemExit(main())",
            "central",
            "--config",
            str(config),
            "--workers",
            str(workers),
            "--role",
            "ingest",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _publish(broker: Broker, payloads: list[tuple[str, bytes]]) -> None:
    clients: dict[str, mqtt.Client] = {}
    for gw in sorted({gw for gw, _ in payloads}):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{gw}", protocol=mqtt.MQTTv5)
        c.tls_set_context(broker.ssl_context())
        c.username_pw_set(*broker.credentials(gw))
        c.connect(broker.host, broker.port)
        c.loop_start()
        clients[gw] = c
    infos = [clients[gw].publish(f"gh/v1/{gw}/up/telemetry", p, qos=1) for gw, p in payloads]
    for info in infos:
        info.wait_for_publish(timeout=120)
    for c in clients.values():
        c.disconnect()
        c.loop_stop()


def run(
    pg: Postgres,
    folder: Path,
    workers: int,
    payloads: list[tuple[str, bytes]],
    keys: dict[str, Ed25519PrivateKey],
    per_batch: int,
) -> dict[str, Any]:
    run_dir = folder / f"w{workers}"
    run_dir.mkdir()
    database = pg.create_database()
    with start_broker(run_dir / "mq", gateways=tuple(keys)) as broker:
        config = _config(run_dir, broker, database, keys)
        log = run_dir / "central.log"
        # First start: make the persistent shared-subscription sessions, then stop central.
        central = _central(config, workers, log)
        _wait(
            lambda: log.read_text(encoding="utf-8").count("central mqtt subscribed") >= workers,
            120,
            "subscribed",
        )
        _stop(central)
        _publish(broker, payloads)  # the backlog waits at the broker
        store = PostgresStore(database)
        try:
            central = _central(config, workers, log)
            try:
                _wait(lambda: store.count("batches") > 0, 120, "first batch")
                first = time.perf_counter()
                first_count = store.count("batches")
                _wait(lambda: store.count("batches") >= len(payloads), 600, "drained")
                elapsed = time.perf_counter() - first
            finally:
                _stop(central)
            stored = store.count("telemetry")
        finally:
            store.close()
    records = (len(payloads) - first_count) * per_batch
    assert stored == len(payloads) * per_batch, (stored, len(payloads) * per_batch)
    return {
        "workers": workers,
        "batches": len(payloads),
        "records_per_batch": per_batch,
        "records_stored": stored,
        "timed_records": records,
        "seconds": round(elapsed, 2),
        "records_per_s": round(records / elapsed),
        "records_per_s_per_worker": round(records / elapsed / workers),
    }


def main(argv: list[str]) -> dict[str, Any]:
    batches = int(argv[0]) if argv else 400
    per_batch = int(argv[1]) if len(argv) > 1 else 2_500
    keys, payloads = _seal_all(batches, per_batch)
    results = []
    with tempfile.TemporaryDirectory() as tmp, start_postgres(durable=True) as pg:
        for workers in (1, 2):
            result = run(pg, Path(tmp), workers, payloads, keys, per_batch)
            print("  " + "  ".join(f"{k}={v}" for k, v in result.items()), flush=True)
            results.append(result)
    summary = {f"records_per_s_{r['workers']}w": r["records_per_s"] for r in results}
    out = {
        "summary": summary,
        "target_records_per_s_per_worker": 300_000,
        "results": results,
        "gateways": GATEWAYS,
        "postgresql": "15 (Debian), private, fsync on",
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
