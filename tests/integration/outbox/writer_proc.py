"""A stand-in daemon for the kill -9 test: writes numbered samples through the outbox and prints
the highest number whose ``flush()`` has returned, one ``ACK n`` line per flush, until killed.
Every few flushes it also seals the event lane and prints ``SEAL seq`` once the seal returned.

Usage: python -m tests.integration.outbox.writer_proc DB FIRST_NUMBER
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from cloud_sync.ports import EventRow, Lane, SealMode, TelemetryRow
from core.model import Event, Quality, Sample
from edge.outbox import Outbox

T0 = 1_767_225_600.0
POINTS = 20


def numbered(n: int) -> Sample:
    """Sample number ``n``; the test rebuilds it from ``n`` to check what it reads back."""
    return Sample(f"site/dev{n % POINTS}/n", n, Quality.GOOD, T0 + n / 1000.0, source_ts=T0 - n)


def _sealer(
    *,
    lane: Lane,
    seq: int,
    rows: Sequence[TelemetryRow] | Sequence[EventRow],
    historical: bool,
    sealed_at: float,
) -> bytes:
    return b"%s-%d-%d" % (lane.value.encode(), seq, len(rows))


async def main(db: Path, first: int) -> None:
    n = first
    flushes = 0
    async with Outbox(db, commit_batch=2_000, commit_interval_ms=5) as ob:
        while True:
            # Some single puts and some bulk puts, as the daemon does both.
            for _ in range(50):
                await ob.put_sample(numbered(n))
                n += 1
            await ob.put_samples([numbered(n + i) for i in range(450)])
            n += 450
            await ob.put_event(Event("test.mark", "writer", T0, {"upto": n - 1}))
            await ob.flush()
            sys.stdout.write(f"ACK {n - 1}\n")
            sys.stdout.flush()
            flushes += 1
            if flushes % 3 == 0:
                batch = await ob.seal(Lane.EVENT, mode=SealMode.BACKLOG, max_records=100, sealer=_sealer)
                if batch is not None:
                    sys.stdout.write(f"SEAL {batch.seq}\n")
                    sys.stdout.flush()


if __name__ == "__main__":
    # Logs go to stderr so that stdout carries nothing but acknowledgements.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
