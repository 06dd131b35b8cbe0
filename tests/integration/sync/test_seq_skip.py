"""A gateway that crashed continues its sequence above the reserved block; central must not wait
for the numbers it skipped. The outbox records them in a signed ``outbox.gap`` event
(``reason: seq_skipped``) and central's contiguous ack passes over them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from cloud_sync.central.ingest import Ingestor, KeyRegistry
from cloud_sync.central.store import CentralStore
from cloud_sync.envelope import decode_header, decode_records, make_sealer
from cloud_sync.keys import generate_private_key, key_id
from cloud_sync.ports import EventRow, Lane, SealMode
from core.model import Event, Quality, Sample
from edge.outbox import Outbox


async def test_crash_skip_is_declared_and_central_acks_past_it(tmp_path: Path) -> None:
    key = generate_private_key()
    seal = make_sealer("gw-a", key_id(key.public_key()), key)
    store = CentralStore(tmp_path / "central.db")
    registry = KeyRegistry()
    registry.enroll("gw-a", key.public_key())
    ingestor = Ingestor(store, registry, clock=time.time)
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    live.mkdir()
    crashed.mkdir()

    async def deliver(outbox: Outbox) -> None:
        for lane in Lane:
            while (
                batch := await outbox.seal(lane, mode=SealMode.BACKLOG, max_records=100, sealer=seal)
            ) is not None:
                outcome = ingestor.ingest(batch.payload, gateway_id="gw-a", lane=lane.value, transport="test")
                assert outcome.status == "stored", outcome

    async with Outbox(live / "outbox.db", seq_block=50) as outbox:
        await outbox.put_samples([Sample("s/d/p", 1.0, Quality.GOOD, 1000.0)])
        await outbox.put_event(Event("device.online", "d", 1000.0, {}))
        await outbox.flush()
        await deliver(outbox)
        # What a kill -9 leaves behind: the files as they are while the outbox is open.
        for name in ("outbox.db", "outbox.db-wal", "outbox.db.seq"):
            shutil.copyfile(live / name, crashed / name)
    assert ingestor.ack_for("gw-a", Lane.TELEMETRY).acked == 1

    async with Outbox(crashed / "outbox.db", seq_block=50) as outbox:
        await outbox.put_samples([Sample("s/d/p", 2.0, Quality.GOOD, 1001.0)])
        await outbox.flush()
        gap_batch = await outbox.seal(Lane.EVENT, mode=SealMode.BACKLOG, max_records=100, sealer=seal)
        assert gap_batch is not None and gap_batch.seq == 51
        records = decode_records(decode_header(gap_batch.payload))
        assert [r.data for r in records if isinstance(r, EventRow)] == [
            {"reason": "seq_skipped", "lane": "event", "seq_from": 2, "seq_to": 50},
            {"reason": "seq_skipped", "lane": "telemetry", "seq_from": 2, "seq_to": 50},
        ]
        telemetry = await outbox.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=100, sealer=seal)
        assert telemetry is not None and telemetry.seq == 51
        # Telemetry first: central lacks 2..50 until the gap record arrives.
        ingestor.ingest(telemetry.payload, gateway_id="gw-a", lane="telemetry", transport="test")
        assert ingestor.ack_for("gw-a", Lane.TELEMETRY).missing == ((2, 50),)
        ingestor.ingest(gap_batch.payload, gateway_id="gw-a", lane="event", transport="test")
    for lane in Lane:
        ack = ingestor.ack_for("gw-a", lane)
        assert (ack.acked, ack.missing) == (51, ())
    assert store.count("telemetry") == 2
    store.close()
