"""The one migration runner of every SQLite store of the gateway, versioned in ``PRAGMA user_version``.

The outbox, the dashboard's accounts and trend stores and the rules store each declare their
schema as a tuple of steps (``steps[n - 1]`` brings version ``n - 1`` to ``n``) and open through
:func:`run_migrations`. Each step runs in its own ``BEGIN IMMEDIATE`` transaction together with
the version bump, so a crash mid-migration leaves the previous version intact, and two processes
opening one file at once migrate it once. A database written by a newer release (a version these
steps do not reach) is refused with a ``StorageError`` rather than guessed at.

Steps are append-only: once released, a step is never edited; a change of mind is a new step.
A store that existed before it was versioned (``user_version`` 0 with its tables present) is
brought in by a first step written with ``IF NOT EXISTS``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import structlog

from core.errors import StorageError

__all__ = ["Step", "run_migrations", "schema_version"]

_LOG = structlog.get_logger(__name__)

Step = Callable[[sqlite3.Connection], None]


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def run_migrations(conn: sqlite3.Connection, steps: Sequence[Step], *, store: str, path: str = "") -> int:
    """Bring the database to ``len(steps)``; returns the version found before.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each step manages its own
    transaction. ``store`` names the store in errors and logs ("outbox", "rules store", ...).
    """
    current = len(steps)
    where = path or store
    found = schema_version(conn)
    if found > current:
        raise StorageError(
            f"{where}: {store} schema version {found} is newer than this release knows "
            f"({current}); run the newer gatehouse or restore a matching backup"
        )
    for version in range(found + 1, current + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if schema_version(conn) >= version:
                conn.execute("ROLLBACK")
                continue
            steps[version - 1](conn)
            conn.execute(f"PRAGMA user_version = {version:d}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"{where}: {store} migration to schema v{version} failed: {exc}") from exc
        _LOG.info("sqlite schema migrated", store=store, path=path, version=version)
    return found
