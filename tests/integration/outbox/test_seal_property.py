"""Whatever the mix of LIVE and BACKLOG seals and however late rows arrive, every row is sealed
exactly once, LIVE batches hold only rows of the live window, and each batch is oldest-first."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sync.ports import Lane, SealMode
from core.model import ManualClock, Quality, Sample
from edge.outbox import Outbox
from tests.integration.outbox.helpers import T0, sealer, unseal

WINDOW_S = 10.0


async def _scenario(db: Path, ages_s: list[float], seals: list[tuple[SealMode, int]]) -> None:
    clock = ManualClock(T0 + 1_000)
    put = [Sample(f"s/d/p{n}", n, Quality.GOOD, clock.wall() - age) for n, age in enumerate(ages_s)]
    sealed: list[int] = []
    async with Outbox(db, clock=clock, live_window_s=WINDOW_S) as ob:
        await ob.put_samples(put)
        await ob.flush()
        for mode, size in [*seals, (SealMode.BACKLOG, len(put) + 1)]:
            batch = await ob.seal(Lane.TELEMETRY, mode=mode, max_records=size, sealer=sealer)
            if batch is None:
                continue
            body = unseal(batch.payload)
            numbers = [row[1] for row in body["rows"]]
            assert len(numbers) <= size
            assert numbers == sorted(numbers)  # oldest-first: in arrival order
            if mode is SealMode.LIVE:
                assert all(row[4] >= clock.wall() - WINDOW_S for row in body["rows"])
            sealed.extend(numbers)
        assert (await ob.backlog())["lanes"]["telemetry"]["rows"] == 0
    assert sorted(sealed) == list(range(len(put)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ages_s=st.lists(st.floats(min_value=0.0, max_value=60.0, allow_nan=False), min_size=0, max_size=60),
    seals=st.lists(st.tuples(st.sampled_from(list(SealMode)), st.integers(1, 15)), max_size=12),
)
def test_every_row_is_sealed_exactly_once(ages_s: list[float], seals: list[tuple[SealMode, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_scenario(Path(tmp) / "outbox.db", ages_s, seals))
