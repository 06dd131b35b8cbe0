"""An in-memory ``BatchStore`` (cloud_sync.ports) for uplink tests.

It follows the protocol's contract: sealing takes rows once, gives contiguous sequence numbers per
lane and keeps the sealed bytes unchanged until ``acknowledge``. ``LIVE`` takes rows added with
``live=True`` (newest first in line), ``BACKLOG`` the others (oldest first, marked historical).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from cloud_sync.ports import EventRow, Lane, SealedBatch, Sealer, SealMode, TelemetryRow


class MemoryBatchStore:
    def __init__(self, *, now: float = 1_767_225_600.0) -> None:
        self.now = now
        self._live: dict[Lane, deque[TelemetryRow | EventRow]] = {lane: deque() for lane in Lane}
        self._old: dict[Lane, deque[TelemetryRow | EventRow]] = {lane: deque() for lane in Lane}
        self._sealed: dict[Lane, dict[int, SealedBatch]] = {lane: {} for lane in Lane}
        self._next_seq = dict.fromkeys(Lane, 1)
        self.historical: dict[tuple[Lane, int], bool] = {}
        self.acknowledged: list[tuple[Lane, int]] = []
        self.deleted: dict[Lane, set[int]] = {lane: set() for lane in Lane}

    def add(self, lane: Lane, rows: Sequence[TelemetryRow | EventRow], *, live: bool = True) -> None:
        (self._live if live else self._old)[lane].extend(rows)

    def sealed_seqs(self, lane: Lane) -> list[int]:
        return sorted(self._sealed[lane])

    def waiting_rows(self, lane: Lane) -> int:
        return len(self._live[lane]) + len(self._old[lane])

    async def seal(
        self, lane: Lane, *, mode: SealMode, max_records: int, sealer: Sealer
    ) -> SealedBatch | None:
        source = self._live[lane] if mode is SealMode.LIVE else self._old[lane]
        if not source:
            return None
        rows = [source.popleft() for _ in range(min(max_records, len(source)))]
        seq = self._next_seq[lane]
        self._next_seq[lane] += 1
        historical = mode is SealMode.BACKLOG
        payload = sealer(lane=lane, seq=seq, rows=rows, historical=historical, sealed_at=self.now)  # type: ignore[arg-type]
        batch = SealedBatch(lane=lane, seq=seq, payload=payload, record_count=len(rows), sealed_at=self.now)
        self._sealed[lane][seq] = batch
        self.historical[(lane, seq)] = historical
        return batch

    async def pending(self, lane: Lane, *, after_seq: int = 0, limit: int = 100) -> list[SealedBatch]:
        seqs = sorted(s for s in self._sealed[lane] if s > after_seq)[:limit]
        return [self._sealed[lane][s] for s in seqs]

    async def acknowledge(self, lane: Lane, upto_seq: int) -> int:
        self.acknowledged.append((lane, upto_seq))
        gone = [s for s in self._sealed[lane] if s <= upto_seq]
        for seq in gone:
            del self._sealed[lane][seq]
            self.deleted[lane].add(seq)
        return len(gone)

    async def backlog(self) -> dict[str, Any]:
        return {
            lane.value: {"rows": self.waiting_rows(lane), "batches": len(self._sealed[lane])} for lane in Lane
        }
