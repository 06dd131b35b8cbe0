"""What the uplink needs of the gateway's outbox, as a small protocol.

``cloud_sync`` never imports ``edge``: the daemon hands the outbox to the uplink, and the
outbox (``edge.outbox``) satisfies ``BatchStore`` structurally. The uplink gives the store a
``Sealer`` (from ``cloud_sync.envelope``) that turns rows into the signed bytes of one batch.

Life of a batch: rows wait in a lane → ``seal`` takes some of them, gives them the lane's next
sequence number, stores the sealed bytes and removes the rows, all in one transaction → the
uplink sends ``pending`` batches → central acknowledges → ``acknowledge`` deletes them.
A sealed batch never changes: a resend is byte-identical.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

__all__ = [
    "BatchStore",
    "EventRow",
    "Lane",
    "SealMode",
    "SealedBatch",
    "Sealer",
    "TelemetryRow",
]


class Lane(enum.StrEnum):
    EVENT = "event"
    TELEMETRY = "telemetry"


class SealMode(enum.StrEnum):
    """Which rows of a lane go into the next batch.

    ``LIVE`` takes the newest rows (received within the store's live window) so that current
    values overtake a backlog; ``BACKLOG`` takes the oldest rows and marks the batch historical.
    Sequence numbers stay contiguous per lane whichever mode sealed them.
    """

    LIVE = "live"
    BACKLOG = "backlog"


class TelemetryRow(NamedTuple):
    """One sample. A named tuple rather than a frozen dataclass: millions are made while a
    backlog drains (sealing at the gateway, decoding at central), and a tuple is several times
    cheaper to build."""

    point_id: str
    value: bool | int | float | str | None
    quality: int  # core.model.Quality value
    reason: str  # core.model.Reason value, "" when good
    receipt_ts: float
    source_ts: float | None


@dataclass(frozen=True, slots=True)
class EventRow:
    kind: str
    source: str
    ts: float
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SealedBatch:
    lane: Lane
    seq: int
    payload: bytes  # the exact bytes published / POSTed; never re-encoded
    record_count: int
    sealed_at: float


class Sealer(Protocol):
    def __call__(
        self,
        *,
        lane: Lane,
        seq: int,
        rows: Sequence[TelemetryRow] | Sequence[EventRow],
        historical: bool,
        sealed_at: float,
    ) -> bytes: ...


class BatchStore(Protocol):
    async def seal(
        self, lane: Lane, *, mode: SealMode, max_records: int, sealer: Sealer
    ) -> SealedBatch | None:
        """Seal the next batch of ``lane``, or return None if no rows wait for that mode."""
        ...

    async def pending(self, lane: Lane, *, after_seq: int = 0, limit: int = 100) -> list[SealedBatch]:
        """Sealed, unacknowledged batches with ``seq > after_seq``, lowest first."""
        ...

    async def acknowledge(self, lane: Lane, upto_seq: int) -> int:
        """Central has stored every batch up to ``upto_seq``: delete them; returns how many."""
        ...

    async def backlog(self) -> dict[str, Any]:
        """Rows and sealed batches waiting per lane, bytes, oldest timestamp: for the state topic."""
        ...
