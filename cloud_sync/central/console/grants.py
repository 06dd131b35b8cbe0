"""Which estates a console account may see (``user_estates`` in ``console.db``).

An account without rows sees every estate; with rows, only those. The table sits in the same
SQLite file as the accounts (``cloud_sync.webauth.accounts.AccountStore``), on a connection of its
own; both are used from the event loop only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from cloud_sync.errors import CentralStoreError

__all__ = ["EstateGrants"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS user_estates (
    username TEXT NOT NULL,
    estate TEXT NOT NULL,
    PRIMARY KEY (username, estate)
);
"""


class EstateGrants:
    def __init__(self, path: Path) -> None:
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise CentralStoreError(f"{path}: cannot open the console database: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def estates_of(self, username: str) -> frozenset[str] | None:
        """None: every estate."""
        rows = self._db.execute("SELECT estate FROM user_estates WHERE username = ?", (username,)).fetchall()
        return frozenset(r[0] for r in rows) or None

    def set_estates(self, username: str, estates: Iterable[str] | None) -> None:
        """Limit ``username`` to ``estates`` (None or empty: every estate)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM user_estates WHERE username = ?", (username,))
            self._db.executemany(
                "INSERT INTO user_estates (username, estate) VALUES (?, ?)",
                [(username, e) for e in sorted(set(estates or ()))],
            )

    def forget(self, username: str) -> None:
        self._db.execute("DELETE FROM user_estates WHERE username = ?", (username,))
