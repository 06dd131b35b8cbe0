"""Multi-row INSERTs: every row once, in order, for any count; an ON CONFLICT tail still applies."""

from __future__ import annotations

import sqlite3

import pytest

from core.sqlite_rows import MultiRowInsert


@pytest.mark.parametrize("count", [0, 1, 2, 255, 256, 257, 511, 600, 1_000])
def test_rows_go_in_once_and_in_order(count: int) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b)")
    conn.execute("INSERT INTO t (a, b) VALUES (-1, 'before')")
    insert = MultiRowInsert("INSERT INTO t (a, b)", 2)
    rows = [(n, f"r{n}") for n in range(count)]
    last = insert(conn, rows)
    stored = conn.execute("SELECT id, a, b FROM t WHERE id > 1 ORDER BY id").fetchall()
    assert [(a, b) for _id, a, b in stored] == rows
    assert [row_id for row_id, _a, _b in stored] == list(range(2, 2 + count))
    assert last == (1 + count if count else 0)


def test_an_upsert_tail_keeps_the_newest() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE latest (k TEXT PRIMARY KEY, ts REAL, v)")
    upsert = MultiRowInsert(
        "INSERT INTO latest",
        3,
        " ON CONFLICT (k) DO UPDATE SET ts=excluded.ts, v=excluded.v WHERE excluded.ts >= latest.ts",
    )
    upsert(conn, [(f"k{n}", 10.0, "old") for n in range(300)])
    upsert(conn, [(f"k{n}", 20.0 if n % 2 else 5.0, "new") for n in range(300)])
    got = dict(conn.execute("SELECT k, v FROM latest"))
    assert got == {f"k{n}": "new" if n % 2 else "old" for n in range(300)}
