"""The newest telemetry rows as the outbox committed them, so a LIVE seal need not read them back.

Reading rows back out of SQLite was the costliest step of sealing at scale: one statement step per
row, and the ``sqlite3`` module gives up and retakes the GIL at every step, which under a busy
event loop can wait a whole switch interval each time (issue 19). The outbox keeps the rows it has
just written, exactly as it bound them, and a LIVE seal takes them from here.

Pure, no I/O. The one invariant: the rows held are exactly the outbox's telemetry rows with ids
from ``first_id`` up to the newest, contiguous. Whoever deletes telemetry rows tells this object
(``drop_through`` or ``clear``); a chunk whose ids do not run on from the held ones clears it.
The outbox still checks that its DELETE removed as many rows as it took.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

__all__ = ["LiveTail", "TailRow"]

TailRow = tuple[Any, ...]  # (point, value, flags, receipt_ts, source_ts) as bound to SQLite


class LiveTail:
    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._chunks: deque[tuple[int, Sequence[TailRow]]] = deque()
        self._skip = 0  # rows at the front of the first chunk that are no longer held
        self._held = 0

    def __len__(self) -> int:
        return self._held

    @property
    def first_id(self) -> int | None:
        if not self._chunks:
            return None
        return self._chunks[0][0] + self._skip

    @property
    def end_id(self) -> int | None:
        """One past the newest id held."""
        if not self._chunks:
            return None
        first, rows = self._chunks[-1]
        return first + len(rows)

    def clear(self) -> None:
        self._chunks.clear()
        self._skip = 0
        self._held = 0

    def append(self, first_id: int, rows: Sequence[TailRow], cutoff_ts: float = float("-inf")) -> None:
        """Rows just committed with ids ``first_id`` … ``first_id + len(rows) - 1``. Chunks held
        whose newest row is older than ``cutoff_ts`` (the live window) go: no LIVE seal takes
        them, and while the uplink is down they would only hold memory."""
        if not rows:
            return
        if self._chunks and first_id != self.end_id:
            self.clear()  # something else wrote or deleted: start again from these rows
        self._chunks.append((first_id, rows))
        self._held += len(rows)
        while len(self._chunks) > 1 and (self._held > self.max_rows or self._chunks[0][1][-1][3] < cutoff_ts):
            self._drop_first_chunk()

    def drop_through(self, last_id: int) -> None:
        """Forget the rows with ids up to ``last_id`` (deleted, or left to the SQL path)."""
        while self._chunks:
            first, rows = self._chunks[0]
            if last_id >= first + len(rows) - 1:
                self._drop_first_chunk()
                continue
            if last_id >= first + self._skip:
                self._held -= last_id + 1 - first - self._skip
                self._skip = last_id + 1 - first
            return

    def take(self, max_records: int, cutoff_ts: float) -> tuple[int, list[TailRow]] | None:
        """The oldest held rows received at or after ``cutoff_ts``, at most ``max_records``, as
        (id of the first, rows) with contiguous ids. Older rows at the front are dropped from the
        tail (they stay in the outbox for a BACKLOG seal); the run stops before any older row
        further on. Nothing is removed for the rows returned: ``drop_through`` once deleted."""
        while self._chunks:
            first, rows = self._chunks[0]
            start = self._skip
            while start < len(rows) and rows[start][3] < cutoff_ts:
                start += 1
            if start == len(rows):
                self._drop_first_chunk()
                continue
            if start > self._skip:
                self.drop_through(first + start - 1)
            break
        else:
            return None
        first_id = self.first_id
        assert first_id is not None
        out: list[TailRow] = []
        for index, (_first, rows) in enumerate(self._chunks):
            begin = self._skip if index == 0 else 0
            for row in rows[begin : begin + max_records - len(out)]:
                if row[3] < cutoff_ts:
                    return first_id, out
                out.append(row)
            if len(out) >= max_records:
                break
        return first_id, out

    def _drop_first_chunk(self) -> None:
        _first, rows = self._chunks.popleft()
        self._held -= len(rows) - self._skip
        self._skip = 0
