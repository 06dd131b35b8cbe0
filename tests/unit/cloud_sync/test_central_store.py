"""Central's store: exactly-once per (gateway, lane, seq), contiguous acks and missing ranges."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sync.central.store import BatchMeta, CentralStore
from cloud_sync.errors import CentralStoreError
from cloud_sync.ports import EventRow, Lane, TelemetryRow


def _meta(seq: int, *, lane: Lane = Lane.TELEMETRY, gw: str = "gw-a", salt: bytes = b"") -> BatchMeta:
    digest = hashlib.sha256(f"{gw}/{lane}/{seq}".encode() + salt).digest()
    return BatchMeta(gw, lane, seq, "0123456789abcdef", 1.0, False, digest)


def _rows(seq: int) -> list[TelemetryRow]:
    return [TelemetryRow(f"s/d/p{i}", seq * 10 + i, 0, "", float(seq), None) for i in range(3)]


def _expected(arrived: set[int]) -> tuple[int, tuple[tuple[int, int], ...]]:
    acked = 0
    while acked + 1 in arrived:
        acked += 1
    missing: list[tuple[int, int]] = []
    expected = acked + 1
    for seq in sorted(s for s in arrived if s > acked):
        if seq > expected:
            missing.append((expected, seq - 1))
        expected = seq + 1
    return acked, tuple(missing)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.lists(st.integers(1, 30), max_size=60))
def test_any_arrival_order_stores_once_and_acks_contiguously(tmp_path: Path, order: list[int]) -> None:
    db = tmp_path / f"c{abs(hash(tuple(order)))}.db"
    store = CentralStore(db)
    try:
        arrived: set[int] = set()
        for seq in order:
            result = store.store_batch(_meta(seq), _rows(seq), transport="mqtt", received_at=2.0)
            assert result.stored == (seq not in arrived)
            assert result.same_bytes
            arrived.add(seq)
            assert store.ack_position("gw-a", Lane.TELEMETRY) == _expected(arrived)
        assert store.count("batches") == len(arrived)
        assert store.count("telemetry") == 3 * len(arrived)
        # The other lane and other gateways are independent.
        assert store.ack_position("gw-a", Lane.EVENT) == (0, ())
        assert store.ack_position("gw-b", Lane.TELEMETRY) == (0, ())
    finally:
        store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)


def test_duplicate_with_other_bytes_is_a_conflict_and_stores_nothing(tmp_path: Path) -> None:
    store = CentralStore(tmp_path / "c.db")
    assert store.store_batch(_meta(1), _rows(1), transport="mqtt", received_at=1.0).stored
    again = store.store_batch(_meta(1, salt=b"x"), _rows(99), transport="https", received_at=2.0)
    assert not again.stored and not again.same_bytes
    assert store.count("telemetry") == 3
    with store.reader() as db:
        values = sorted(r[0] for r in db.execute("SELECT value FROM telemetry"))
    assert values == [10, 11, 12]


def test_latest_keeps_the_newest_value_whatever_the_arrival_order(tmp_path: Path) -> None:
    store = CentralStore(tmp_path / "c.db")
    new = [TelemetryRow("s/d/p", 2.0, 0, "", 200.0, None), TelemetryRow("s/d/p", 1.5, 0, "", 150.0, None)]
    old = [TelemetryRow("s/d/p", 1.0, 0, "", 100.0, None)]
    store.store_batch(_meta(2), new, transport="mqtt", received_at=1.0)
    store.store_batch(_meta(1), old, transport="mqtt", received_at=1.0)
    with store.reader() as db:
        row = db.execute("SELECT value, ts FROM latest WHERE point_id='s/d/p'").fetchone()
    assert tuple(row) == (2.0, 200.0)
    assert store.ack_position("gw-a", Lane.TELEMETRY) == (2, ())


def test_events_and_state(tmp_path: Path) -> None:
    store = CentralStore(tmp_path / "c.db")
    rows = [EventRow("alarm.raised", "s/t/level", 5.0, {"priority": "high", "value": 0.2})]
    assert store.store_batch(_meta(1, lane=Lane.EVENT), rows, transport="mqtt", received_at=6.0).stored
    store.note_state("gw-a", {"state": "online", "backlog": {"telemetry": 4}, "seq": {"event": 1}}, 7.0)
    with store.reader() as db:
        event = db.execute("SELECT kind, source, data FROM events").fetchone()
        gw = db.execute("SELECT state, last_seen, backlog FROM gateways").fetchone()
    assert tuple(event) == ("alarm.raised", "s/t/level", '{"priority": "high", "value": 0.2}')
    assert tuple(gw) == ("online", 7.0, '{"telemetry": 4}')


def test_store_survives_reopen(tmp_path: Path) -> None:
    store = CentralStore(tmp_path / "c.db")
    store.store_batch(_meta(1), _rows(1), transport="mqtt", received_at=1.0)
    store.store_batch(_meta(3), _rows(3), transport="mqtt", received_at=1.0)
    store.close()
    reopened = CentralStore(tmp_path / "c.db")
    assert reopened.ack_position("gw-a", Lane.TELEMETRY) == (1, ((2, 2),))
    assert not reopened.store_batch(_meta(3), _rows(3), transport="mqtt", received_at=1.0).stored
    assert reopened.store_batch(_meta(2), _rows(2), transport="mqtt", received_at=1.0).stored
    assert reopened.ack_position("gw-a", Lane.TELEMETRY) == (3, ())


def test_gap_event_naming_evicted_batches_lets_the_ack_move_on(tmp_path: Path) -> None:
    store = CentralStore(tmp_path / "c.db")
    for seq in (1, 2, 6):
        store.store_batch(_meta(seq), _rows(seq), transport="mqtt", received_at=1.0)
    assert store.ack_position("gw-a", Lane.TELEMETRY) == (2, ((3, 5),))
    gap = EventRow("outbox.gap", "outbox", 3.0, {"reason": "quota", "rows": 9, "seq_from": 3, "seq_to": 4})
    assert store.store_batch(_meta(1, lane=Lane.EVENT), [gap], transport="mqtt", received_at=4.0).stored
    assert store.ack_position("gw-a", Lane.TELEMETRY) == (4, ((5, 5),))
    # An evicted batch that was in flight and arrives after all is still stored, once.
    late = store.store_batch(_meta(4), _rows(4), transport="mqtt", received_at=5.0)
    assert late.stored
    assert not store.store_batch(_meta(4), _rows(4), transport="mqtt", received_at=5.0).stored
    assert store.store_batch(_meta(5), _rows(5), transport="mqtt", received_at=6.0).stored
    assert store.ack_position("gw-a", Lane.TELEMETRY) == (6, ())
    assert store.count("telemetry") == 3 * 5
    # A gap event without batch seqs (rows evicted before sealing) changes no ack.
    plain = EventRow("outbox.gap", "outbox", 7.0, {"rows": 3, "seq_from": None, "seq_to": None})
    store.store_batch(_meta(2, lane=Lane.EVENT), [plain], transport="mqtt", received_at=7.0)
    assert store.ack_position("gw-a", Lane.TELEMETRY) == (6, ())


def test_skipped_sequence_numbers_of_either_lane_let_the_ack_move_on(tmp_path: Path) -> None:
    """After a crash the outbox continues above its reserved block and says so (``seq_skipped``)."""
    store = CentralStore(tmp_path / "c.db")
    store.store_batch(_meta(1, lane=Lane.EVENT), [], transport="mqtt", received_at=1.0)
    store.store_batch(_meta(1), _rows(1), transport="mqtt", received_at=1.0)
    store.store_batch(_meta(1001), _rows(1001), transport="mqtt", received_at=2.0)
    skipped = [
        EventRow(
            "outbox.gap",
            "outbox",
            2.0,
            {"reason": "seq_skipped", "lane": lane, "seq_from": 2, "seq_to": 1000},
        )
        for lane in ("event", "telemetry")
    ]
    assert store.store_batch(_meta(1001, lane=Lane.EVENT), skipped, transport="mqtt", received_at=3.0).stored
    assert store.ack_position("gw-a", Lane.EVENT) == (1001, ())
    assert store.ack_position("gw-a", Lane.TELEMETRY) == (1001, ())
    # A lane that does not exist is ignored, not guessed.
    bogus = EventRow("outbox.gap", "outbox", 4.0, {"lane": "video", "seq_from": 1002, "seq_to": 1005})
    store.store_batch(_meta(1002, lane=Lane.EVENT), [bogus], transport="mqtt", received_at=4.0)
    assert store.ack_position("gw-a", Lane.TELEMETRY) == (1001, ())
    store.close()


def test_a_database_from_an_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    CentralStore(tmp_path / "c.db").close()
    with sqlite3.connect(tmp_path / "c.db") as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(CentralStoreError, match="schema version 99"):
        CentralStore(tmp_path / "c.db")
