"""Horizontal ingest: ``gatehouse central --workers 2`` shares the gateways' topics through MQTT
v5 shared subscriptions; kill -9 of one worker during a drain stores every record exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from ruamel.yaml import YAML

from cloud_sync.central.storage.postgres import PostgresStore
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.ports import Lane, TelemetryRow
from tests.broker import Broker, start_broker
from tests.pg import Postgres
from tests.support import wait_until

from .conftest import Gateway, central_config
from .test_mqtt_ingest import GatewayClient

BATCHES = 300
ROWS = 200


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with start_broker(tmp_path / "mq", gateways=("gw-a", "gw-b")) as running:
        yield running


def write_config(tmp_path: Path, broker: Broker, gateways: list[Gateway], database: str) -> Path:
    user, password = broker.credentials(CENTRAL_USER)
    config = central_config(
        tmp_path,
        gateways,
        database=database,
        broker={
            "host": broker.host,
            "port": broker.port,
            "ca_file": str(broker.ca_path),
            "username": user,
            "password": password,
            "client_id": "central-workers",
        },
    )
    path = tmp_path / "central.yaml"
    with path.open("w", encoding="utf-8") as f:
        YAML(typ="safe").dump(config.model_dump(mode="json", exclude_none=True), f)
    return path


def workers_of(supervisor: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(supervisor.pid).children()
        if "cloud_sync.central.workers" in " ".join(p.cmdline())
    ]


def batch(seq: int) -> list[TelemetryRow]:
    return [
        TelemetryRow(f"gw-a/dev{i % 20}/p{i}", float(seq * ROWS + i), 0, "", 1_767_225_600.0 + seq, None)
        for i in range(ROWS)
    ]


async def test_kill_one_of_two_workers_during_a_drain_stores_every_record_once(
    tmp_path: Path, broker: Broker, postgres: Postgres, gw_a: Gateway, gw_b: Gateway
) -> None:
    database = postgres.create_database()
    config_path = write_config(tmp_path, broker, [gw_a, gw_b], database)
    log = tmp_path / "central.log"
    log_file = log.open("wb")  # noqa: ASYNC230, SIM115 - a local file, before anything runs
    supervisor = subprocess.Popen(  # noqa: ASYNC220 - started once; waited for with polling
        [
            sys.executable,
            "-c",
            "from edge.cli import main; raise SystemExit(main())",
            "central",
            "--config",
            str(config_path),
            "--workers",
            "2",
            "--role",
            "ingest",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    store = await asyncio.to_thread(PostgresStore, database)
    gw = GatewayClient(broker, "gw-a")
    try:
        await wait_until(lambda: len(workers_of(supervisor)) == 2, timeout_s=60, message="two workers")
        # A first start has no session at the broker yet: publish once both have subscribed.
        await wait_until(
            lambda: log.read_text(encoding="utf-8").count("central mqtt subscribed") >= 2,
            timeout_s=60,
            message="both workers subscribed",
        )
        await wait_until(gw.subscribed.is_set, message="gateway subscribed")
        payloads = [gw_a.telemetry(seq, batch(seq)) for seq in range(1, BATCHES + 1)]
        await asyncio.to_thread(_publish_all, gw, payloads[:20])
        await wait_until(lambda: store.count("batches") >= 1, timeout_s=60, message="ingest running")
        publisher = asyncio.create_task(asyncio.to_thread(_publish_all, gw, payloads[20:]))
        await wait_until(lambda: store.count("batches") >= 60, timeout_s=60, message="drain under way")
        victim = workers_of(supervisor)[0]
        os.kill(victim.pid, signal.SIGKILL)
        stored_at_kill = store.count("batches")
        await publisher
        await wait_until(
            lambda: store.count("batches") == BATCHES, timeout_s=180, message="every batch stored"
        )
        assert stored_at_kill < BATCHES, "the kill came after the drain: nothing was tested"
        # The supervisor brought the killed worker back (same client id: its session resumes).
        await wait_until(lambda: len(workers_of(supervisor)) == 2, timeout_s=60, message="worker restarted")
        assert victim.pid not in [p.pid for p in workers_of(supervisor)]
        assert store.count("telemetry") == BATCHES * ROWS
        assert store.ack_position("gw-a", Lane.TELEMETRY) == (BATCHES, ())
        await wait_until(
            lambda: (a := gw.last_ack(Lane.TELEMETRY)) is not None and a.acked == BATCHES,
            timeout_s=60,
            message="gateway acked to the end",
        )
    finally:
        gw.close()
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(timeout=60)
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
            await asyncio.to_thread(store.close)
            log_file.close()
    assert supervisor.returncode == 0


def _publish_all(gw: GatewayClient, payloads: list[bytes]) -> None:
    for payload in payloads:
        gw.publish("gh/v1/gw-a/up/telemetry", payload)
