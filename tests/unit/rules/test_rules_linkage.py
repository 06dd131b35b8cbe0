"""Linkage (R2.5, GB 50116): two signals start it, steps in order, confirm, interlock, override,
restore on reset, retries and failure audit."""

from __future__ import annotations

from typing import Any

from rules.evaluator import RulesEngine
from rules.linkage import Command, CommandResult
from tests.unit.rules.builders import T0, engine, good, pid

FIRE = [{"id": "fire", "kind": "state", "priority": "fire", "latched": True}]
POINTS: dict[str, Any] = {
    "fp.det_a": {"zone": "2", "alarms": FIRE},
    "fp.det_b": {"zone": "2", "alarms": FIRE},
    "fp.det_z3": {"zone": "3", "alarms": FIRE},
    "doors.release": {"zone": "2"},
    "light.z2": {"zone": "2"},
    "light.z1": {"zone": "1"},
    "vent.open": {"zone": "2"},
    "vent.fb": {"zone": "2"},
    "fan.start": {"zone": "2"},
    "fan.lock": {"zone": "2"},
    "lift.recall": {},
}


def rule(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "fire-z2",
        "trigger": 'count(alarms(zone="2", class="fire")) >= 2',
        "steps": [
            {"write": "doors.release", "value": True, "timeout_s": 5},
            {"write": "light.z2", "value": True},
            {"write": "light.z1", "value": True, "delay_s": 2},
            {"write": "vent.open", "value": True},
            {"wait_for": {"point": "vent.fb", "equals": True, "timeout_s": 30}},
            {"write": "fan.start", "value": True, "interlock": "fan.lock == true"},
        ],
        "restore": [{"write": "doors.release", "value": False}, {"write": "lift.recall", "value": False}],
    }
    base.update(overrides)
    return base


def fire_engine(**overrides: Any) -> RulesEngine:
    eng = engine(POINTS, {"linkage": [rule(**overrides)]})
    for ref in ("fp.det_a", "fp.det_b", "fp.det_z3", "vent.fb", "fan.lock"):
        eng.feed(good(ref, False, 0))
    eng.drain()
    return eng


def answer(eng: RulesEngine, t: float) -> list[Command]:
    """Answer every pending command the way a coordinator would, until none are left."""
    sent: list[Command] = []
    for _ in range(50):
        pending = eng.drain().commands
        if not pending:
            break
        for cmd in pending:
            sent.append(cmd)
            eng.command_result(CommandResult(cmd.correlation_id, "verified"), T0 + t)
    return sent


def test_one_detector_does_not_start_linkage_two_in_the_zone_do() -> None:
    eng = fire_engine()
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_z3", True, 1))  # another zone does not count
    out = eng.drain()
    assert out.commands == [] and not any(e.kind.startswith("linkage.") for e in out.events)
    eng.feed(good("fp.det_b", True, 2))
    out = eng.drain()
    assert [e.kind for e in out.events if e.kind.startswith("linkage")][:2] == [
        "linkage.started",
        "linkage.requested",
    ]
    assert [c.point_id for c in out.commands] == [pid("doors.release")]


def test_steps_run_in_order_with_delays_and_the_fan_waits_for_vent_feedback() -> None:
    eng = fire_engine()
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 2))
    sent = answer(eng, 2)
    assert [c.point_id for c in sent] == [pid("doors.release"), pid("light.z2")]
    eng.tick(T0 + 3.9)
    assert answer(eng, 3.9) == []  # zone 1 lighting waits its 2 s after zone 2
    eng.tick(T0 + 4)
    sent = answer(eng, 4)
    assert [c.point_id for c in sent] == [pid("light.z1"), pid("vent.open")]
    eng.tick(T0 + 10)
    assert answer(eng, 10) == []  # no fan before the vent reports open
    eng.feed(good("vent.fb", True, 11))
    sent = answer(eng, 11)
    assert [c.point_id for c in sent] == [pid("fan.start")]
    assert eng.linkage["fire-z2"].state.phase == "active"


def test_operator_confirm_mode() -> None:
    eng = fire_engine(mode="confirm")
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 2))
    out = eng.drain()
    assert out.commands == [] and [e.kind for e in out.events][-1] == "linkage.confirm_requested"
    assert eng.confirm("fire-z2", "duty1", T0 + 10) is True
    out = eng.drain()
    assert out.events[0].kind == "linkage.confirmed" and out.events[0].data["by"] == "duty1"
    assert [c.point_id for c in out.commands] == [pid("doors.release")]


def test_interlock_blocks_a_step_until_it_clears() -> None:
    eng = fire_engine()
    eng.feed(good("fan.lock", True, 0))
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 1))
    answer(eng, 1)
    eng.tick(T0 + 3)
    answer(eng, 3)
    eng.feed(good("vent.fb", True, 4))
    out = eng.drain()
    assert out.commands == [] and out.events[-1].kind == "linkage.blocked"
    eng.feed(good("fan.lock", False, 20))
    out = eng.drain()
    assert [c.point_id for c in out.commands] == [pid("fan.start")]


def test_manual_override_wins_and_is_never_undone_by_automation() -> None:
    eng = fire_engine()
    eng.override(pid("doors.release"), "duty1", T0 + 0.5, value=False)
    eng.override(pid("lift.recall"), "tech2", T0 + 0.5, value=True)
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 1))
    out = eng.drain()
    skipped = [e for e in out.events if e.kind == "linkage.skipped"]
    assert skipped[0].data["point"] == pid("doors.release") and skipped[0].data["overridden_by"] == "duty1"
    assert pid("doors.release") not in [c.point_id for c in out.commands]
    for ref in ("fp.det_a", "fp.det_b"):
        eng.feed(good(ref, False, 50))
        eng.reset(pid(ref) + "/fire", "duty1", T0 + 51)
    out = eng.drain()
    writes = [c.point_id for c in out.commands]
    assert pid("doors.release") not in writes and pid("lift.recall") not in writes
    assert [e.kind for e in out.events].count("linkage.skipped") == 2
    # released: the next fire may drive the door again
    assert eng.release_override(pid("doors.release"), "duty1", T0 + 60) is True


def test_restore_runs_when_the_fire_alarms_are_reset() -> None:
    eng = fire_engine(steps=[{"write": "doors.release", "value": True}])
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 1))
    answer(eng, 1)
    eng.feed(good("fp.det_a", False, 30))
    eng.feed(good("fp.det_b", False, 30))
    assert eng.drain().commands == []  # latched fire alarms: nothing restores before the reset
    eng.reset(pid("fp.det_a") + "/fire", "duty1", T0 + 40)
    assert eng.drain().commands == []  # one detector still latched
    eng.reset(pid("fp.det_b") + "/fire", "duty1", T0 + 41)
    sent = answer(eng, 41)
    assert [(c.point_id, c.value) for c in sent] == [
        (pid("doors.release"), False),
        (pid("lift.recall"), False),
    ]
    assert eng.linkage["fire-z2"].state.phase == "idle"


def test_retries_then_a_failure_audit_and_the_sequence_goes_on() -> None:
    eng = fire_engine(
        steps=[
            {"write": "doors.release", "value": True, "retries": 2, "timeout_s": 5},
            {"write": "light.z2", "value": True},
        ]
    )
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 1))
    first = eng.drain().commands[0]
    eng.command_result(CommandResult(first.correlation_id, "failed", "exception 4"), T0 + 2)
    second = eng.drain()
    assert [e.kind for e in second.events] == ["linkage.failed", "linkage.requested"]
    assert second.events[0].data["final"] is False
    eng.tick(T0 + 7)  # no answer to attempt 2 within timeout_s: attempt 3
    third = eng.drain()
    assert third.events[0].data["reason"] == "no result before timeout_s"
    attempt3 = third.commands[0]
    assert attempt3.correlation_id.endswith(":3")
    eng.command_result(CommandResult(attempt3.correlation_id, "written"), T0 + 8)
    eng.tick(T0 + 13)  # written but never read back as the value: verification fails
    out = eng.drain()
    failed = [e for e in out.events if e.kind == "linkage.failed"]
    assert failed[-1].data["final"] is True
    assert [c.point_id for c in out.commands] == [pid("light.z2")]
    # a late answer to a given-up attempt changes nothing
    assert eng.command_result(CommandResult(first.correlation_id, "verified"), T0 + 14) is False


def test_abort_on_failure_stops_the_sequence() -> None:
    eng = fire_engine(
        steps=[
            {"write": "doors.release", "value": True, "retries": 0, "on_failure": "abort"},
            {"write": "light.z2", "value": True},
        ]
    )
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 1))
    cmd = eng.drain().commands[0]
    eng.command_result(CommandResult(cmd.correlation_id, "failed"), T0 + 2)
    out = eng.drain()
    assert out.commands == [] and out.events[-1].kind == "linkage.aborted"


def test_every_step_is_audited() -> None:
    eng = fire_engine(steps=[{"write": "doors.release", "value": True}])
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 1))
    cmd = eng.drain().commands[0]
    eng.command_result(CommandResult(cmd.correlation_id, "written"), T0 + 1.2)
    eng.command_result(CommandResult(cmd.correlation_id, "verified"), T0 + 1.5)
    events = eng.drain().events
    assert [e.kind for e in events] == ["linkage.written", "linkage.verified", "linkage.completed"]
    assert events[0].data["correlation_id"] == cmd.correlation_id
    assert events[1].data["point"] == pid("doors.release") and events[1].ts == T0 + 1.5


def test_a_point_taken_over_by_hand_during_a_retry_is_not_written_again() -> None:
    eng = fire_engine(steps=[{"write": "doors.release", "value": True, "retries": 2, "timeout_s": 4}])
    eng.feed(good("fp.det_a", True, 1))
    eng.feed(good("fp.det_b", True, 1))
    assert [c.point_id for c in eng.drain().commands] == [pid("doors.release")]
    eng.override(pid("doors.release"), "duty1", T0 + 2, value=False)
    eng.tick(T0 + 6)  # attempt 1 timed out
    out = eng.drain()
    assert out.commands == []
    assert [e.kind for e in out.events][-3:] == ["linkage.failed", "linkage.skipped", "linkage.completed"]
