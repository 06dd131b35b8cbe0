"""The uplink-behind estimator and alarm (edge.uplink.behind), and the watcher's report path."""

from __future__ import annotations

from typing import Any

import pytest

from core.model import Event
from edge.uplink.behind import BacklogTrend, BehindAlarm, Observation, describe
from edge.uplink.watch import UplinkWatch, behind_from_backlog

MB = 1_000_000
QUOTA = 2_000 * MB


def _obs(at_s: float, behind_s: float, used: int, quota: int = QUOTA) -> Observation:
    return Observation(at_s=at_s, behind_s=behind_s, used_bytes=used, quota_bytes=quota)


def test_growth_is_the_slope_over_the_window_and_gives_the_time_to_a_full_quota() -> None:
    trend = BacklogTrend(window_s=60)
    last = None
    for i in range(13):  # every 5 s, growing by 0.6 MB/s from 1 GB
        last = trend.add(_obs(i * 5.0, 30.0 + i * 5.0, 1_000 * MB + int(i * 5 * 0.6 * MB)))
    assert last is not None
    assert last.growth_bytes_per_s == pytest.approx(0.6 * MB, rel=1e-6)
    room = QUOTA - last.used_bytes
    assert last.quota_full_in_s == pytest.approx(room / (0.6 * MB), rel=1e-6)
    assert last.span_s == 60.0


def test_old_observations_leave_the_window() -> None:
    trend = BacklogTrend(window_s=20)
    for i in range(10):  # growing fast first ...
        trend.add(_obs(float(i), 0.0, i * 10 * MB))
    last = None
    for i in range(10, 60):  # ... then flat for longer than the window
        last = trend.add(_obs(float(i), 0.0, 100 * MB))
    assert last is not None
    assert last.growth_bytes_per_s == 0.0
    assert last.quota_full_in_s is None
    assert last.span_s == 20.0


def test_noise_around_a_flat_backlog_does_not_predict_a_full_quota_from_one_jump() -> None:
    trend = BacklogTrend(window_s=60)
    sizes = [100, 101, 99, 100, 102, 98, 100, 101, 99, 100, 100, 100]
    last = None
    for i, size in enumerate(sizes):
        last = trend.add(_obs(i * 5.0, 2.0, size * MB))
    assert last is not None
    assert abs(last.growth_bytes_per_s) < 0.05 * MB


def test_a_shrinking_backlog_has_no_quota_full_time() -> None:
    trend = BacklogTrend()
    trend.add(_obs(0.0, 100.0, 500 * MB))
    last = trend.add(_obs(5.0, 90.0, 400 * MB))
    assert last.growth_bytes_per_s == pytest.approx(-20 * MB)
    assert last.quota_full_in_s is None


def test_a_single_observation_and_out_of_order_times() -> None:
    trend = BacklogTrend()
    first = trend.add(_obs(10.0, 1.0, MB))
    assert first.growth_bytes_per_s == 0.0 and first.quota_full_in_s is None
    with pytest.raises(ValueError, match="time order"):
        trend.add(_obs(9.0, 1.0, MB))
    with pytest.raises(ValueError):
        BacklogTrend(window_s=0)


def test_alarm_raises_at_the_threshold_and_clears_only_below_the_lower_one() -> None:
    alarm = BehindAlarm(raise_s=60, clear_s=10)
    trend = BacklogTrend()

    def step(at: float, behind: float) -> bool | None:
        change = alarm.update(trend.add(_obs(at, behind, MB)))
        return None if change is None else change.active

    assert step(0, 5) is None
    assert step(5, 59.9) is None
    assert step(10, 60) is True
    assert step(15, 300) is None  # raised once, not again
    assert step(20, 30) is None  # draining, still above the clear threshold: no flapping
    assert step(25, 61) is None
    assert step(30, 10) is False
    assert step(35, 9) is None
    with pytest.raises(ValueError):
        BehindAlarm(raise_s=10, clear_s=10)


def test_the_message_reads_as_the_operator_needs_it() -> None:
    trend = BacklogTrend()
    trend.add(_obs(0.0, 90.0, 1_000 * MB))
    growing = trend.add(_obs(10.0, 95.0, 1_000 * MB + 6 * MB))
    assert describe(growing) == "uplink behind by 95 s / backlog growing at 0.60 MB/s, quota full in 28 min"
    flat = BacklogTrend().add(_obs(0.0, 4000.0, MB))
    assert describe(flat) == "uplink behind by 67 min / backlog not growing (+0.00 MB/s)"
    assert describe(BacklogTrend().add(_obs(0.0, 3 * 86400.0, MB))).startswith("uplink behind by 3.0 d")


def test_behind_is_the_oldest_record_over_both_lanes() -> None:
    backlog = {"lanes": {"event": {"oldest_ts": 950.0}, "telemetry": {"oldest_ts": 900.0}}}
    assert behind_from_backlog(backlog, 1000.0) == 100.0
    assert behind_from_backlog({"lanes": {"event": {"oldest_ts": None}}}, 1000.0) == 0.0


class _Outbox:
    def __init__(self) -> None:
        self.oldest: float | None = None
        self.used = 10 * MB
        self.events: list[Event] = []

    async def backlog(self) -> dict[str, Any]:
        return {
            "used_bytes": self.used,
            "quota_bytes": QUOTA,
            "lanes": {"telemetry": {"oldest_ts": self.oldest}, "event": {"oldest_ts": None}},
        }

    async def put_event(self, event: Event) -> None:
        self.events.append(event)


async def test_the_watch_reports_raise_and_clear_as_system_alarm_events() -> None:
    outbox = _Outbox()
    clock = {"t": 1000.0}
    changes: list[bool] = []

    async def on_change(change: Any) -> None:
        changes.append(change.active)

    watch = UplinkWatch(
        outbox,
        on_change=on_change,
        raise_s=60,
        clear_s=10,
        wall=lambda: clock["t"],
        monotonic=lambda: clock["t"],
    )
    assert await watch.check() is None
    outbox.oldest = 1000.0
    for _ in range(14):  # five-second looks while nothing is acknowledged and the outbox grows
        clock["t"] += 5
        outbox.used += 3 * MB
        await watch.check()
    assert changes == [True] and watch.active
    raised = outbox.events[0]
    assert raised.kind == "system.alarm" and raised.source == "uplink"
    assert raised.data["code"] == "uplink_behind" and raised.data["active"] is True
    assert raised.data["behind_s"] == 60.0
    assert raised.data["growth_bytes_per_s"] == pytest.approx(0.6 * MB, rel=0.01)
    assert "quota full in" in str(raised.data["message"])
    outbox.oldest = clock["t"] - 3  # the backlog drained
    clock["t"] += 5
    change = await watch.check()
    assert change is not None and not change.active
    assert changes == [True, False]
    assert outbox.events[-1].data["active"] is False
