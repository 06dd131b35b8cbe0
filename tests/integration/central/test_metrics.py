"""Central's /metrics and /healthz on a real service: HTTPS ingest counted by outcome and reason,
per-gateway positions and the backlog a gateway reports over a real Mosquitto, the token scope,
and /healthz turning 503 for a locked database, a full ingest queue and a stopped broker."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families

from cloud_sync.central import ops
from cloud_sync.central.app import CentralService
from cloud_sync.central.config import ApiToken, CentralConfig
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import key_id
from cloud_sync.ports import Lane, TelemetryRow
from tests.broker import Broker, start_broker
from tests.integration.central.test_mqtt_ingest import GatewayClient
from tests.support import wait_until

from .conftest import TOKEN, Gateway, central_config

PROM = "prom-token-456"
GRAFANA = Path(__file__).resolve().parents[3] / "docs" / "grafana" / "central.json"
READER = "reader-token-789"
OCTETS = {"Content-Type": "application/octet-stream"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def with_tokens(config: CentralConfig, **changes: Any) -> CentralConfig:
    tokens = [
        *config.api.tokens,
        ApiToken(name="prometheus", token=PROM, scopes=("metrics",)),
        ApiToken(name="dashboards", token=READER, scopes=("read",)),
    ]
    return config.model_copy(update={"api": config.api.model_copy(update={"tokens": tokens}), **changes})


def rows(t0: float, n: int = 5) -> list[TelemetryRow]:
    return [TelemetryRow(f"s/m/p{i}", float(i), 0, "", t0 + i, None) for i in range(n)]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def scrape(client: httpx.AsyncClient) -> Samples:
    r = await client.get("/metrics", headers={"Authorization": f"Bearer {PROM}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another writer holding the database: central can neither commit nor open a write."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


@pytest.fixture
def short_db_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops, "DB_LOCK_WAIT_S", 0.5)


async def client_for(service: CentralService, config: CentralConfig) -> httpx.AsyncClient:
    assert config.api.tls is not None
    ctx = ssl.create_default_context(cafile=str(config.api.tls.cert_file))
    return httpx.AsyncClient(base_url=f"https://127.0.0.1:{service.api_port}", verify=ctx, timeout=30.0)


async def test_https_ingest_counted_and_token_scope(
    tmp_path: Path, gw_a: Gateway, gw_b: Gateway, short_db_wait: None
) -> None:
    config = with_tokens(central_config(tmp_path, [gw_a, gw_b]))
    async with CentralService(config) as service, await client_for(service, config) as client:
        assert (await client.get("/metrics")).status_code == 401
        bad = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        reader = await client.get("/metrics", headers={"Authorization": f"Bearer {READER}"})
        assert reader.status_code == 403 and "metrics" in reader.json()["detail"]
        # A token without scopes has admin, which may read the metrics too.
        assert (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200
        # The metrics scope opens nothing else.
        assert (
            await client.get("/api/v1/gateways", headers={"Authorization": f"Bearer {PROM}"})
        ).status_code == 403

        auth = {"Authorization": f"Bearer {TOKEN}", **OCTETS}
        stranger = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
        forged = make_sealer("gw-a", key_id(gw_a.key.public_key()), stranger)
        for payload, gw, expected in (
            (gw_a.telemetry(1, rows(100.0)), "gw-a", 200),
            (gw_a.telemetry(2, rows(200.0)), "gw-a", 200),
            (gw_a.telemetry(1, rows(100.0)), "gw-a", 200),  # a resend: duplicate, acked again
            (
                forged(lane=Lane.TELEMETRY, seq=3, rows=rows(1.0), historical=False, sealed_at=1.0),
                "gw-a",
                403,
            ),
            (gw_a.telemetry(3, rows(300.0)), "gw-zz", 403),  # not enrolled
        ):
            r = await client.post(f"/api/v1/ingest/{gw}/telemetry", content=payload, headers=auth)
            assert r.status_code == expected, r.text

        m = await scrape(client)
        received = "gatehouse_central_batches_received_total"
        assert value(m, received, transport="https", lane="telemetry") == 5
        assert value(m, "gatehouse_central_batches_stored_total", transport="https", lane="telemetry") == 2
        assert value(m, "gatehouse_central_batches_duplicate_total", transport="https", kind="duplicate") == 1
        rejected = "gatehouse_central_batches_rejected_total"
        assert value(m, rejected, transport="https", reason="bad_signature") == 1
        assert value(m, rejected, transport="https", reason="unknown_gateway") == 1
        assert value(m, "gatehouse_central_records_stored_total", lane="telemetry") == 10
        assert value(m, "gatehouse_central_acks_sent_total", transport="https") == 3
        assert value(m, "gatehouse_central_commit_seconds_count") == 3
        assert value(m, "gatehouse_central_gateway_highest_seq", gateway="gw-a", lane="telemetry") == 2
        assert value(m, "gatehouse_central_gateway_acked_seq", gateway="gw-a", lane="telemetry") == 2
        age = value(m, "gatehouse_central_gateway_last_batch_age_seconds", gateway="gw-a", lane="telemetry")
        assert age is not None and 0 <= age < 120
        assert value(m, "gatehouse_central_gateway_enrolled", gateway="gw-b") == 1
        assert value(m, "gatehouse_central_gateway_online", gateway="gw-b") == 0
        assert value(m, "gatehouse_central_gateway_enrolled", gateway="gw-zz") is None  # no label for garbage
        assert value(m, "gatehouse_central_broker_configured") == 0
        assert (value(m, "gatehouse_central_database_bytes", file="main") or 0) > 0
        assert (value(m, "gatehouse_central_process_resident_memory_bytes") or 0) > 0
        assert (value(m, "gatehouse_central_process_open_fds") or 0) > 0
        assert value(m, "gatehouse_central_process_cpu_seconds_total") is not None

        r = await client.get("/healthz")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["healthy"] is True and body["problems"] == []
        assert body["checks"]["database"]["writable"] is True
        assert body["checks"]["broker"] == {"configured": False, "connected": False}

        # Another writer holds the database: central cannot commit, and says so.
        assert isinstance(config.database, Path)  # SQLite's write lock
        lock = await asyncio.to_thread(hold_write_lock, config.database)
        try:
            r = await client.get("/healthz")
        finally:
            await asyncio.to_thread(lock.close)
        assert r.status_code == 503
        assert [p["check"] for p in r.json()["problems"]] == ["database"]
        assert (await client.get("/healthz")).status_code == 200


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with start_broker(tmp_path / "mq", gateways=("gw-a", "gw-b")) as running:
        yield running


@pytest.fixture
async def mqtt_central(
    tmp_path: Path, broker: Broker, gw_a: Gateway, gw_b: Gateway
) -> AsyncIterator[tuple[CentralService, httpx.AsyncClient, CentralConfig]]:
    user, password = broker.credentials(CENTRAL_USER)
    config = central_config(
        tmp_path,
        [gw_a, gw_b],
        broker={
            "host": broker.host,
            "port": broker.port,
            "ca_file": str(broker.ca_path),
            "username": user,
            "password": password,
            "client_id": "central-metrics-test",
            "queue_size": 2,
            "reconnect_max_s": 1,
        },
    )
    config = with_tokens(config)
    async with CentralService(config) as service, await client_for(service, config) as client:
        assert service.mqtt is not None
        await wait_until(service.mqtt.subscribed.is_set, timeout_s=20, message="central subscribed")
        yield service, client, config


async def healthz(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    r = await client.get("/healthz")
    return r.status_code, r.json()


async def test_mqtt_backlog_queue_and_broker_health(
    broker: Broker,
    mqtt_central: tuple[CentralService, httpx.AsyncClient, CentralConfig],
    gw_a: Gateway,
    short_db_wait: None,
) -> None:
    service, client, config = mqtt_central
    status, body = await healthz(client)
    assert status == 200 and body["checks"]["broker"] == {"configured": True, "connected": True}
    assert body["checks"]["queues"]["telemetry"]["max_items"] == 2

    gw = GatewayClient(broker, "gw-a")
    try:
        await wait_until(gw.subscribed.is_set, timeout_s=20, message="gateway subscribed to its acks")
        state = {
            "state": "online",
            "ts": 1.0,
            "backlog": {
                "used_bytes": 1048576,
                "quota_bytes": 536870912,
                "telemetry_refused": False,
                "lanes": {
                    "telemetry": {
                        "rows": 120,
                        "batches": 3,
                        "batch_bytes": 40213,
                        "oldest_ts": None,
                        "last_seq": 4,
                    },
                    "event": {"rows": 0, "batches": 0, "batch_bytes": 0, "oldest_ts": None, "last_seq": 0},
                },
            },
            "seq": {"event": 0, "telemetry": 4},
        }
        gw.publish("gh/v1/gw-a/state", json.dumps(state).encode(), retain=True)
        gw.publish("gh/v1/gw-a/up/telemetry", gw_a.telemetry(1, rows(100.0)))
        gw.publish("gh/v1/gw-a/up/bogus", b"x")  # a stray topic: rejected as bad_route

        async def counted() -> bool:
            m = await scrape(client)
            return (
                value(m, "gatehouse_central_batches_stored_total", transport="mqtt", lane="telemetry") == 1
                and value(m, "gatehouse_central_batches_rejected_total", transport="mqtt", reason="bad_route")
                == 1
                and value(m, "gatehouse_central_gateway_online", gateway="gw-a") == 1
            )

        await wait_until(counted, timeout_s=20, message="MQTT batch, stray topic and state counted")
        m = await scrape(client)
        assert value(m, "gatehouse_central_broker_connected") == 1
        assert value(m, "gatehouse_central_gateway_backlog_rows", gateway="gw-a", lane="telemetry") == 120
        assert value(m, "gatehouse_central_gateway_backlog_batches", gateway="gw-a", lane="telemetry") == 3
        assert value(m, "gatehouse_central_gateway_backlog_bytes", gateway="gw-a", lane="telemetry") == 40213
        assert value(m, "gatehouse_central_gateway_outbox_quota_bytes", gateway="gw-a") == 536870912
        assert value(m, "gatehouse_central_gateway_reported_seq", gateway="gw-a", lane="telemetry") == 4
        assert (value(m, "gatehouse_central_acks_sent_total", transport="mqtt") or 0) >= 2  # online + batch
        assert value(m, "gatehouse_central_ingest_queue_capacity_items", queue="telemetry") == 2
        # Every series the Grafana dashboard asks for is one central exposes.
        dashboard = await asyncio.to_thread(GRAFANA.read_text, encoding="utf-8")
        wanted = set(re.findall(r"gatehouse_central_[a-z_]+", dashboard))
        raw = (await client.get("/metrics", headers={"Authorization": f"Bearer {PROM}"})).text
        exposed = set(re.findall(r"^# TYPE (\S+)", raw, re.M)) | {name for name, _labels in m}
        assert wanted and wanted <= exposed, wanted - exposed

        # The store is held by another writer: ingest stalls, the queue fills, central says so.
        assert isinstance(config.database, Path)  # SQLite's write lock
        lock = await asyncio.to_thread(hold_write_lock, config.database)
        try:

            def publish_many() -> None:
                for seq in range(2, 40):
                    gw.publish("gh/v1/gw-a/up/telemetry", gw_a.telemetry(seq, rows(seq * 100.0)))

            publisher = asyncio.create_task(asyncio.to_thread(publish_many))

            async def queue_full() -> bool:
                code, b = await healthz(client)
                return code == 503 and "queues" in [p["check"] for p in b["problems"]]

            await wait_until(queue_full, timeout_s=20, message="a full ingest queue reported")
            status, body = await healthz(client)
            assert {p["check"] for p in body["problems"]} == {"queues", "database"}
            assert body["checks"]["queues"]["telemetry"]["full"] is True
        finally:
            await asyncio.to_thread(lock.close)
        await publisher

        async def drained() -> bool:
            code, _ = await healthz(client)
            m = await scrape(client)
            return (
                code == 200
                and value(m, "gatehouse_central_gateway_acked_seq", gateway="gw-a", lane="telemetry") == 39
            )

        await wait_until(drained, timeout_s=30, message="the queue drained and every batch stored")
    finally:
        gw.close()

    # The broker goes away: unhealthy, and back when it returns.
    await asyncio.to_thread(broker.stop)

    async def broker_down() -> bool:
        code, b = await healthz(client)
        return code == 503 and [p["check"] for p in b["problems"]] == ["broker"]

    await wait_until(broker_down, timeout_s=20, message="broker loss reported")
    assert value(await scrape(client), "gatehouse_central_broker_connected") == 0
    await asyncio.to_thread(broker.start)

    async def healthy() -> bool:
        return (await healthz(client))[0] == 200

    await wait_until(healthy, timeout_s=30, message="healthy again after the broker returned")
