"""Schema migrations of the outbox database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import StorageError
from edge.outbox import migrations


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_an_empty_file_is_migrated_to_the_current_version(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "o.db")
    assert migrations.migrate(conn) == 0
    assert migrations.schema_version(conn) == migrations.CURRENT_VERSION >= 1
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"points", "telemetry", "events", "batches", "lane_seq", "meta"} <= tables
    assert conn.execute("SELECT lane, last_seq FROM lane_seq ORDER BY lane").fetchall() == [
        ("event", 0),
        ("telemetry", 0),
    ]


def test_migrating_again_changes_nothing(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "o.db")
    migrations.migrate(conn)
    schema = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    conn = _connect(tmp_path / "o.db")
    assert migrations.migrate(conn) == migrations.CURRENT_VERSION
    assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


def test_a_newer_database_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "o.db")
    conn.execute(f"PRAGMA user_version = {migrations.CURRENT_VERSION + 1}")
    with pytest.raises(StorageError, match="newer than this release"):
        migrations.migrate(conn, path="o.db")


def test_a_failing_step_leaves_the_previous_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        conn.execute("THIS IS NOT SQL")

    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, broken))
    monkeypatch.setattr(migrations, "CURRENT_VERSION", migrations.CURRENT_VERSION + 1)
    conn = _connect(tmp_path / "o.db")
    with pytest.raises(StorageError, match="migration to schema"):
        migrations.migrate(conn)
    assert migrations.schema_version(conn) == migrations.CURRENT_VERSION - 1
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half_done" not in tables and "telemetry" in tables
