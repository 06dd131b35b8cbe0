"""Central against a real, private Mosquitto (TLS, passwords, the project's ACL)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_sync.ack import AckMessage
from cloud_sync.central.app import CentralService
from cloud_sync.central.store import CentralStore
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.downlink import verify_ack
from cloud_sync.keys import key_id
from cloud_sync.ports import EventRow, Lane, TelemetryRow
from tests.broker import Broker, start_broker
from tests.integration.sync.helpers import CENTRAL_KEY
from tests.support import wait_until

from .conftest import Gateway, central_config

CENTRAL_KEYS = {key_id(CENTRAL_KEY.public_key()): CENTRAL_KEY.public_key()}


class GatewayClient:
    """A bare paho client standing in for a gateway's uplink: publish batches, collect acks
    (every one must verify as central's signed ack for this gateway)."""

    def __init__(self, broker: Broker, gateway_id: str) -> None:
        self.gateway_id = gateway_id
        self.acks: list[AckMessage] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{gateway_id}", protocol=mqtt.MQTTv5
        )
        self.client.tls_set_context(broker.ssl_context())
        self.client.username_pw_set(*broker.credentials(gateway_id))
        self.client.on_connect = lambda c, *_: c.subscribe(f"gh/v1/{gateway_id}/ack", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.acks.append(
                verify_ack(bytes(msg.payload), keys=CENTRAL_KEYS, gateway_id=self.gateway_id).ack
            )

    def last_ack(self, lane: Lane) -> AckMessage | None:
        with self._lock:
            mine = [a for a in self.acks if a.lane is lane]
        return mine[-1] if mine else None

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(timeout=30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with start_broker(tmp_path / "mq", gateways=("gw-a", "gw-b")) as running:
        yield running


@pytest.fixture
async def central(
    tmp_path: Path, broker: Broker, gw_a: Gateway, gw_b: Gateway, database: str | None
) -> AsyncIterator[CentralService]:
    user, password = broker.credentials(CENTRAL_USER)
    config = central_config(
        tmp_path,
        [gw_a, gw_b],
        database=database,
        broker={
            "host": broker.host,
            "port": broker.port,
            "ca_file": str(broker.ca_path),
            "username": user,
            "password": password,
            "client_id": "central-test",
        },
    )
    async with CentralService(config) as service:
        assert service.mqtt is not None
        await wait_until(service.mqtt.subscribed.is_set, message="central subscribed")
        yield service


def rows(t0: float) -> list[TelemetryRow]:
    return [TelemetryRow(f"s/m/p{i}", i * 1.5, 0, "", t0 + i, None) for i in range(5)]


async def test_batches_over_mqtt_are_stored_once_and_acked(
    broker: Broker, central: CentralService, gw_a: Gateway
) -> None:
    gw = GatewayClient(broker, "gw-a")
    try:
        await wait_until(gw.subscribed.is_set, message="gateway subscribed to its acks")
        gw.publish(
            "gh/v1/gw-a/state",
            json.dumps(
                {"state": "online", "ts": 1.0, "backlog": {}, "seq": {"event": 0, "telemetry": 3}}
            ).encode(),
            retain=True,
        )
        # Coming online earns an ack per lane, so a gateway can resume where central stands.
        await wait_until(lambda: gw.last_ack(Lane.EVENT) is not None, message="online ack")
        b1, b2, b3 = (gw_a.telemetry(s, rows(s * 100.0)) for s in (1, 2, 3))
        gw.publish("gh/v1/gw-a/up/telemetry", b1)
        gw.publish("gh/v1/gw-a/up/telemetry", b3)
        await wait_until(
            lambda: (a := gw.last_ack(Lane.TELEMETRY)) is not None and a.missing == ((2, 2),),
            message="ack asking for seq 2",
        )
        gw.publish("gh/v1/gw-a/up/telemetry", b2)
        gw.publish("gh/v1/gw-a/up/telemetry", b1)  # a resend after a lost ack
        await wait_until(
            lambda: (a := gw.last_ack(Lane.TELEMETRY)) is not None and a.acked == 3, message="ack of 3"
        )
        await wait_until(lambda: central.ingestor.counters["duplicate"] == 1, message="duplicate counted")
        assert central.store.count("telemetry") == 15 and central.store.count("batches") == 3
        gateway = central.store.ack_position("gw-a", Lane.TELEMETRY)
        assert gateway == (3, ())
    finally:
        gw.close()


async def test_forged_and_cross_gateway_batches_over_mqtt_are_rejected(
    broker: Broker, central: CentralService, gw_a: Gateway, gw_b: Gateway
) -> None:
    gw = GatewayClient(broker, "gw-b")
    try:
        await wait_until(gw.subscribed.is_set, message="gateway subscribed")
        # gw-b publishes a batch sealed with gw-a's identity on its own topic: a replay/mix-up.
        gw.publish("gh/v1/gw-b/up/telemetry", gw_a.telemetry(1, rows(1.0)))
        tampered = bytearray(gw_b.telemetry(1, rows(1.0)))
        tampered[-70] ^= 0xFF
        gw.publish("gh/v1/gw-b/up/telemetry", bytes(tampered))
        gw.publish("gh/v1/gw-b/up/telemetry", b"\x93\xa3GH1")
        # Topics the ACL allows (gh/v1/gw-b/up/#) but the protocol does not: counted and audited.
        gw.publish("gh/v1/gw-b/up/event/extra", gw_b.events(1, []))
        gw.publish("gh/v1/gw-b/up", b"x")
        await wait_until(lambda: central.ingestor.counters["rejected"] == 5, message="five rejections")
        await wait_until(lambda: central.store.count("rejected") == 5, message="five audited")
        assert central.store.count("batches") == 0 and central.store.count("telemetry") == 0
        _, items = central.store.rejected(gateways=None, limit=100)
        rejected = [(r["reason"], r["lane"]) for r in items if r["transport"] == "mqtt"]
        assert sorted(r[0] for r in rejected) == [
            "bad_route",
            "bad_route",
            "bad_signature",
            "gateway_mismatch",
            "malformed",
        ]
        assert sorted(lane for reason, lane in rejected if reason == "bad_route") == ["", "event/extra"]
        # The ACL keeps gw-b off gw-a's topic altogether: central never sees that publish.
        gw.publish("gh/v1/gw-a/up/telemetry", gw_a.telemetry(1, rows(1.0)))
        gw.publish("gh/v1/gw-b/up/telemetry", gw_b.telemetry(1, rows(1.0)))
        await wait_until(lambda: central.ingestor.counters["stored"] == 1, message="gw-b's genuine batch")
        assert central.store.ack_position("gw-a", Lane.TELEMETRY) == (0, ())
        await wait_until(
            lambda: (a := gw.last_ack(Lane.TELEMETRY)) is not None and a.acked == 1, message="gw-b acked"
        )
    finally:
        gw.close()


async def test_central_with_certificate_auth(tmp_path: Path, gw_a: Gateway, gw_b: Gateway) -> None:
    from cloud_sync.broker_config import AuthMode

    with start_broker(tmp_path / "mq-cert", gateways=("gw-a", "gw-b"), auth=AuthMode.CERTIFICATE) as broker:
        cert, key = broker.client_cert(CENTRAL_USER)
        config = central_config(
            tmp_path,
            [gw_a, gw_b],
            broker={
                "host": broker.host,
                "port": broker.port,
                "ca_file": str(broker.ca_path),
                "username": None,
                "client_cert": {"cert_file": str(cert), "key_file": str(key)},
                "client_id": "central-cert",
            },
        )
        async with CentralService(config) as service:
            assert service.mqtt is not None
            await wait_until(
                service.mqtt.subscribed.is_set, message="central subscribed with its certificate"
            )
            gw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-a-cert", protocol=mqtt.MQTTv5)
            gw.tls_set_context(broker.ssl_context("gw-a"))
            gw.connect(broker.host, broker.port)
            gw.loop_start()
            try:
                gw.publish("gh/v1/gw-a/up/telemetry", gw_a.telemetry(1, rows(1.0)), qos=1).wait_for_publish(
                    30
                )
                await wait_until(lambda: service.ingestor.counters["stored"] == 1, message="batch stored")
            finally:
                gw.disconnect()
                gw.loop_stop()


async def test_batches_sent_while_central_is_down_wait_at_the_broker(
    tmp_path: Path, broker: Broker, gw_a: Gateway, gw_b: Gateway, database: str | None
) -> None:
    user, password = broker.credentials(CENTRAL_USER)
    config = central_config(
        tmp_path,
        [gw_a, gw_b],
        database=database,
        broker={
            "host": broker.host,
            "port": broker.port,
            "ca_file": str(broker.ca_path),
            "username": user,
            "password": password,
            "client_id": "central-restart",
        },
    )
    async with CentralService(config) as first:
        assert first.mqtt is not None
        await wait_until(first.mqtt.subscribed.is_set, message="central subscribed")
    gw = GatewayClient(broker, "gw-a")
    try:
        await wait_until(gw.subscribed.is_set, message="gateway subscribed")
        gw.publish("gh/v1/gw-a/up/telemetry", gw_a.telemetry(1, rows(1.0)))
        gw.publish("gh/v1/gw-a/up/telemetry", gw_a.telemetry(2, rows(2.0)))
        async with CentralService(config) as second:
            # Central's persistent session held both batches; the restarted central stores them.
            await wait_until(lambda: second.ingestor.counters["stored"] == 2, message="queued batches stored")
            await wait_until(
                lambda: (a := gw.last_ack(Lane.TELEMETRY)) is not None and a.acked == 2, message="ack of 2"
            )
            assert second.store.count("telemetry") == 10
    finally:
        gw.close()


async def test_an_alarm_overtakes_telemetry_queued_ahead_of_it(
    tmp_path: Path, broker: Broker, gw_a: Gateway, gw_b: Gateway
) -> None:
    """Central commits event batches on their own path: a backlog queued before an alarm at the
    broker does not delay it (without that path the alarm would be stored last)."""
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
            "client_id": "central-priority",
        },
    )
    async with CentralService(config) as first:
        assert first.mqtt is not None
        await wait_until(first.mqtt.subscribed.is_set, message="central subscribed")
    backlog = 60
    gw = GatewayClient(broker, "gw-a")
    try:
        await wait_until(gw.subscribed.is_set, message="gateway subscribed")
        # Queued at the broker while central is away: the backlog first, then one alarm.
        for seq in range(1, backlog + 1):
            big = [
                TelemetryRow(f"s/m/p{i % 50}", float(i), 0, "", seq * 10.0 + i * 1e-3, None)
                for i in range(2_000)
            ]
            gw.publish("gh/v1/gw-a/up/telemetry", gw_a.telemetry(seq, big, historical=True))
        gw.publish("gh/v1/gw-a/up/event", gw_a.events(1, [EventRow("alarm.raised", "s/tank/level", 5.0, {})]))
        async with CentralService(config) as second:
            await wait_until(
                lambda: second.ingestor.counters["stored"] == backlog + 1, timeout_s=120, message="all stored"
            )
            assert isinstance(second.store, CentralStore)  # this test reads SQLite directly
            with second.store.reader() as db:
                (alarm_at,) = db.execute("SELECT received_at FROM batches WHERE lane = 'event'").fetchone()
                before = db.execute(
                    "SELECT count(*) FROM batches WHERE lane = 'telemetry' AND received_at < ?", (alarm_at,)
                ).fetchone()[0]
        # Without the event path the alarm is stored last (all 60 before it). With it, how many
        # telemetry batches are stored first is a race between paho reading the queued messages
        # and the store stage (4-22 on a quiet machine, 31 once under a loaded test run), so the
        # claim checked is the one that does not depend on that race: not last.
        assert before < backlog, f"the alarm was stored after all {before} of {backlog} telemetry batches"
    finally:
        gw.close()
