"""Every SQLite store of the gateway migrates through one runner (edge.outbox.migrator): the
version is recorded, a newer one is refused, and the trends of an older release move to their
own file once (issue 17, item 5)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from core.errors import StorageError
from core.model import ManualClock
from edge.dashboard import history
from edge.dashboard.history import TrendStore, trends_path
from edge.outbox import migrations as outbox_migrations
from edge.outbox.migrator import schema_version
from edge.rules_host import store as rules_store
from edge.rules_host.store import RulesStore


def _version(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return schema_version(conn)


def _bump(path: Path, version: int) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {version:d}")


def _trends(path: Path, legacy: Path | None = None) -> TrendStore:
    return TrendStore(path, interval_s=10.0, history_days=1.0, clock=ManualClock(), legacy=legacy)


def test_trend_store_is_versioned_and_refuses_a_newer_file(tmp_path: Path) -> None:
    path = tmp_path / "dashboard-trends.db"
    _trends(path).close()
    assert _version(path) == len(history.MIGRATIONS)
    _bump(path, len(history.MIGRATIONS) + 1)
    with pytest.raises(StorageError, match="newer than this release"):
        _trends(path)


async def test_rules_store_is_versioned_and_refuses_a_newer_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.db"
    store = RulesStore(path, "site")
    await store.open()
    await store.close()
    assert _version(path) == len(rules_store.MIGRATIONS)
    _bump(path, len(rules_store.MIGRATIONS) + 1)
    with pytest.raises(StorageError, match="newer than this release"):
        await RulesStore(path, "site").open()


async def test_rules_store_from_before_the_runner_is_brought_up(tmp_path: Path) -> None:
    # A v2 file as the previous release wrote it (its own CREATE IF NOT EXISTS + user_version=2).
    path = tmp_path / "rules.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for statement in rules_store._V1:
            conn.execute(statement)
        conn.execute("ALTER TABLE alarm_history ADD COLUMN drill INTEGER NOT NULL DEFAULT 0")
        conn.execute("INSERT INTO alarm_history (ts, key, transition, by) VALUES (1, 'k', 'raised', 'x')")
        conn.execute("PRAGMA user_version = 2")
        conn.commit()
    store = RulesStore(path, "site")
    await store.open()
    try:
        assert [r["key"] for r in store.history()] == ["k"]
    finally:
        await store.close()
    assert _version(path) == len(rules_store.MIGRATIONS)


def test_outbox_uses_the_same_runner() -> None:
    assert outbox_migrations.schema_version is schema_version


def test_trends_of_an_older_release_move_to_their_own_file(tmp_path: Path) -> None:
    old = tmp_path / "dashboard.db"
    with contextlib.closing(sqlite3.connect(old)) as conn:
        conn.execute(
            "CREATE TABLE trend (point TEXT NOT NULL, bucket REAL NOT NULL, n INTEGER NOT NULL,"
            " min REAL NOT NULL, avg REAL NOT NULL, max REAL NOT NULL, PRIMARY KEY (point, bucket))"
            " WITHOUT ROWID"
        )
        conn.executemany(
            "INSERT INTO trend VALUES (?, ?, 1, 1, 1, 1)", [("s/d/p", 10.0 * i) for i in range(50)]
        )
        conn.execute("CREATE TABLE users (username TEXT PRIMARY KEY)")  # the accounts stay
        conn.commit()
    new = trends_path(old)
    assert new.name == "dashboard-trends.db"
    store = _trends(new, legacy=old)
    try:
        assert len(store.query_stored("s/d/p", 0.0, 1000.0, 1000)) == 50
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(old)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"users"}
    _trends(new, legacy=old).close()  # a second start finds nothing to move and loses nothing
    store = _trends(new, legacy=old)
    try:
        assert len(store.query_stored("s/d/p", 0.0, 1000.0, 1000)) == 50
    finally:
        store.close()


def test_purge_deletes_in_chunks_and_keeps_retained_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "_PURGE_CHUNK", 7)
    store = _trends(tmp_path / "t.db")
    try:
        rows = [(f"s/{d}/p", float(i), 1, 1.0, 1.0, 1.0) for d in ("a", "keep") for i in range(30)]
        store.write(rows)
        store.retain_prefixes = ("s/keep/",)
        assert store.purge(now=store.keep_s + 20.0) == 20  # buckets 0..19 of s/a/p
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "t.db")) as conn:
        left = dict(conn.execute("SELECT point, count(*) FROM trend GROUP BY point").fetchall())
    assert left == {"s/a/p": 10, "s/keep/p": 30}
