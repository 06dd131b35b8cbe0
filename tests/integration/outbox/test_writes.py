"""Writing through the outbox: group commits, flush, ordering, backpressure, value fidelity."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from cloud_sync.ports import Lane, SealMode
from core.errors import StorageError
from core.model import ManualClock, Quality, Reason, Sample, Value
from edge.outbox import Outbox
from tests.integration.outbox.helpers import T0, event, query, sample, sealer, unseal
from tests.support import wait_until


async def test_flush_makes_every_put_visible_to_another_connection(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    async with Outbox(db, commit_batch=1_000, commit_interval_ms=10_000) as ob:
        await ob.put_samples([sample(n) for n in range(10_000)])
        for n in range(5):
            await ob.put_sample(sample(10_000 + n))
            await ob.put_event(event(n))
        await ob.flush()
        assert query(db, "SELECT count(*) FROM telemetry") == [(10_005,)]
        assert query(db, "SELECT count(*) FROM events") == [(5,)]
        # 10,010 records in 1,000-record groups: about eleven commits, not ten thousand.
        assert 10 <= ob.commits <= 15


async def test_commit_interval_commits_without_a_flush(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    async with Outbox(db, commit_batch=1_000, commit_interval_ms=20) as ob:
        await ob.put_sample(sample(1))
        await wait_until(
            lambda: query(db, "SELECT count(*) FROM telemetry") == [(1,)], message="timed commit"
        )


async def test_flush_with_nothing_queued_returns_at_once(tmp_path: Path) -> None:
    async with Outbox(tmp_path / "outbox.db") as ob:
        await ob.flush()
        assert ob.commits == 0


async def test_rows_keep_their_order_and_values(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    values: list[Value] = [
        True,
        False,
        0,
        -(2**63),
        2**63 - 1,
        1.5,
        -0.0,
        math.inf,
        "text",
        "",
        "123",
        None,
        math.nan,
    ]
    put = [
        Sample(f"s/d/p{i % 3}", v, Quality(i % 3), T0 + i, Reason.STALE if i % 3 else Reason.NONE, T0 - i)
        for i, v in enumerate(values)
    ]
    async with Outbox(tmp_path / "outbox.db", clock=clock) as ob:
        await ob.put_samples(put[:5])
        for s in put[5:]:
            await ob.put_sample(s)
        await ob.flush()
        batch = await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=100, sealer=sealer)
    assert batch is not None
    rows = unseal(batch.payload)["rows"]
    assert [r[0] for r in rows] == [s.point_id for s in put]
    for row, s in zip(rows, put, strict=True):
        if isinstance(s.value, float) and math.isnan(s.value):
            assert math.isnan(row[1])
        else:
            assert row[1] == s.value and type(row[1]) is type(s.value)
        assert (row[2], row[3], row[4], row[5]) == (int(s.quality), s.reason.value, s.receipt_ts, s.source_ts)


async def test_values_sqlite_cannot_bind_are_kept_as_text(tmp_path: Path) -> None:
    async with Outbox(tmp_path / "outbox.db") as ob:
        await ob.put_sample(Sample("s/d/big", 2**70, Quality.GOOD, T0))
        await ob.put_sample(Sample("s/d/odd", [1, 2], Quality.GOOD, T0))  # type: ignore[arg-type]
        await ob.put_sample(Sample("s/d/ok", 1, Quality.GOOD, T0))
        await ob.flush()
        batch = await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=10, sealer=sealer)
    assert batch is not None
    assert [r[1] for r in unseal(batch.payload)["rows"]] == [repr(2**70), "[1, 2]", 1]


async def test_a_full_queue_makes_producers_wait_not_fail(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    async with Outbox(db, queue_size=100, commit_batch=50, commit_interval_ms=1) as ob:

        async def produce(base: int) -> None:
            for n in range(1_000):
                await ob.put_sample(sample(base + n))

        await asyncio.gather(
            produce(0), produce(10_000), ob.put_samples([sample(n) for n in range(20_000, 21_000)])
        )
        await ob.flush()
        assert (await ob.backlog())["queued"] == 0
    assert query(db, "SELECT count(*) FROM telemetry") == [(3_000,)]


async def test_a_closed_outbox_refuses_puts(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "outbox.db")
    async with ob:
        await ob.put_sample(sample(1))
    with pytest.raises(StorageError):
        await ob.put_sample(sample(2))
    # Leaving the context committed what was queued.
    assert query(tmp_path / "outbox.db", "SELECT count(*) FROM telemetry") == [(1,)]


async def test_event_data_that_msgpack_cannot_carry_fails_at_the_caller(tmp_path: Path) -> None:
    from core.model import Event

    async with Outbox(tmp_path / "outbox.db") as ob:
        with pytest.raises(TypeError):
            await ob.put_event(Event("x.y", "s", T0, {"obj": object()}))
        await ob.put_event(event(1))
        await ob.flush()
        assert (await ob.backlog())["lanes"]["event"]["rows"] == 1


async def test_a_large_group_is_stored_in_put_order_with_contiguous_ids(tmp_path: Path) -> None:
    # 1,123 rows in one commit go in as statements of 256, 128, … rows (one GIL release each):
    # every row must land once, in the order it was put, with ids that run on without gaps.
    db = tmp_path / "outbox.db"
    count = 1_123
    async with Outbox(db, commit_batch=10_000, commit_interval_ms=10_000) as ob:
        await ob.put_samples([sample(n, points=7) for n in range(count)])
        await ob.flush()
        assert ob.commits == 1
    stored = query(db, "SELECT id, value, receipt_ts FROM telemetry ORDER BY id")
    assert [value for _id, value, _ts in stored] == [float(n) for n in range(count)]
    assert [row_id for row_id, _v, _ts in stored] == list(range(stored[0][0], stored[0][0] + count))
    names = dict(query(db, "SELECT id, point_id FROM points"))
    points = query(db, "SELECT point FROM telemetry ORDER BY id")
    assert [names[p] for (p,) in points] == [f"site/dev{n % 7}/p" for n in range(count)]
