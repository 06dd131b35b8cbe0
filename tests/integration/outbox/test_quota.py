"""The disk quota: telemetry evicted oldest-first with one gap event per round, events never;
telemetry refused with one system alarm when events alone fill the quota; a full disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cloud_sync.ports import Lane, SealMode
from core.errors import QuotaExceeded, StorageError
from edge.outbox import Outbox
from tests.integration.outbox.helpers import event, events_of_kind, query, sample, sealer, unseal
from tests.support import wait_until

QUOTA = 300_000


async def test_eviction_leaves_one_gap_event_per_round_that_accounts_for_every_row(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    put = 0
    async with Outbox(db, quota_bytes=QUOTA, commit_batch=100_000) as ob:
        for round_no in range(12):
            before = len(events_of_kind(db, "outbox.gap"))
            await ob.put_samples([sample(put + n) for n in range(3_000)])
            await ob.put_event(event(round_no))
            put += 3_000
            await ob.flush()
            gaps = events_of_kind(db, "outbox.gap")
            # One commit per round here (commit_batch is large), so at most one eviction round.
            assert len(gaps) - before in (0, 1)
            assert (await ob.backlog())["used_bytes"] <= QUOTA
            kept = query(db, "SELECT count(*) FROM telemetry")[0][0]
            assert kept + sum(g["rows"] for g in gaps) == put
        assert ob.telemetry_refused is False
        # Freed pages were reused: the file grew by at most one commit beyond the quota, and
        # the WAL stays within its bound (see edge.outbox.quota.wal_bounds).
        assert db.stat().st_size <= 1.5 * QUOTA
        assert db.with_name("outbox.db-wal").stat().st_size <= 1 << 20

    gaps = events_of_kind(db, "outbox.gap")
    assert len(gaps) >= 3
    for earlier, later in zip(gaps, gaps[1:], strict=False):
        assert earlier["to_ts"] < later["from_ts"]  # oldest first, no overlap
    assert all(g["reason"] == "quota" and 0 < g["points"] <= 10 and g["batches"] == 0 for g in gaps)
    oldest_kept = query(db, "SELECT min(receipt_ts) FROM telemetry")[0][0]
    assert gaps[-1]["to_ts"] < oldest_kept
    # Every event survived, and in order.
    assert [e["n"] for e in events_of_kind(db, "alarm.raised")] == list(range(12))


async def test_sealed_telemetry_batches_are_evicted_but_never_event_batches(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    async with Outbox(db, quota_bytes=QUOTA) as ob:
        await ob.put_samples([sample(n) for n in range(2_000)])
        for n in range(20):
            await ob.put_event(event(n, size=200))
        await ob.flush()
        telemetry = [
            await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=500, sealer=sealer)
            for _ in range(4)
        ]
        events = [
            await ob.seal(Lane.EVENT, mode=SealMode.BACKLOG, max_records=5, sealer=sealer) for _ in range(4)
        ]
        assert all(telemetry) and all(events)
        for chunk in range(8):
            await ob.put_samples([sample(2_000 + chunk * 2_000 + n) for n in range(2_000)])
            await ob.flush()
        gaps = events_of_kind(db, "outbox.gap")
        dropped = [g for g in gaps if g["batches"]]
        assert dropped, gaps
        assert dropped[0]["seq_from"] == 1
        assert sum(g["batch_records"] for g in gaps) == 500 * sum(g["batches"] for g in gaps)
        assert [b.seq for b in await ob.pending(Lane.EVENT)] == [1, 2, 3, 4]
        assert (await ob.backlog())["used_bytes"] <= QUOTA


async def test_events_alone_filling_the_quota_refuse_telemetry_with_one_alarm(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    async with Outbox(db, quota_bytes=QUOTA) as ob:
        await ob.put_samples([sample(n) for n in range(1_000)])
        n = 0
        while not ob.telemetry_refused:
            await ob.put_event(event(n, size=400))
            await ob.flush()
            n += 1
            assert n < 2_000, "the quota never filled"
        with pytest.raises(QuotaExceeded):
            await ob.put_sample(sample(1))
        with pytest.raises(QuotaExceeded):
            await ob.put_samples([sample(2)])
        # Events are still taken, and the alarm is not repeated.
        for extra in range(20):
            await ob.put_event(event(n + extra, size=400))
        await ob.flush()
        n += 20
        alarms = events_of_kind(db, "system.alarm")
        assert [(a["code"], a["active"]) for a in alarms] == [("outbox_full", True)]
        assert query(db, "SELECT count(*) FROM telemetry") == [(0,)]

    async with Outbox(db, quota_bytes=QUOTA) as ob:
        # A restart remembers the state rather than raising the alarm again.
        assert ob.telemetry_refused
        while (
            batch := await ob.seal(Lane.EVENT, mode=SealMode.BACKLOG, max_records=50, sealer=sealer)
        ) is not None:
            last = batch.seq
        await ob.acknowledge(Lane.EVENT, last)
        assert not ob.telemetry_refused
        await ob.put_sample(sample(3))
        await ob.flush()
    alarms = events_of_kind(db, "system.alarm")
    assert [(a["code"], a["active"]) for a in alarms] == [("outbox_full", False)]  # the raise was acked


async def test_every_event_put_is_sealed_exactly_once_while_full(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    seen: list[int] = []
    async with Outbox(db, quota_bytes=QUOTA) as ob:
        for n in range(900):
            await ob.put_event(event(n, size=400))
        await ob.flush()
        assert ob.telemetry_refused
        while (
            batch := await ob.seal(Lane.EVENT, mode=SealMode.BACKLOG, max_records=64, sealer=sealer)
        ) is not None:
            seen.extend(r[3]["n"] for r in unseal(batch.payload)["rows"] if r[0] == "alarm.raised")
            await ob.acknowledge(Lane.EVENT, batch.seq)
        assert not ob.telemetry_refused
    assert seen == list(range(900))


async def test_a_full_disk_gives_up_old_telemetry_and_keeps_going(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    put = 0
    async with Outbox(db, max_page_count=80, commit_batch=2_000) as ob:
        for round_no in range(10):
            await ob.put_samples([sample(put + n) for n in range(2_000)])
            await ob.put_event(event(round_no))
            put += 2_000
            await _flush_until_stored(ob)
        assert ob.telemetry_refused is False
    gaps = events_of_kind(db, "outbox.gap")
    assert gaps and all(g["reason"] == "disk_full" for g in gaps)
    assert query(db, "SELECT count(*) FROM telemetry")[0][0] + sum(g["rows"] for g in gaps) == put
    assert [e["n"] for e in events_of_kind(db, "alarm.raised")] == list(range(10))


async def _flush_until_stored(ob: Outbox) -> None:
    async def flushed() -> bool:
        try:
            await ob.flush()
        except StorageError:
            return False
        return True

    await wait_until(flushed, message="the outbox to commit again")  # type: ignore[arg-type]


async def test_a_disk_full_of_events_raises_storage_error_and_recovers(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    async with Outbox(db, max_page_count=40, queue_size=200, commit_batch=50) as ob:
        put = 0
        failed: StorageError | None = None
        while failed is None:
            for _ in range(50):
                await ob.put_event(event(put, size=300))
                put += 1
            try:
                await ob.flush()
            except StorageError as exc:
                failed = exc
            assert put < 5_000, "the disk never filled"
        assert "full" in str(failed)
        # The writer holds its batch and the queue fills; a producer then hears about it.
        with pytest.raises(StorageError):
            for _ in range(1_000):
                await ob.put_event(event(put, size=300))
                put += 1
        await ob.run_in_db_thread(lambda conn: conn.execute("PRAGMA max_page_count = 100000"))
        await _flush_until_stored(ob)
        stored = [e["n"] for e in events_of_kind(db, "alarm.raised")]
    # Everything accepted is stored, once, in order; the put that raised was not accepted.
    assert stored == list(range(put))


def test_sqlite_reports_a_full_database_as_expected(tmp_path: Path) -> None:
    """The fact the disk-full handling relies on: SQLITE_FULL carries error code 13."""
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("PRAGMA max_page_count = 3")
    conn.execute("CREATE TABLE t (b BLOB)")
    with pytest.raises(sqlite3.OperationalError) as info:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    assert info.value.sqlite_errorcode & 0xFF == 13
    conn.close()
