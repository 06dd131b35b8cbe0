"""The rolling trend history: buckets with min/avg/max, downsampling, purge, and /api/trend."""

from __future__ import annotations

import math
import random
from pathlib import Path

from core.model import ManualClock, Quality, Sample
from edge.dashboard.history import TrendStore
from tests.unit.dashboard.conftest import Running, setup_admin

P = "s/d/p"


def _store(tmp_path: Path, clock: ManualClock) -> TrendStore:
    return TrendStore(tmp_path / "t.db", interval_s=10.0, history_days=1.0, clock=clock)


async def test_buckets_keep_min_avg_max(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)
    store = _store(tmp_path, clock)
    store.add([Sample(P, v, Quality.GOOD, 1000.0 + i) for i, v in enumerate([1.0, 5.0, 3.0])])
    store.add([Sample(P, None, Quality.BAD, 1004.0), Sample(P, "text", Quality.GOOD, 1004.0)])
    store.add([Sample(P, True, Quality.UNCERTAIN, 1012.0)])  # next bucket closes the first
    store.write(store.take_closed(now=1015.0))
    rows = await store.query(P, since=1000.0, until=1030.0, max_points=100)
    assert rows == [[1000.0, 1.0, 3.0, 5.0], [1010.0, 1.0, 1.0, 1.0]]  # the open bucket is included
    store.close()


class _PlainFold:
    """The reference: a dict of open buckets per point, with the store's rules (a sample older
    than its point's open bucket is dropped; a newer one closes it)."""

    def __init__(self) -> None:
        self.open: dict[str, list[float]] = {}
        self.rows: list[tuple[str, float, int, float, float, float]] = []

    def add(self, point: str, ts: float, value: float) -> None:
        start = ts - ts % 10.0
        acc = self.open.get(point)
        if acc is not None and acc[0] == start:
            acc[1:] = [acc[1] + 1, min(acc[2], value), acc[3] + value, max(acc[4], value)]
            return
        if acc is not None:
            if acc[0] > start:
                return
            self._close(point, acc)
        self.open[point] = [start, 1, value, value, value]

    def close_before(self, now: float) -> None:
        for point, acc in list(self.open.items()):
            if acc[0] + 10.0 <= now:
                self._close(point, acc)
                del self.open[point]

    def _close(self, point: str, acc: list[float]) -> None:
        self.rows.append((point, acc[0], int(acc[1]), acc[2], acc[3] / acc[1], acc[4]))


def test_buckets_of_many_points_match_a_plain_fold(tmp_path: Path) -> None:
    """Interleaved points, late samples and closing by time: the flat slot array gives exactly
    the rows of a plain per-point fold."""
    rng = random.Random(7)
    store = _store(tmp_path, ManualClock(0.0))
    plain = _PlainFold()
    got: list[tuple[str, float, int, float, float, float]] = []
    now = 0.0
    for _ in range(300):
        now += rng.uniform(0.5, 6.0)
        batch = []
        for n in range(rng.randrange(1, 8)):
            ts = now - (25.0 if n == 0 and rng.random() < 0.2 else 0.0)  # now and then a late one
            batch.append(Sample(f"s/d/p{rng.randrange(5)}", float(rng.randrange(-50, 50)), Quality.GOOD, ts))
        store.add(batch)
        for sample in batch:
            assert isinstance(sample.value, float)
            plain.add(sample.point_id, sample.receipt_ts, sample.value)
        got += store.take_closed(now)
        plain.close_before(now)
    got += store.take_closed(math.inf)
    plain.close_before(math.inf)
    assert sorted(got) == sorted(plain.rows)
    assert len(got) > 100
    store.close()


async def test_downsampling_merges_buckets(tmp_path: Path) -> None:
    clock = ManualClock(0.0)
    store = _store(tmp_path, clock)
    # One day of 10 s buckets: value = bucket index, so merged averages are predictable.
    rows = [(P, float(t), 1, float(i), float(i), float(i)) for i, t in enumerate(range(0, 86400, 10))]
    store.write(rows)
    out = await store.query(P, since=0.0, until=86400.0, max_points=24)
    assert len(out) == 24
    assert out[0] == [0.0, 0.0, 179.5, 359.0]  # 360 buckets per hour merged into one row
    assert out[1][0] == 3600.0 and out[1][1] == 360.0 and out[1][3] == 719.0
    assert all(r[1] <= r[2] <= r[3] for r in out)
    few = await store.query(P, since=0.0, until=100.0, max_points=500)
    assert [r[0] for r in few] == [float(t) for t in range(0, 100, 10)]  # never finer than a bucket
    store.close()


async def test_a_bucket_written_twice_is_merged_and_old_rows_purged(tmp_path: Path) -> None:
    clock = ManualClock(0.0)
    store = _store(tmp_path, clock)
    store.write([(P, 0.0, 1, 2.0, 2.0, 2.0)])
    store.write([(P, 0.0, 3, 0.0, 6.0, 10.0)])
    assert await store.query(P, since=0.0, until=10.0) == [[0.0, 0.0, 5.0, 10.0]]
    store.write([(P, 90000.0, 1, 1.0, 1.0, 1.0)])
    assert store.purge(now=90000.0) == 1  # older than history_days (1 day)
    assert await store.query(P, since=0.0, until=100000.0) == [[90000.0, 1.0, 1.0, 1.0]]
    store.close()


async def test_trend_endpoint_reads_the_live_history(dash: Running) -> None:
    await setup_admin(dash.client)
    gw = dash.gateway
    now = gw.clock.wall()
    gw.live.update([Sample("testsite/m1/voltage_l1", 230.0, Quality.GOOD, now - 5)])
    gw.live.update([Sample("testsite/m1/voltage_l1", 232.0, Quality.GOOD, now - 4)])
    response = await dash.client.get(
        "/api/trend", params={"point": "testsite/m1/voltage_l1", "since": now - 3600}
    )
    body = response.json()
    assert body["point"] == "testsite/m1/voltage_l1"
    assert len(body["rows"]) == 1 and body["rows"][0][1:] == [230.0, 231.0, 232.0]
    bad = await dash.client.get("/api/trend", params={"point": "x", "since": now, "until": now - 1})
    assert bad.status_code == 400


async def test_every_bucket_closing_at_one_boundary_is_written_once(tmp_path: Path) -> None:
    """A boundary closes every point's bucket at once; the closed buckets are kept compact and
    turned into rows only as SQLite takes them, so new points arriving meanwhile change nothing."""
    store = _store(tmp_path, ManualClock(0.0))
    points = [f"s/d{i // 30}/p{i % 30}" for i in range(3000)]
    store.add([Sample(p, float(i), Quality.GOOD, 3.0) for i, p in enumerate(points)])
    store.add([Sample(p, float(i) + 1.0, Quality.GOOD, 7.0) for i, p in enumerate(points)])
    closed = store.take_closed(now=10.5)
    assert len(closed) == 3000
    store.add([Sample("s/new/p", 1.0, Quality.GOOD, 11.0)])  # a new slot after the take
    store.write(closed)
    assert store.rows_written == 3000
    assert await store.query(points[1234], since=0.0, until=10.0) == [[0.0, 1234.0, 1234.5, 1235.0]]
    assert len(store.take_closed(now=10.5)) == 0
    store.close()
