"""``live_start_id`` finds the first live row by a binary search over ids, and its work does not
grow with the backlog: it runs before every LIVE seal, and a scan of a backlog of millions of
rows on each one starved the uplink exactly when it had the most to send (issue 19)."""

from __future__ import annotations

import sqlite3

import pytest

from edge.outbox.batches import live_start_id


def _table(rows: int) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE telemetry (id INTEGER PRIMARY KEY, receipt_ts REAL NOT NULL)")
    conn.executemany("INSERT INTO telemetry (receipt_ts) VALUES (?)", ((float(i),) for i in range(rows)))
    return conn


def _vm_steps(conn: sqlite3.Connection, cutoff: float) -> tuple[int, int]:
    """The answer and how many thousand SQLite VM instructions it took."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, 1000)
    try:
        return live_start_id(conn, cutoff), steps[0]
    finally:
        conn.set_progress_handler(None, 0)


@pytest.mark.parametrize("cutoff", [0.0, 1.0, 150_000.5, 299_999.0, 1e12])
def test_the_first_live_row_is_found(cutoff: float) -> None:
    conn = _table(300_000)
    answer, _ = _vm_steps(conn, cutoff)
    expected = conn.execute("SELECT min(id) FROM telemetry WHERE receipt_ts >= ?", (cutoff,)).fetchone()[0]
    assert answer == (expected if expected is not None else 300_001)


def test_an_empty_outbox_has_no_live_start() -> None:
    assert live_start_id(_table(0), 5.0) == 0


def test_the_work_does_not_grow_with_the_backlog() -> None:
    small = _vm_steps(_table(1_000), 500.0)[1]
    large = _vm_steps(_table(300_000), 150_000.0)[1]
    # A scan of 300,000 rows is over 1,000 thousand instructions; the search is a few probes.
    assert large < 50, large
    assert large <= small + 10
