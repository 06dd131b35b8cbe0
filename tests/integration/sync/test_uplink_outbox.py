"""The uplink on the real SQLite outbox (edge.outbox.Outbox): samples and events written by the
gateway reach central signed and in order, and the outbox is empty only once central has acked."""

from __future__ import annotations

from pathlib import Path

from cloud_sync.ports import Lane
from cloud_sync.uplink import Uplink
from core.model import Event, Quality, Sample
from edge.outbox import Outbox
from tests.broker import Broker
from tests.integration.sync.fake_central import FakeCentral
from tests.integration.sync.helpers import T0, signing_key, uplink_config
from tests.support import wait_until

GW = "gw-a"


def samples(n: int, start: int = 0) -> list[Sample]:
    return [
        Sample(f"site/dev{i % 10}/p", float(i), Quality.GOOD, T0 + i * 0.001) for i in range(start, start + n)
    ]


async def sealed_batches(outbox: Outbox) -> int:
    total = 0
    for lane in Lane:
        total += len(await outbox.pending(lane, limit=1_000))
    return total


async def test_outbox_drains_through_the_uplink_and_deletes_on_ack(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    async with Outbox(tmp_path / "outbox.db") as outbox:
        await outbox.put_samples(samples(3_000))
        await outbox.put_event(Event("alarm.raised", "site/tank-1/level", T0, {"level_m": 0.2}))
        await outbox.flush()
        async with (
            FakeCentral(broker, {GW: key.public_key()}, acking=False) as central,
            Uplink(uplink_config(broker, key_path), store=outbox),
        ):
            await wait_until(lambda: len(central.seqs(GW, Lane.TELEMETRY)) == 6, message="6 batches")
            await wait_until(lambda: central.seqs(GW, Lane.EVENT) == {1}, message="the event")
            assert central.arrivals[0].lane is Lane.EVENT
            assert await sealed_batches(outbox) == 7  # all delivered, none acknowledged: all kept
            central.acking = True
            central.ack_now(GW, Lane.TELEMETRY)
            central.ack_now(GW, Lane.EVENT)

            async def drained() -> bool:
                return await sealed_batches(outbox) == 0

            await wait_until(drained, message="outbox empty after acks")
            assert sum(a.record_count for a in central.arrivals_of(GW, Lane.TELEMETRY)) == 3_000
