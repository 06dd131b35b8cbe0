"""Forged acks on a real broker delete nothing; central's real signed ack does. And the uplink is
back within a few seconds of a broker restart, however long the outage was.

Real parts: the project's TLS Mosquitto with its ACL (tests/broker.py), the real Uplink, the real
CentralService, and a privileged test client (the broker's ``central`` user, the one the ACL lets
publish on ``gh/v1/+/ack``) playing a compromised or misconfigured publisher.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.ack import AckMessage, encode_ack
from cloud_sync.central.app import CentralService
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.downlink import DownlinkSigner, encode_downlink
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import key_id
from cloud_sync.mqtt_client import IncomingMessage, MqttSession, MqttSettings
from cloud_sync.ports import Lane
from cloud_sync.uplink import Uplink, UplinkConfig
from tests.broker import Broker
from tests.integration.central.conftest import Gateway, central_config
from tests.integration.sync.helpers import CENTRAL_KEY, events, signing_key, telemetry, uplink_config
from tests.support import wait_until
from tests.unit.cloud_sync.fake_store import MemoryBatchStore

GW = "gw-a"
ATTACKER = Ed25519PrivateKey.from_private_bytes(b"\x66" * 32)


async def privileged_client(broker: Broker) -> MqttSession:
    user, password = broker.credentials(CENTRAL_USER)
    settings = MqttSettings(
        host=broker.host,
        port=broker.port,
        ca_file=broker.ca_path,
        client_id="forger",
        username=user,
        password=password,
        connect_timeout_s=10.0,
    )
    session = await MqttSession.open(settings)
    await session.subscribe(f"gh/v1/{GW}/up/#")
    return session


def forged_acks() -> dict[str, bytes]:
    """One forgery per way of getting it wrong; each claims everything is stored."""
    claim = AckMessage(Lane.TELEMETRY, 1_000, (), time.time())
    body = encode_ack(claim)
    attacker_kid = encode_downlink(kind="ack", gateway_id=GW, dseq=2**62, body=body, private_key=ATTACKER)
    # Central's key id in the header but the attacker's signature over it.
    genuine_layout = encode_downlink(
        kind="ack", gateway_id=GW, dseq=2**62, body=body, private_key=CENTRAL_KEY
    )
    magic, signed_part, _signature = msgpack.unpackb(genuine_layout, raw=False)
    bad_signature = msgpack.packb([magic, signed_part, ATTACKER.sign(signed_part)], use_bin_type=True)
    # Really signed by central, but for another gateway (captured there and replayed here).
    other_gateway = DownlinkSigner(CENTRAL_KEY, clock_us=lambda: 2**62).sign_ack("gw-b", claim)
    return {
        "unsigned": body,
        "unknown_key": attacker_kid,
        "bad_signature": bad_signature,
        "wrong_gateway": other_gateway,
        "unsigned_event_lane": encode_ack(AckMessage(Lane.EVENT, 1_000, (), time.time())),
    }


def sends_of(seen: list[IncomingMessage], lane: Lane) -> int:
    return sum(1 for m in seen if m.topic.endswith(f"/up/{lane.value}"))


async def collect(session: MqttSession, into: list[IncomingMessage]) -> None:
    while True:
        into.append(await session.messages.get())


async def test_forged_acks_delete_nothing_and_centrals_signed_ack_does(
    broker: Broker, tmp_path: Path
) -> None:
    key_path, key = signing_key(tmp_path)
    store = MemoryBatchStore()
    store.add(Lane.TELEMETRY, telemetry(1_000))  # two batches of 500
    store.add(Lane.EVENT, events(3))
    reported: list[tuple[str, str, dict[str, Any]]] = []

    async def on_event(kind: str, source: str, data: dict[str, Any]) -> None:
        reported.append((kind, source, data))

    config = uplink_config(broker, key_path, ack_timeout_s=2.0)
    forger = await privileged_client(broker)
    seen: list[IncomingMessage] = []
    watcher = asyncio.create_task(collect(forger, seen))
    try:
        async with Uplink(config, store=store, on_event=on_event) as uplink:
            await wait_until(
                lambda: sends_of(seen, Lane.TELEMETRY) >= 2, message="both telemetry batches sent"
            )
            for payload in forged_acks().values():
                await forger.publish(f"gh/v1/{GW}/ack", payload, qos=1)
            await wait_until(
                lambda: sum(uplink.status()["rejected_acks"].values()) >= 5, message="every forgery refused"
            )
            status = uplink.status()
            assert status["rejected_acks"] == {
                "unsigned": 2,
                "unknown_key": 1,
                "bad_signature": 1,
                "wrong_gateway": 1,
            }
            # Nothing deleted, nothing acknowledged: the batches are still the gateway's to deliver.
            assert store.acknowledged == []
            assert store.sealed_seqs(Lane.TELEMETRY) == [1, 2] and store.sealed_seqs(Lane.EVENT) == [1]
            assert status["lanes"]["telemetry"]["acked"] == 0 and status["counters"]["acks"] == 0
            # One burst: one event for the operator (not five).
            assert [(k, s) for k, s, _ in reported] == [("system.ack_rejected", "uplink")]
            assert reported[0][2]["reason"] == "unsigned"

            # No central is listening, so nothing is stored: after ack_timeout_s it sends again.
            before = sends_of(seen, Lane.TELEMETRY)
            await wait_until(lambda: sends_of(seen, Lane.TELEMETRY) >= before + 2, message="batches resent")

            # The real central, whose key the gateway pinned: its signed acks delete them.
            seal = make_sealer(GW, key_id(key.public_key()), key)
            (tmp_path / "central").mkdir()
            user, password = broker.credentials(CENTRAL_USER)
            central_cfg = central_config(
                tmp_path / "central",
                [Gateway(GW, key, seal)],
                broker={
                    "host": broker.host,
                    "port": broker.port,
                    "ca_file": str(broker.ca_path),
                    "username": user,
                    "password": password,
                    "client_id": "central-signed-acks",
                },
            )
            async with CentralService(central_cfg) as central:
                await wait_until(
                    lambda: store.sealed_seqs(Lane.TELEMETRY) == [] and store.sealed_seqs(Lane.EVENT) == [],
                    timeout_s=30,
                    message="deleted on central's signed acks",
                )
                assert central.store.count("telemetry") == 1_000 and central.store.count("events") == 3
                status = uplink.status()
                assert status["lanes"]["telemetry"]["acked"] == 2 and status["lanes"]["event"]["acked"] == 1
                # A genuine but old ack (a replay of something central signed earlier) is stale.
                old = DownlinkSigner(CENTRAL_KEY, clock_us=lambda: 1).sign_ack(
                    GW, AckMessage(Lane.TELEMETRY, 0, ((1, 2),), 1.0)
                )
                await forger.publish(f"gh/v1/{GW}/ack", old, qos=1)
                await wait_until(
                    lambda: uplink.status()["rejected_acks"].get("stale", 0) == 1, message="replay refused"
                )
    finally:
        watcher.cancel()
        await forger.close()


class WorstJitter(random.Random):
    """Always the longest delay the backoff may choose."""

    def random(self) -> float:
        return 0.999


async def test_after_a_broker_outage_the_uplink_is_back_within_seconds(
    broker: Broker, tmp_path: Path
) -> None:
    """The defaults, worst-case jitter, an outage long enough for five failed connects: before the
    cap was lowered the next attempt could be 16–30 s away; now at most backoff_max_s (4 s)."""
    key_path, _key = signing_key(tmp_path)
    defaults = UplinkConfig.model_fields
    config = uplink_config(
        broker,
        key_path,
        backoff_initial_s=defaults["backoff_initial_s"].default,
        backoff_max_s=defaults["backoff_max_s"].default,
    )
    assert config.backoff_max_s <= 5.0
    store = MemoryBatchStore()
    async with Uplink(config, store=store, rng=WorstJitter()) as uplink:
        await wait_until(lambda: uplink.status()["connected"], message="connected")
        broker.stop()
        await wait_until(lambda: not uplink.status()["connected"], message="outage noticed")
        await wait_until(
            lambda: uplink.status()["counters"]["connect_failures"] >= 5,
            timeout_s=60,
            message="five failures",
        )
        await asyncio.to_thread(broker.start)
        back_at = time.monotonic()
        await wait_until(lambda: uplink.status()["connected"], timeout_s=30, message="reconnected")
        waited_s = time.monotonic() - back_at
        assert waited_s < config.backoff_max_s + 3.0, (
            f"reconnected {waited_s:.1f} s after the broker returned"
        )
