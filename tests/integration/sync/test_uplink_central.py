"""Gateway to central for real: SQLite outbox → Uplink → TLS Mosquitto (project ACL) → the central
service (cloud_sync.central) verifies, stores once and acks → the outbox deletes."""

from __future__ import annotations

from pathlib import Path

from cloud_sync.central.app import CentralService
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import key_id
from cloud_sync.ports import Lane
from cloud_sync.uplink import Uplink
from core.model import Event, Quality, Sample
from edge.outbox import Outbox
from tests.broker import Broker
from tests.integration.central.conftest import Gateway, central_config
from tests.integration.sync.helpers import T0, signing_key, uplink_config
from tests.support import wait_until

GW = "gw-a"


async def test_outbox_to_central_service_and_back(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    gateway = Gateway(GW, key, make_sealer(GW, key_id(key.public_key()), key))
    user, password = broker.credentials(CENTRAL_USER)
    config = central_config(
        tmp_path,
        [gateway],
        broker={
            "host": broker.host,
            "port": broker.port,
            "ca_file": str(broker.ca_path),
            "username": user,
            "password": password,
            "client_id": "central-e2e",
        },
    )
    async with CentralService(config) as central, Outbox(tmp_path / "outbox.db") as outbox:
        assert central.mqtt is not None
        await wait_until(central.mqtt.subscribed.is_set, message="central subscribed")
        await outbox.put_samples(
            [Sample(f"estate/dev{i % 10}/p", float(i), Quality.GOOD, T0 + i * 0.001) for i in range(4_000)]
        )
        await outbox.put_event(Event("alarm.raised", "estate/tank-1/level", T0, {"level_m": 0.1}))
        await outbox.flush()

        async def outbox_empty() -> bool:
            for lane in Lane:
                if await outbox.pending(lane, limit=1):
                    return False
            return central.ingestor.counters["records"] == 4_001

        async with Uplink(uplink_config(broker, key_path), store=outbox) as uplink:
            await wait_until(outbox_empty, message="everything stored at central and deleted here")
            status = uplink.status()
        assert central.ingestor.counters["rejected"] == 0
        assert central.ingestor.counters["stored"] == 9  # 8 telemetry batches of 500 + 1 event batch
        assert status["lanes"]["telemetry"]["acked"] == 8
        assert status["lanes"]["event"]["acked"] == 1
