"""Versioned schema migrations of the outbox database, recorded in ``PRAGMA user_version``.

The runner is ``edge.outbox.migrator``, shared by every SQLite store: each step brings the
schema from version ``n - 1`` to ``n`` in its own transaction together with the version bump,
and a version this code does not know is refused. Steps are append-only: once released, a step
is never edited; a change of mind is a new step (and a fixture database of the old version in
``tests/fixtures/outbox/`` proves the upgrade).
"""

from __future__ import annotations

import sqlite3

from edge.outbox.migrator import Step, run_migrations, schema_version

__all__ = ["CURRENT_VERSION", "MIGRATIONS", "migrate", "schema_version"]


def _v1(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE points (id INTEGER PRIMARY KEY, point_id TEXT NOT NULL UNIQUE)")
    # ``value`` is declared BLOB so that SQLite applies no type conversion: text stays text.
    conn.execute(
        "CREATE TABLE telemetry ("
        " id INTEGER PRIMARY KEY, point INTEGER NOT NULL, value BLOB, flags INTEGER NOT NULL,"
        " receipt_ts REAL NOT NULL, source_ts REAL)"
    )
    conn.execute(
        "CREATE TABLE events ("
        " id INTEGER PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL, ts REAL NOT NULL,"
        " data BLOB NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE batches ("
        " lane TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,"
        " record_count INTEGER NOT NULL, sealed_at REAL NOT NULL, first_ts REAL, last_ts REAL,"
        " historical INTEGER NOT NULL, PRIMARY KEY (lane, seq))"
    )
    conn.execute("CREATE TABLE lane_seq (lane TEXT PRIMARY KEY, last_seq INTEGER NOT NULL)")
    conn.execute("INSERT INTO lane_seq (lane, last_seq) VALUES ('event', 0), ('telemetry', 0)")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value)")


MIGRATIONS: tuple[Step, ...] = (_v1,)
CURRENT_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, *, path: str = "") -> int:
    """Bring the outbox to ``CURRENT_VERSION``; returns the version found before.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each step manages its own
    transaction (``edge.outbox.migrator``, the runner every SQLite store shares).
    """
    return run_migrations(conn, MIGRATIONS, store="outbox", path=path)
