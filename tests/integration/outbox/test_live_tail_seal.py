"""LIVE seals from the rows the outbox just wrote (the live tail), checked against the table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cloud_sync.ports import Lane, SealMode
from core.model import ManualClock
from edge.outbox.db import DbOptions, OutboxDb
from tests.integration.outbox.helpers import T0, query, sample, sealer, unseal


def _db(path: Path, clock: ManualClock, tail_rows: int = 1_000) -> OutboxDb:
    db = OutboxDb(path, DbOptions(quota_bytes=50_000_000, live_tail_rows=tail_rows), clock)
    db.open()
    return db


def test_a_live_seal_from_the_tail_matches_one_read_from_the_table(tmp_path: Path) -> None:
    clock = ManualClock(T0 + 100)
    fast, slow = _db(tmp_path / "tail.db", clock), _db(tmp_path / "table.db", clock, tail_rows=0)
    try:
        for db in (fast, slow):
            db.write([[sample(n, ts=T0 + 95 + n * 0.01) for n in range(300)]], [])
        a = fast.seal(Lane.TELEMETRY, SealMode.LIVE, 200, sealer)
        b = slow.seal(Lane.TELEMETRY, SealMode.LIVE, 200, sealer)
        assert a is not None and b is not None
        assert unseal(a.payload) == unseal(b.payload)
        assert len(fast._tail) == 100  # the sealed rows left the tail
    finally:
        fast.close()
        slow.close()
    assert query(tmp_path / "tail.db", "SELECT count(*) FROM telemetry") == [(100,)]


def test_a_tail_out_of_step_with_the_table_never_seals_rows_that_are_gone(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    clock = ManualClock(T0 + 100)
    db = _db(path, clock)
    try:
        db.write([[sample(n, ts=T0 + 95) for n in range(10)]], [])
        # Rows deleted behind the outbox's back (a bug elsewhere would look like this).
        other = sqlite3.connect(path)
        other.execute("DELETE FROM telemetry WHERE id IN (SELECT id FROM telemetry ORDER BY id LIMIT 4)")
        other.commit()
        other.close()
        batch = db.seal(Lane.TELEMETRY, SealMode.LIVE, 100, sealer)
        assert batch is not None
        assert [row[1] for row in unseal(batch.payload)["rows"]] == [float(n) for n in range(4, 10)]
        assert len(db._tail) == 0
        assert db.seal(Lane.TELEMETRY, SealMode.LIVE, 100, sealer) is None
    finally:
        db.close()
    assert query(path, "SELECT count(*) FROM telemetry") == [(0,)]


def test_rows_older_than_the_live_window_stay_for_the_backlog(tmp_path: Path) -> None:
    clock = ManualClock(T0 + 100)
    db = _db(tmp_path / "outbox.db", clock)
    try:
        old = [sample(n, ts=T0 + 50) for n in range(3)]
        live = [sample(n, ts=T0 + 99) for n in range(3, 6)]
        db.write([old + live + [sample(6, ts=T0 + 40)] + [sample(7, ts=T0 + 99)]], [])
        first = db.seal(Lane.TELEMETRY, SealMode.LIVE, 100, sealer)
        assert first is not None
        assert [row[1] for row in unseal(first.payload)["rows"]] == [3.0, 4.0, 5.0]
        second = db.seal(Lane.TELEMETRY, SealMode.LIVE, 100, sealer)
        assert second is not None
        assert [row[1] for row in unseal(second.payload)["rows"]] == [7.0]
        backlog = db.seal(Lane.TELEMETRY, SealMode.BACKLOG, 100, sealer)
        assert backlog is not None
        assert [row[1] for row in unseal(backlog.payload)["rows"]] == [0.0, 1.0, 2.0, 6.0]
    finally:
        db.close()
