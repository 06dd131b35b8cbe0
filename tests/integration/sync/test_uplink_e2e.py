"""End-to-end encryption over the real chain (docs/protocol.md §2.7): outbox → Uplink (encrypt on)
→ TLS Mosquitto (project ACL) → central.

A second client logged in as the broker's ``central`` user, the account that may read every
gateway's ``up/`` topics (what a broker operator or a stolen broker credential gets), sees every
batch but none of its values, and cannot decode the records. Central with its ``e2e_key`` stores
the values exactly; central without it rejects the batches as ``undecryptable`` and acks nothing,
so the gateway keeps them and delivers them once central has its key.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud_sync.central.app import CentralService
from cloud_sync.central.config import CentralConfig
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.e2e import SUITE_AES, SUITE_SM4, keys_by_id
from cloud_sync.envelope import decode_header, decode_records, make_sealer
from cloud_sync.errors import EnvelopeError
from cloud_sync.keys import key_id, save_x25519_private, save_x25519_public
from cloud_sync.mqtt_client import IncomingMessage, MqttSession, MqttSettings
from cloud_sync.ports import Lane
from cloud_sync.uplink import Uplink
from core.model import Event, Quality, Sample
from edge.outbox import Outbox
from tests.broker import Broker
from tests.integration.central.conftest import Gateway, central_config
from tests.integration.sync.helpers import T0, signing_key, uplink_config
from tests.support import wait_until

GW = "gw-a"
SECRET_TEXT = "vault-door code 4711-ZEBRA"
SECRET_NUMBER = 73519.62500000001
CENTRAL_E2E = X25519PrivateKey.from_private_bytes(bytes(range(0x40, 0x60)))


def _samples() -> list[Sample]:
    ordinary = [Sample(f"estate/dev{i % 10}/p", float(i), Quality.GOOD, T0 + i * 0.001) for i in range(1_200)]
    return [
        *ordinary,
        Sample("estate/vault/code", SECRET_TEXT, Quality.GOOD, T0 + 2.0),
        Sample("estate/meter/energy_kwh", SECRET_NUMBER, Quality.GOOD, T0 + 2.5),
    ]


def _central(tmp_path: Path, broker: Broker, key: Any, *, e2e_key: Path | None) -> CentralConfig:
    user, password = broker.credentials(CENTRAL_USER)
    gateway = Gateway(GW, key, make_sealer(GW, key_id(key.public_key()), key))
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
    return config.model_copy(update={"e2e_key": e2e_key})


@contextlib.asynccontextmanager
async def _sniffer(broker: Broker, into: list[IncomingMessage]) -> AsyncIterator[None]:
    """The broker's read-everything account, under a client id of its own."""
    user, password = broker.credentials(CENTRAL_USER)
    session = await MqttSession.open(
        MqttSettings(
            host=broker.host,
            port=broker.port,
            ca_file=broker.ca_path,
            client_id="sniffer",
            username=user,
            password=password,
            connect_timeout_s=10.0,
        )
    )
    await session.subscribe("gh/v1/+/up/#")

    async def collect() -> None:
        while True:
            into.append(await session.messages.get())

    task = asyncio.create_task(collect())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await session.close()


async def _fill(outbox: Outbox) -> None:
    await outbox.put_samples(_samples())
    await outbox.put_event(Event("alarm.raised", "estate/vault/door", T0, {"note": SECRET_TEXT}))
    await outbox.flush()


def _write_keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "central-e2e.key", tmp_path / "central-e2e.pub"
    save_x25519_private(CENTRAL_E2E, private)
    save_x25519_public(CENTRAL_E2E.public_key(), public)
    return private, public


@pytest.mark.parametrize("suite", [SUITE_AES, SUITE_SM4])
async def test_the_broker_sees_ciphertext_and_central_stores_the_values(
    broker: Broker, tmp_path: Path, suite: str
) -> None:
    key_path, key = signing_key(tmp_path)
    private, public = _write_keys(tmp_path)
    config = _central(tmp_path, broker, key, e2e_key=private)
    seen: list[IncomingMessage] = []
    async with (
        CentralService(config) as central,
        Outbox(tmp_path / "outbox.db") as outbox,
        _sniffer(broker, seen),
    ):
        assert central.mqtt is not None
        await wait_until(central.mqtt.subscribed.is_set, message="central subscribed")
        await _fill(outbox)
        expected = len(_samples()) + 1

        async def delivered() -> bool:
            for lane in Lane:
                if await outbox.pending(lane, limit=1):
                    return False
            return central.ingestor.counters["records"] == expected

        settings = uplink_config(broker, key_path, encrypt=suite, central_e2e_key=public)
        async with Uplink(settings, store=outbox):
            await wait_until(delivered, message="everything stored at central and deleted here")
        stored = central.ingestor.counters["stored"]
        await wait_until(lambda: len(seen) >= stored, message="the sniffer saw every batch")

        assert central.ingestor.counters["rejected"] == 0
        [code] = central.store.history("estate/vault/code", T0, T0 + 10, 10)
        [energy] = central.store.history("estate/meter/energy_kwh", T0, T0 + 10, 10)
        assert code["value"] == SECRET_TEXT and energy["value"] == SECRET_NUMBER
        [alarm] = central.store.events(gateways=None, kind="alarm.raised", limit=10)
        assert alarm["data"] == {"note": SECRET_TEXT}

    wrong = keys_by_id(X25519PrivateKey.generate())
    for message in seen:
        assert SECRET_TEXT.encode() not in message.payload
        assert msgpack.packb(SECRET_NUMBER) not in message.payload
        header = decode_header(message.payload)
        assert header.encryption == suite
        for keys in (None, wrong):
            with pytest.raises(EnvelopeError) as caught:
                decode_records(header, e2e_keys=keys)
            assert caught.value.reason == "undecryptable"
    # Central's key opens what the sniffer saw: the payloads were the real batches.
    opened = [decode_records(decode_header(m.payload), e2e_keys=keys_by_id(CENTRAL_E2E)) for m in seen]
    assert sum(len(records) for records in opened) >= expected


async def test_central_without_its_key_acks_nothing_and_the_gateway_keeps_the_batches(
    broker: Broker, tmp_path: Path
) -> None:
    key_path, key = signing_key(tmp_path)
    private, public = _write_keys(tmp_path)
    settings = uplink_config(broker, key_path, encrypt=SUITE_AES, central_e2e_key=public, ack_timeout_s=2.0)
    async with Outbox(tmp_path / "outbox.db") as outbox:
        await _fill(outbox)
        async with Uplink(settings, store=outbox) as uplink:
            async with CentralService(_central(tmp_path, broker, key, e2e_key=None)) as central:
                assert central.mqtt is not None
                await wait_until(
                    lambda: central.ingestor.counters["rejected"] >= 4,  # 3 telemetry + 1 event batch
                    message="every batch rejected",
                )
                central.ingestor.flush_audit()
                counts, _rows = central.store.rejected(gateways=None, limit=10)
                assert set(counts) == {"undecryptable"}
                assert central.ingestor.counters["stored"] == 0
                assert central.store.count("telemetry") == 0
                status = uplink.status()
                assert status["lanes"]["telemetry"]["acked"] == 0 and status["lanes"]["event"]["acked"] == 0
                assert await outbox.pending(Lane.TELEMETRY, limit=1)  # still the gateway's
            # Central fixed (its key configured): the same batches, resent, are stored.
            async with CentralService(_central(tmp_path, broker, key, e2e_key=private)) as central:

                async def drained() -> bool:
                    return not any([await outbox.pending(lane, limit=1) for lane in Lane])

                await wait_until(drained, message="resent batches stored and acked")
                [code] = central.store.history("estate/vault/code", T0, T0 + 10, 10)
                assert code["value"] == SECRET_TEXT
                assert central.store.count("telemetry") == len(_samples())
