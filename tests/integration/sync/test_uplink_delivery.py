"""The uplink against a real broker and a test-side central that verifies and acknowledges.

Delete only after ack, resend after timeout and on ``missing``, order (events first, live before
backlog), the bounded window, refusal by the ACL, and a broker restart in the middle of a stream.
"""

from __future__ import annotations

import json
from pathlib import Path

from cloud_sync.ports import Lane
from cloud_sync.uplink import Uplink
from tests.broker import Broker
from tests.integration.sync.fake_central import FakeCentral
from tests.integration.sync.helpers import events, signing_key, telemetry, uplink_config
from tests.support import wait_until
from tests.unit.cloud_sync.fake_store import MemoryBatchStore

GW = "gw-a"


def no_deletion_beyond_acks(store: MemoryBatchStore, central: FakeCentral) -> bool:
    """Every delete the uplink asked for is covered by an ack central actually sent."""
    return all(upto <= central.max_ack_sent(GW, lane) for lane, upto in store.acknowledged)


async def test_batches_are_deleted_only_after_central_acknowledges(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    store = MemoryBatchStore()
    store.add(Lane.TELEMETRY, telemetry(2_000))  # 4 batches of 500
    store.add(Lane.EVENT, events(3))
    async with (
        FakeCentral(broker, {GW: key.public_key()}, acking=False) as central,
        Uplink(uplink_config(broker, key_path), store=store) as uplink,
    ):
        await wait_until(lambda: central.seqs(GW, Lane.TELEMETRY) == {1, 2, 3, 4}, message="all batches")
        await wait_until(lambda: central.seqs(GW, Lane.EVENT) == {1}, message="the event batch")
        # Delivered but not acknowledged: nothing may be deleted.
        assert store.acknowledged == []
        assert store.sealed_seqs(Lane.TELEMETRY) == [1, 2, 3, 4]
        assert uplink.status()["lanes"]["telemetry"]["in_flight"] == 4

        central.acking = True
        central.ack_now(GW, Lane.TELEMETRY)
        central.ack_now(GW, Lane.EVENT)
        await wait_until(lambda: store.sealed_seqs(Lane.TELEMETRY) == [], message="deletion after ack")
        await wait_until(lambda: store.sealed_seqs(Lane.EVENT) == [], message="event deletion after ack")
        assert no_deletion_beyond_acks(store, central)
        status = uplink.status()
        assert status["connected"] is True
        assert status["lanes"]["telemetry"]["acked"] == 4
        assert status["counters"]["records_sent"] == 2_003


async def test_unacknowledged_batch_is_resent_byte_identical(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    store = MemoryBatchStore()
    store.add(Lane.TELEMETRY, telemetry(100))
    config = uplink_config(broker, key_path, ack_timeout_s=0.3)
    async with (
        FakeCentral(broker, {GW: key.public_key()}, acking=False) as central,
        Uplink(config, store=store),
    ):
        await wait_until(lambda: len(central.arrivals_of(GW, Lane.TELEMETRY)) >= 3, message="resends")
        sent = central.arrivals_of(GW, Lane.TELEMETRY)
        assert {a.seq for a in sent} == {1}
        assert len({a.digest for a in sent}) == 1  # the sealed bytes never change
        assert store.acknowledged == []
        central.acking = True
        await wait_until(lambda: store.sealed_seqs(Lane.TELEMETRY) == [], message="deleted once acked")


async def test_missing_ranges_are_resent(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    store = MemoryBatchStore()
    store.add(Lane.TELEMETRY, telemetry(2_500))  # 5 batches
    config = uplink_config(broker, key_path, missing_grace_s=0.0)
    async with (
        FakeCentral(broker, {GW: key.public_key()}, drop_once={(Lane.TELEMETRY, 2)}) as central,
        Uplink(config, store=store) as uplink,
    ):
        await wait_until(lambda: central.seqs(GW, Lane.TELEMETRY) == {1, 2, 3, 4, 5}, message="gap filled")
        await wait_until(lambda: store.sealed_seqs(Lane.TELEMETRY) == [], message="all deleted")
        assert [a.seq for a in central.arrivals_of(GW, Lane.TELEMETRY)].count(2) >= 2
        assert uplink.status()["counters"]["resends"] >= 1
        assert no_deletion_beyond_acks(store, central)


async def test_events_first_then_live_then_backlog(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    store = MemoryBatchStore()
    store.add(Lane.TELEMETRY, telemetry(3_000), live=False)  # backlog: 6 batches
    store.add(Lane.TELEMETRY, telemetry(1_000, start=10_000))  # live: 2 batches
    store.add(Lane.EVENT, events(5))
    async with (
        FakeCentral(broker, {GW: key.public_key()}) as central,
        Uplink(uplink_config(broker, key_path, inflight_window=16), store=store),
    ):
        await wait_until(lambda: len(central.seqs(GW, Lane.TELEMETRY)) == 8, message="all telemetry")
        order = [(a.lane, a.historical) for a in central.arrivals]
        assert order[0] == (Lane.EVENT, False)
        telemetry_order = [hist for lane, hist in order if lane is Lane.TELEMETRY]
        assert telemetry_order == [False] * 2 + [True] * 6


async def test_alarm_overtakes_a_backlog_drain(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    store = MemoryBatchStore()
    store.add(Lane.TELEMETRY, telemetry(40_000), live=False)  # 80 backlog batches
    config = uplink_config(broker, key_path, inflight_window=4)
    async with (
        FakeCentral(broker, {GW: key.public_key()}) as central,
        Uplink(config, store=store) as uplink,
    ):
        await wait_until(lambda: len(central.seqs(GW, Lane.TELEMETRY)) >= 5, message="drain under way")
        store.add(Lane.EVENT, events(1, kind="fire.alarm"))
        uplink.wake()
        await wait_until(lambda: central.seqs(GW, Lane.EVENT) == {1}, message="the alarm")
        telemetry_before_alarm = len(central.seqs(GW, Lane.TELEMETRY))
        # The alarm went out within a window's worth of batches, not after the whole backlog.
        assert telemetry_before_alarm < 80
        await wait_until(lambda: len(central.seqs(GW, Lane.TELEMETRY)) == 80, message="backlog drained")


async def test_in_flight_window_is_bounded(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    store = MemoryBatchStore()
    store.add(Lane.TELEMETRY, telemetry(10_000))  # 20 batches
    config = uplink_config(broker, key_path, inflight_window=3)
    async with (
        FakeCentral(broker, {GW: key.public_key()}, acking=False) as central,
        Uplink(config, store=store) as uplink,
    ):
        await wait_until(lambda: central.seqs(GW, Lane.TELEMETRY) == {1, 2, 3}, message="a full window")
        # Let the uplink run a full loop (an event goes through its own lane), then look again.
        store.add(Lane.EVENT, events(1))
        uplink.wake()
        await wait_until(lambda: central.seqs(GW, Lane.EVENT) == {1}, message="event through")
        assert central.seqs(GW, Lane.TELEMETRY) == {1, 2, 3}
        assert uplink.status()["lanes"]["telemetry"]["in_flight"] == 3

        central.acking = True
        central.ack_now(GW, Lane.TELEMETRY)
        await wait_until(lambda: len(central.seqs(GW, Lane.TELEMETRY)) == 20, message="the rest")
        assert central.max_unacked_span[(GW, Lane.TELEMETRY)] <= 3
        await wait_until(lambda: store.sealed_seqs(Lane.TELEMETRY) == [], message="all deleted")


async def test_acl_refusal_is_an_error_not_a_delivery(broker: Broker, tmp_path: Path) -> None:
    """gw-a's credentials used to publish as gw-b: the broker answers 0x87 and nothing is deleted."""
    key_path, key = signing_key(tmp_path)
    store = MemoryBatchStore()
    store.add(Lane.TELEMETRY, telemetry(600))
    store.add(Lane.EVENT, events(2))
    config = uplink_config(broker, key_path, gateway_id="gw-b", login="gw-a", ack_timeout_s=0.5)
    async with (
        FakeCentral(broker, {"gw-b": key.public_key()}) as central,
        Uplink(config, store=store) as uplink,
    ):
        await wait_until(lambda: uplink.status()["counters"]["publish_refused"] >= 4, message="refusals")
        status = uplink.status()
        assert status["last_refusal"]["reason_code"] == 0x87
        assert status["lanes"]["event"]["refused"] + status["lanes"]["telemetry"]["refused"] >= 1
        assert central.arrivals == []
        assert store.acknowledged == []
        assert store.sealed_seqs(Lane.TELEMETRY) == [1, 2]
        assert store.sealed_seqs(Lane.EVENT) == [1]


async def test_broker_restart_mid_stream_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    store = MemoryBatchStore()
    store.add(Lane.TELEMETRY, telemetry(5_000))  # 10 batches
    async with (
        FakeCentral(broker, {GW: key.public_key()}) as central,
        Uplink(uplink_config(broker, key_path), store=store) as uplink,
    ):
        await wait_until(lambda: len(central.seqs(GW, Lane.TELEMETRY)) == 10, message="first part")
        broker.stop()
        await wait_until(lambda: not uplink.status()["connected"], message="uplink sees the outage")
        # Written while the broker is down: must wait in the store, then go out after the restart.
        store.add(Lane.TELEMETRY, telemetry(5_000, start=5_000))
        store.add(Lane.EVENT, events(3))
        uplink.wake()
        broker.start()
        await wait_until(lambda: len(central.seqs(GW, Lane.TELEMETRY)) == 20, message="second part")
        await wait_until(lambda: central.seqs(GW, Lane.EVENT) == {1}, message="events after restart")
        await wait_until(lambda: store.sealed_seqs(Lane.TELEMETRY) == [], message="all deleted")
        assert no_deletion_beyond_acks(store, central)
        assert uplink.status()["counters"]["disconnects"] >= 1


async def test_state_topic_online_then_offline_on_clean_stop(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    store = MemoryBatchStore()
    async with FakeCentral(broker, {GW: key.public_key()}) as central:
        async with Uplink(uplink_config(broker, key_path), store=store):
            await wait_until(lambda: any(g == GW for g, _ in central.states), message="online state")
            online = json.loads(central.states[-1][1])
            assert online["state"] == "online"
            assert set(online["seq"]) == {"event", "telemetry"}
            assert "backlog" in online
        await wait_until(
            lambda: json.loads(central.states[-1][1])["state"] == "offline", message="offline state"
        )


async def test_certificate_authenticated_uplink(cert_broker: Broker, tmp_path: Path) -> None:
    """With certificate auth the CN is the username: the uplink needs no password at all."""
    key_path, key = signing_key(tmp_path)
    cert, cert_key = cert_broker.client_cert(GW)
    config = uplink_config(
        cert_broker, key_path, username=None, password=None, client_cert=cert, client_key=cert_key
    )
    store = MemoryBatchStore()
    store.add(Lane.EVENT, events(2))
    async with (
        FakeCentral(
            cert_broker, {GW: key.public_key()}, client_cert=cert_broker.client_cert("central")
        ) as central,
        Uplink(config, store=store),
    ):
        await wait_until(lambda: central.seqs(GW, Lane.EVENT) == {1}, message="delivered")
        await wait_until(lambda: store.sealed_seqs(Lane.EVENT) == [], message="acked and deleted")


async def test_live_values_overtake_a_backlog_drain(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    store = MemoryBatchStore()
    store.add(Lane.TELEMETRY, telemetry(40_000), live=False)  # 80 backlog batches
    config = uplink_config(broker, key_path, inflight_window=4, live_probe_interval_s=0.0)
    async with (
        FakeCentral(broker, {GW: key.public_key()}) as central,
        Uplink(config, store=store),
    ):
        await wait_until(lambda: len(central.seqs(GW, Lane.TELEMETRY)) >= 5, message="drain under way")
        store.add(Lane.TELEMETRY, telemetry(10, start=500_000))
        await wait_until(
            lambda: any(not a.historical for a in central.arrivals_of(GW, Lane.TELEMETRY)),
            message="live batch",
        )
        live = next(a for a in central.arrivals_of(GW, Lane.TELEMETRY) if not a.historical)
        assert live.record_count == 10
        assert live.seq <= 80  # sealed and sent while backlog batches were still waiting (81 in all)
        await wait_until(lambda: len(central.seqs(GW, Lane.TELEMETRY)) == 81, message="backlog drained")
