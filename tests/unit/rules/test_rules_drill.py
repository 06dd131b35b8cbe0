"""Drill mode (issue 18, item 6) and manual linkage start/restore, in the pure engine."""

from __future__ import annotations

from typing import Any

import pytest

from rules import restore, snapshot
from tests.unit.rules.builders import T0, engine, good

FIRE = [{"id": "fire", "kind": "state", "priority": "fire", "latched": False}]
POINTS: dict[str, Any] = {
    "fp.det_a": {"zone": "2", "alarms": FIRE},
    "fp.det_b": {"zone": "2", "alarms": FIRE},
    "fp.det_z3": {"zone": "3", "alarms": FIRE},
    "doors.release": {"zone": "2"},
}
RULE = {
    "id": "fire-z2",
    "trigger": 'count(alarms(zone="2", class="fire")) >= 2',
    "steps": [{"write": "doors.release", "value": True}],
    "restore": [{"write": "doors.release", "value": False}],
}


def fresh() -> Any:
    return engine(POINTS, {"linkage": [RULE]})


def test_drill_alarms_are_marked_and_linkage_is_held_off() -> None:
    eng = fresh()
    eng.start_drill("2", T0 + 600, "duty", T0)
    assert [e.kind for e in eng.drain().events] == ["drill.started"]
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 2))
    out = eng.drain()
    raised = [e for e in out.events if e.kind == "alarm.raised"]
    assert len(raised) == 2 and all(e.data["drill"] is True for e in raised)
    assert out.commands == []
    assert [e.kind for e in out.events if e.kind.startswith("linkage.")] == ["linkage.held"]
    assert eng.alarm_row("s/fp/det_a/fire")["drill"] is True
    # an alarm of another zone is not a drill
    eng.feed(good("fp.det_z3", True, 3))
    z3 = [e for e in eng.drain().events if e.kind == "alarm.raised"]
    assert z3 and "drill" not in z3[0].data


def test_drill_with_linkage_runs_it() -> None:
    eng = fresh()
    eng.start_drill(None, T0 + 600, "duty", T0, linkage=True)
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 2))
    out = eng.drain()
    assert [c.point_id for c in out.commands] == ["s/doors/release"]


def test_drill_raises_count_towards_neither_flood_nor_chattering() -> None:
    eng = fresh()
    eng.start_drill("2", T0 + 3600, "duty", T0)
    for i in range(12):  # 12 raises and 24 transitions in two minutes: a flood and chatter
        eng.feed(good("fp.det_a", True, 10 * i + 1))
        eng.feed(good("fp.det_a", False, 10 * i + 5))
    keys = {e.source for e in eng.drain().events}
    assert "s/_meta/flood" not in keys and "s/_meta/chattering" not in keys
    assert eng.counters()["floods"] == 0


def test_drill_ends_at_its_end_time_and_survives_a_restart() -> None:
    eng = fresh()
    eng.start_drill("2", T0 + 60, "duty", T0)
    eng.feed(good("fp.det_a", True, 1))
    eng.drain()
    again = restore(eng.rules, snapshot(eng), T0 + 10)
    assert [d["zone"] for d in again.drills.rows()] == ["2"]
    assert again.alarm_row("s/fp/det_a/fire")["drill"] is True
    assert again.next_due() is not None and again.next_due() <= T0 + 60
    again.tick(T0 + 61)
    ended = [e for e in again.drain().events if e.kind == "drill.ended"]
    assert ended and ended[0].data["why"] == "end time reached"
    assert again.drills.rows() == []
    with pytest.raises(ValueError, match="end time"):
        again.start_drill("2", T0, "duty", T0 + 100)


def test_manual_restore_holds_off_until_the_trigger_clears_and_manual_start_runs() -> None:
    eng = fresh()
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 2))
    first = eng.drain().commands[0]
    from rules.linkage import CommandResult

    eng.command_result(CommandResult(first.correlation_id, "verified"), T0 + 3)
    assert eng.linkage["fire-z2"].state.phase == "active"
    assert eng.manual_restore("fire-z2", "duty", T0 + 4)
    out = eng.drain()
    assert "linkage.manual_restore" in [e.kind for e in out.events]
    eng.command_result(CommandResult(out.commands[0].correlation_id, "verified"), T0 + 5)
    eng.drain()
    runner = eng.linkage["fire-z2"]
    assert runner.state.phase == "idle" and runner.state.hold  # the fire holds: not re-run
    assert eng.drain().commands == []
    assert eng.manual_start("fire-z2", "duty", T0 + 6)
    out = eng.drain()
    assert "linkage.manual_start" in [e.kind for e in out.events] and out.commands
    assert not eng.manual_start("fire-z2", "duty", T0 + 7)  # already running
