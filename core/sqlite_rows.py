"""Many rows in few INSERT statements.

The ``sqlite3`` module releases the GIL around every statement step and takes it back after;
``executemany`` steps once per row. In a process whose event loop is busy, every retake can
wait for a whole switch interval (5 ms): measured with one CPU-bound thread beside it, 1.6 ms a
row with ``executemany`` against 0.08 ms with 200 rows a statement (issue 19). One statement of
N rows is one step. Sizes are powers of two, so a table needs at most nine statement texts in the
connection's statement cache; 256 rows of 8 columns are 2,048 variables, far below SQLite's
limit of 32,766.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import Any

__all__ = ["MultiRowInsert"]

_SIZES = (256, 128, 64, 32, 16, 8, 4, 2, 1)


class MultiRowInsert:
    """``INSERT INTO t (…) VALUES (?, …), (?, …) …`` for any number of rows, in their order."""

    def __init__(self, head: str, columns: int, tail: str = "") -> None:
        group = "(" + ",".join("?" * columns) + ")"
        self._sql = {n: f"{head} VALUES {','.join([group] * n)}{tail}" for n in _SIZES}

    def __call__(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows``; returns the rowid of the last one inserted (0 for none)."""
        start, total, last_id = 0, len(rows), 0
        for size in _SIZES:
            sql = self._sql[size]
            while total - start >= size:
                cursor = conn.execute(sql, list(chain.from_iterable(rows[start : start + size])))
                last_id = cursor.lastrowid or last_id
                start += size
        return last_id
