"""Whatever the mix of LIVE and BACKLOG seals and however late rows arrive, every row is sealed
exactly once, LIVE batches hold only rows of the live window, and each batch is oldest-first.

Run with the live tail off (every batch read back from SQLite), at a size that keeps dropping
chunks, and at the shipped size, with writes and seals interleaved."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sync.ports import Lane, SealMode
from core.model import ManualClock, Quality, Sample
from edge.outbox import Outbox
from edge.outbox.db import LIVE_TAIL_ROWS
from tests.integration.outbox.helpers import T0, sealer, unseal

WINDOW_S = 10.0

# (write this many samples, then seal with this mode and size, then let this much time pass)
Step = tuple[int, SealMode, int, float]


async def _scenario(db: Path, ages_s: list[float], steps: list[Step], tail_rows: int) -> None:
    clock = ManualClock(T0 + 1_000)
    sealed: list[int] = []
    written = 0
    async with Outbox(db, clock=clock, live_window_s=WINDOW_S, live_tail_rows=tail_rows) as ob:

        async def seal(mode: SealMode, size: int) -> None:
            batch = await ob.seal(Lane.TELEMETRY, mode=mode, max_records=size, sealer=sealer)
            if batch is None:
                return
            body = unseal(batch.payload)
            numbers = [row[1] for row in body["rows"]]
            assert len(numbers) <= size
            assert numbers == sorted(numbers)  # oldest-first: in arrival order
            if mode is SealMode.LIVE:
                assert all(row[4] >= clock.wall() - WINDOW_S for row in body["rows"])
            sealed.extend(numbers)

        async def write(ages: list[float]) -> None:
            nonlocal written
            now = clock.wall()
            await ob.put_samples(
                [
                    Sample(f"s/d/p{written + n}", written + n, Quality.GOOD, now - a)
                    for n, a in enumerate(ages)
                ]
            )
            written += len(ages)
            await ob.flush()

        for count, mode, size, pause_s in steps:
            await write(ages_s[written : written + count])
            await seal(mode, size)
            clock.advance(pause_s)
        await write(ages_s[written:])
        await seal(SealMode.BACKLOG, written + 1)
        assert (await ob.backlog())["lanes"]["telemetry"]["rows"] == 0
    assert sorted(sealed) == list(range(written))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ages_s=st.lists(st.floats(min_value=0.0, max_value=60.0, allow_nan=False), min_size=0, max_size=60),
    steps=st.lists(
        st.tuples(
            st.integers(0, 12),
            st.sampled_from(list(SealMode)),
            st.integers(1, 15),
            st.sampled_from([0.0, 4.0, 11.0]),
        ),
        max_size=12,
    ),
    tail_rows=st.sampled_from([0, 5, LIVE_TAIL_ROWS]),
)
def test_every_row_is_sealed_exactly_once(ages_s: list[float], steps: list[Step], tail_rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_scenario(Path(tmp) / "outbox.db", ages_s, steps, tail_rows))
