"""Flood (>10 raises in 10 min starts, <5 ends) and chattering (>5 transitions in 5 min)."""

from __future__ import annotations

from rules.definitions import FloodConfig
from rules.flood import FloodDetector
from tests.unit.rules.builders import T0, engine, good


def test_flood_starts_above_ten_in_ten_minutes_and_ends_below_five() -> None:
    det = FloodDetector(FloodConfig())
    changes = [c.kind for t in range(10) for c in det.record_raise(t * 30.0)]
    assert changes == [] and not det.flooding
    assert [c.kind for c in det.record_raise(300.0)] == ["flood_started"]
    assert det.expire(599.0) == []  # all 11 still inside the window
    assert det.expire(779.0) == []  # 5 left (t = 180…300 s): not yet below 5
    assert [c.kind for c in det.expire(781.0)] == ["flood_ended"]
    assert det.counters["floods"] == 1 and det.counters["raised"] == 11


def test_slow_alarms_never_make_a_flood() -> None:
    det = FloodDetector(FloodConfig())
    assert all(det.record_raise(t * 61.0) == [] for t in range(100))


def test_chattering_per_alarm() -> None:
    det = FloodDetector(FloodConfig())
    out = [c for t in range(6) for c in det.record_transition("a", t * 10.0)]
    assert [(c.kind, c.key) for c in out] == [("chatter_started", "a")]
    assert det.record_transition("b", 55.0) == []
    assert [c.kind for c in det.expire(60.0 + 300.0)] == ["chatter_ended"]
    assert det.counters["chatter_episodes"] == 1


def test_engine_raises_meta_alarms_for_flood_and_chatter() -> None:
    points = {f"dev.p{i}": [{"id": "hi", "kind": "high", "setpoint": 1.0}] for i in range(12)}
    eng = engine(points)
    for i in range(12):
        eng.feed(good(f"dev.p{i}", 5.0, i))
    events = eng.drain().events
    flood = [e for e in events if e.source == "s/_meta/flood"]
    assert [e.kind for e in flood] == ["alarm.raised"]
    assert eng.counters()["floods"] == 1
    for t in range(6):
        eng.feed(good("dev.p0", 0.0 if t % 2 == 0 else 5.0, 20 + t))
    events = eng.drain().events
    assert any(e.kind == "alarm.chatter_started" and e.data["alarm"] == "s/dev/p0/hi" for e in events)
    assert any(e.kind == "alarm.raised" and e.source == "s/_meta/chattering" for e in events)
    eng.tick(T0 + 2000)
    events = eng.drain().events
    assert {(e.kind, e.source) for e in events} >= {
        ("alarm.returned", "s/_meta/flood"),
        ("alarm.returned", "s/_meta/chattering"),
    }
