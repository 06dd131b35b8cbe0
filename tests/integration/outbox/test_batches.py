"""Sealing, pending, acknowledging and the per-lane sequence numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

from cloud_sync.ports import Lane, SealMode
from core.model import ManualClock, Quality, Sample
from edge.outbox import Outbox
from tests.integration.outbox.helpers import T0, event, query, sample, sealer, unseal


async def test_seal_pending_acknowledge_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    async with Outbox(db, clock=ManualClock(T0)) as ob:
        await ob.put_samples([sample(n) for n in range(250)])
        for n in range(3):
            await ob.put_event(event(n))
        await ob.flush()
        sealed = [
            await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=100, sealer=sealer)
            for _ in range(4)
        ]
        assert [b.seq if b else None for b in sealed] == [1, 2, 3, None]
        assert [b.record_count if b else None for b in sealed] == [100, 100, 50, None]
        ev = await ob.seal(Lane.EVENT, mode=SealMode.LIVE, max_records=100, sealer=sealer)
        assert ev is not None and ev.seq == 1 and ev.record_count == 3
        assert [r[2] for r in unseal(ev.payload)["rows"]] == [T0, T0 + 1, T0 + 2]

        pending = await ob.pending(Lane.TELEMETRY)
        assert [(b.seq, b.payload) for b in pending] == [(b.seq, b.payload) for b in sealed if b]
        assert [b.seq for b in await ob.pending(Lane.TELEMETRY, after_seq=1, limit=1)] == [2]
        # Telemetry rows left the row table when sealed: nothing is counted twice.
        assert query(db, "SELECT count(*) FROM telemetry") == [(0,)]

        assert await ob.acknowledge(Lane.TELEMETRY, 2) == 2
        assert [b.seq for b in await ob.pending(Lane.TELEMETRY)] == [3]
        assert await ob.acknowledge(Lane.TELEMETRY, 2) == 0
        assert [b.seq for b in await ob.pending(Lane.EVENT)] == [1]
        lane = (await ob.backlog())["lanes"]["telemetry"]
        assert lane["batch_bytes"] == len(pending[-1].payload)
        assert lane | {"batch_bytes": 0} == {
            "rows": 0,
            "batches": 1,
            "batch_bytes": 0,
            "oldest_ts": sample(200).receipt_ts,
            "last_seq": 3,
        }


async def test_live_takes_recent_rows_oldest_first_and_backlog_the_oldest(tmp_path: Path) -> None:
    clock = ManualClock(T0 + 1_000)
    old = [Sample(f"s/d/p{n}", n, Quality.GOOD, T0 + n) for n in range(20)]  # 980 s and more ago
    new = [Sample(f"s/d/p{n}", n, Quality.GOOD, T0 + 995 + n * 0.1) for n in range(30)]  # within 10 s
    async with Outbox(tmp_path / "outbox.db", clock=clock, live_window_s=10.0) as ob:
        await ob.put_samples(old + new)
        await ob.flush()
        live = await ob.seal(Lane.TELEMETRY, mode=SealMode.LIVE, max_records=20, sealer=sealer)
        assert live is not None
        body = unseal(live.payload)
        assert [r[4] for r in body["rows"]] == [s.receipt_ts for s in new[:20]]
        assert body["historical"] is False

        backlog = await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=15, sealer=sealer)
        assert backlog is not None
        body = unseal(backlog.payload)
        assert [r[4] for r in body["rows"]] == [s.receipt_ts for s in old[:15]]
        assert body["historical"] is True

        live = await ob.seal(Lane.TELEMETRY, mode=SealMode.LIVE, max_records=100, sealer=sealer)
        assert live is not None
        assert [r[4] for r in unseal(live.payload)["rows"]] == [s.receipt_ts for s in new[20:]]
        assert await ob.seal(Lane.TELEMETRY, mode=SealMode.LIVE, max_records=100, sealer=sealer) is None

        # A backlog batch that reaches into the live window is not historical.
        rest = await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=100, sealer=sealer)
        assert rest is not None and unseal(rest.payload)["historical"] is True
        await ob.put_sample(Sample("s/d/now", 1, Quality.GOOD, clock.wall()))
        await ob.flush()
        fresh = await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=100, sealer=sealer)
        assert fresh is not None and unseal(fresh.payload)["historical"] is False
        # Contiguous per lane whichever mode sealed them.
        assert [b.seq for b in await ob.pending(Lane.TELEMETRY)] == [1, 2, 3, 4, 5]


async def test_a_resend_after_restart_is_byte_identical(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    async with Outbox(db) as ob:
        await ob.put_samples([sample(n) for n in range(30)])
        await ob.put_event(event(1))
        await ob.flush()
        first = [
            await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=10, sealer=sealer),
            await ob.seal(Lane.EVENT, mode=SealMode.BACKLOG, max_records=10, sealer=sealer),
        ]
    async with Outbox(db) as ob:
        again = (await ob.pending(Lane.TELEMETRY)) + (await ob.pending(Lane.EVENT))
    assert again == first


async def test_sequence_continues_without_a_hole_after_a_clean_restart(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    for expected in ([1, 2], [3, 4], [5, 6]):
        async with Outbox(db) as ob:
            await ob.put_samples([sample(n) for n in range(20)])
            await ob.flush()
            got = [
                (await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=10, sealer=sealer))
                for _ in range(2)
            ]
            assert [b.seq for b in got if b] == expected
            await ob.acknowledge(Lane.TELEMETRY, expected[-1])


async def _seal_some(db: Path, count: int) -> list[int]:
    async with Outbox(db) as ob:
        await ob.put_samples([sample(n) for n in range(count)])
        await ob.flush()
        seqs = []
        for _ in range(count):
            batch = await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=1, sealer=sealer)
            assert batch is not None
            seqs.append(batch.seq)
        return seqs


async def test_sequence_is_not_reused_after_restoring_an_old_copy(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    backup = tmp_path / "backup.db"
    assert await _seal_some(db, 3) == [1, 2, 3]
    shutil.copyfile(db, backup)  # closed cleanly: the WAL was folded into the file
    assert await _seal_some(db, 4) == [4, 5, 6, 7]
    shutil.copyfile(backup, db)
    assert query(db, "SELECT last_seq FROM lane_seq WHERE lane = 'telemetry'") == [(3,)]
    after_restore = await _seal_some(db, 2)
    assert min(after_restore) > 7
    assert after_restore == sorted(after_restore)
    # And it goes on increasing from there, restore or not.
    assert min(await _seal_some(db, 1)) > max(after_restore)


async def test_sequence_is_not_reused_after_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    async with Outbox(db, seq_block=5) as ob:
        await ob.put_samples([sample(n) for n in range(3)])
        await ob.flush()
        for _ in range(3):
            await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=1, sealer=sealer)
        # What a kill -9 leaves behind: the files as they are while the outbox is open.
        for name in ("outbox.db", "outbox.db-wal", "outbox.db.seq"):
            shutil.copyfile(tmp_path / name, crashed / name)
    # Numbers up to the reserved block's end (5) may have been handed out: continue above it.
    assert await _seal_some(crashed / "outbox.db", 1) == [6]


async def test_advance_seq_jumps_ahead_and_stays_ahead(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    async with Outbox(db) as ob:
        assert await ob.advance_seq(Lane.EVENT, 5_000) == 5_000
        assert await ob.advance_seq(Lane.EVENT, 10) == 5_000
        await ob.put_event(event(1))
        await ob.flush()
        batch = await ob.seal(Lane.EVENT, mode=SealMode.LIVE, max_records=10, sealer=sealer)
        assert batch is not None and batch.seq == 5_001
    (tmp_path / "outbox.db.seq").unlink()  # even with the side file gone
    async with Outbox(db) as ob:
        await ob.put_event(event(2))
        await ob.flush()
        batch = await ob.seal(Lane.EVENT, mode=SealMode.LIVE, max_records=10, sealer=sealer)
        assert batch is not None and batch.seq == 5_002
