"""Versioned schema migrations of the outbox database, recorded in ``PRAGMA user_version``.

Each step brings the schema from version ``n - 1`` to ``n`` and runs in its own transaction
together with the version bump, so a crash mid-migration leaves the previous version intact.
A database written by a newer release (a version this code does not know) is refused with a
``StorageError`` rather than guessed at. Steps are append-only: once released, a step is never
edited; a change of mind is a new step (and a fixture database of the old version in
``tests/fixtures/outbox/`` proves the upgrade).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import structlog

from core.errors import StorageError

__all__ = ["CURRENT_VERSION", "MIGRATIONS", "migrate", "schema_version"]

_LOG = structlog.get_logger(__name__)


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


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1,)
CURRENT_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, *, path: str = "") -> int:
    """Bring the database to ``CURRENT_VERSION``; returns the version found before.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each step manages its own
    transaction.
    """
    found = schema_version(conn)
    if found > CURRENT_VERSION:
        raise StorageError(
            f"{path or 'outbox'}: schema version {found} is newer than this release knows "
            f"({CURRENT_VERSION}); run the newer gatehouse or restore a matching backup"
        )
    for version in range(found + 1, CURRENT_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if schema_version(conn) >= version:
                conn.execute("ROLLBACK")
                continue
            MIGRATIONS[version - 1](conn)
            conn.execute(f"PRAGMA user_version = {version:d}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"{path or 'outbox'}: migration to schema v{version} failed: {exc}") from exc
        _LOG.info("outbox schema migrated", path=path, version=version)
    return found
