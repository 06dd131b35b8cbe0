"""The engine on a simulated clock: thresholds, deadband, delays, quality, dedupe, kinds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.alarm_state import Isa
from rules.compiled import RulesError
from tests.unit.rules.builders import T0, bad, engine, good, kinds, pid

HIGH = {"id": "high", "kind": "high", "setpoint": 80.0, "deadband": 5.0, "priority": "high"}


def test_high_threshold_with_deadband_raises_once_and_clears_below_the_band() -> None:
    eng = engine({"tank.level": [HIGH]})
    key = pid("tank.level") + "/high"
    for t, v in enumerate([70, 81, 79, 90, 76, 81]):
        eng.feed(good("tank.level", v, t))
    out = kinds(eng)
    assert out == [("alarm.raised", key)]  # 79 and 76 stay inside the 5 % band: no chatter
    eng.feed(good("tank.level", 74.9, 10))
    assert kinds(eng) == [("alarm.returned", key)]
    assert eng.alarm(key).name is Isa.RTN_UNACK


def test_low_low_threshold_and_priority_mapping_of_chinese_classes() -> None:
    eng = engine(
        {
            "tank.level": [
                {"id": "ll", "kind": "low_low", "setpoint": 0.2, "deadband": 0.05, "priority": "fault"}
            ]
        }
    )
    key = pid("tank.level") + "/ll"
    eng.feed(good("tank.level", 0.1, 0))
    eng.feed(good("tank.level", 0.24, 1))
    eng.feed(good("tank.level", 0.26, 2))
    events = eng.drain().events
    assert [e.kind for e in events] == ["alarm.raised", "alarm.returned"]
    assert events[0].data["priority"] == "medium" and events[0].data["class"] == "fault"
    assert eng.alarm_info(key).priority == "medium"


def test_on_delay_needs_the_condition_to_last_and_off_delay_too() -> None:
    d = {**HIGH, "on_delay_s": 15.0, "off_delay_s": 60.0}
    eng = engine({"tank.level": [d]})
    eng.feed(good("tank.level", 90, 0))
    eng.tick(T0 + 10)
    eng.feed(good("tank.level", 50, 11))  # fleeting: gone before the on-delay
    eng.tick(T0 + 30)
    assert kinds(eng) == []
    eng.feed(good("tank.level", 90, 40))
    assert eng.next_due() == T0 + 55
    eng.tick(T0 + 54.9)
    assert kinds(eng) == []
    eng.tick(T0 + 55)
    assert [k for k, _ in kinds(eng)] == ["alarm.raised"]
    eng.feed(good("tank.level", 10, 60))
    eng.tick(T0 + 119)
    assert kinds(eng) == []
    eng.tick(T0 + 120)
    assert [k for k, _ in kinds(eng)] == ["alarm.returned"]


def test_delays_also_run_from_feed_time_without_a_tick() -> None:
    eng = engine({"tank.level": [{**HIGH, "on_delay_s": 5.0}]})
    eng.feed(good("tank.level", 90, 0))
    eng.feed(good("tank.level", 91, 6))
    assert [k for k, _ in kinds(eng)] == ["alarm.raised"]


def test_bad_quality_is_never_compared_with_a_threshold() -> None:
    eng = engine({"tank.level": [HIGH]})
    eng.feed(good("tank.level", 90, 0))
    kinds(eng)
    eng.feed(bad("tank.level", 1))
    eng.feed(good("tank.level", 91, 2))
    assert kinds(eng) == []  # no clear on bad quality, no second raise on return (R2.3)
    assert eng.alarm(pid("tank.level") + "/high").name is Isa.UNACK


def test_the_same_value_repeated_raises_nothing_more() -> None:
    eng = engine({"tank.level": [HIGH]})
    for t in range(100):
        eng.feed(good("tank.level", 95.0, t))
    assert len(kinds(eng)) == 1


def test_stale_alarm_when_no_good_value_arrives() -> None:
    eng = engine({"meter.kwh": [{"id": "stale", "kind": "stale", "after_s": 60, "priority": "low"}]})
    key = pid("meter.kwh") + "/stale"
    eng.feed(good("meter.kwh", 1.0, 0))
    eng.feed(bad("meter.kwh", 30))
    eng.tick(T0 + 59)
    assert kinds(eng) == []
    eng.tick(T0 + 60)
    assert kinds(eng) == [("alarm.raised", key)]
    eng.feed(good("meter.kwh", 2.0, 70))
    assert kinds(eng) == [("alarm.returned", key)]


def test_state_bit_and_enum_code_alarms() -> None:
    eng = engine(
        {
            "panel.status": [
                {"id": "fire", "kind": "state", "bit": 1, "priority": "fire"},
                {"id": "fault", "kind": "state", "bit": 2, "priority": "fault"},
            ],
            "lift.fault": [
                {
                    "id": "code",
                    "kind": "enum",
                    "priority": "high",
                    "codes": {
                        4: {"message": {"zh": "门区外停梯", "en": "stopped outside door zone"}},
                        93: {"priority": "critical", "message": {"zh": "平层困人", "en": "trapped"}},
                    },
                }
            ],
        }
    )
    eng.feed(good("panel.status", 0b0011, 0))
    eng.feed(good("lift.fault", 93, 0))
    events = eng.drain().events
    by_source = {e.source: e for e in events}
    assert set(by_source) == {pid("panel.status") + "/fire", pid("lift.fault") + "/code.93"}
    assert by_source[pid("lift.fault") + "/code.93"].data["message"]["en"] == "trapped"
    assert by_source[pid("lift.fault") + "/code.93"].data["priority"] == "critical"
    eng.feed(good("lift.fault", 4, 1))
    assert sorted(kinds(eng)) == [
        ("alarm.raised", pid("lift.fault") + "/code.4"),
        ("alarm.returned", pid("lift.fault") + "/code.93"),
    ]


def test_rate_of_change_alarm() -> None:
    eng = engine({"pipe.pressure": [{"id": "drop", "kind": "rate", "per_s": 60, "limit": 0.1}]})
    eng.feed(good("pipe.pressure", 0.60, 0))
    eng.feed(good("pipe.pressure", 0.59, 10))  # 0.06 per minute
    assert kinds(eng) == []
    eng.feed(good("pipe.pressure", 0.50, 20))  # 0.54 per minute
    assert [k for k, _ in kinds(eng)] == ["alarm.raised"]


def test_condition_alarm_across_points_with_a_hold() -> None:
    rules = {
        "alarms": [
            {
                "id": "dry_run",
                "kind": "condition",
                "expr": "pump.running == true and tank.level < 0.5 for 30s",
                "priority": "high",
            }
        ]
    }
    eng = engine({"pump.running": [], "tank.level": []}, rules)
    key = "s/_site/dry_run"
    eng.feed(good("pump.running", True, 0))
    eng.feed(good("tank.level", 0.3, 1))
    eng.tick(T0 + 30)
    assert kinds(eng) == []
    eng.tick(T0 + 31)
    assert kinds(eng) == [("alarm.raised", key)]
    eng.feed(good("pump.running", False, 40))
    assert kinds(eng) == [("alarm.returned", key)]


def test_suppression_by_design_holds_back_consequential_alarms() -> None:
    eng = engine(
        {
            "pump.power": [{"id": "lost", "kind": "state", "when": False, "priority": "high"}],
            "pump.flow": [{"id": "low", "kind": "low", "setpoint": 1.0, "suppressed_by": ["pump.power"]}],
        }
    )
    flow = pid("pump.flow") + "/low"
    eng.feed(good("pump.power", False, 0))
    eng.feed(good("pump.flow", 0.0, 1))
    assert kinds(eng) == [
        ("alarm.raised", pid("pump.power") + "/lost"),
        ("alarm.suppressed", flow),
    ]
    eng.feed(good("pump.power", True, 5))
    out = eng.drain().events
    assert [e.kind for e in out] == ["alarm.returned", "alarm.unsuppressed"]
    assert out[1].data["raised"] is True  # still low after power came back: now it is news


def test_operator_actions_and_unknown_alarm() -> None:
    eng = engine({"tank.level": [HIGH]})
    key = pid("tank.level") + "/high"
    eng.feed(good("tank.level", 90, 0))
    assert eng.ack(key, "duty1", T0 + 1) is True
    assert eng.ack(key, "duty1", T0 + 2) is False  # nothing left to acknowledge: no event
    assert eng.shelve(key, T0 + 100, "duty1", T0 + 3, "maintenance") is True
    assert [k for k, _ in kinds(eng)] == ["alarm.raised", "alarm.acked", "alarm.shelved"]
    eng.tick(T0 + 100)
    assert [k for k, _ in kinds(eng)] == ["alarm.unshelved"]
    with pytest.raises(KeyError):
        eng.ack("s/nope/x/y", "duty1", T0)


def test_site_override_changes_a_profile_default_and_adds_alarms() -> None:
    rules = {
        "alarms": [
            {"point": "tank.level", "id": "high", "setpoint": 95.0},
            {"point": "tank.level", "id": "low", "kind": "low", "setpoint": 10.0},
        ]
    }
    eng = engine({"tank.level": [HIGH]}, rules)
    eng.feed(good("tank.level", 90, 0))
    assert kinds(eng) == []
    eng.feed(good("tank.level", 5, 1))
    assert kinds(eng) == [("alarm.raised", pid("tank.level") + "/low")]


def test_every_problem_is_reported_with_its_path_and_position() -> None:
    rules = {
        "alarms": [
            {"point": "tank.nope", "id": "x", "kind": "high", "setpoint": 1},
            {"id": "c", "kind": "condition", "expr": "tank.level >"},
        ],
        "linkage": [{"id": "l", "trigger": "alarm(tank.level)", "steps": [{"write": "a.b", "value": 1}]}],
    }
    with pytest.raises(RulesError) as info:
        engine({"tank.level": [{"id": "h", "kind": "high"}]}, rules)
    text = {str(p) for p in info.value.problems}
    assert any(p.startswith("rules.alarms[0].point: unknown point") for p in text)
    assert any("s/tank/level.alarms[0]" in p and "setpoint" in p for p in text)
    expr = [p for p in info.value.problems if p.path == "rules.alarms[1].expr"]
    assert expr and (expr[0].line, expr[0].col) == (1, 13)
    assert expr[0].to_config_problem("site.yaml", 20, 11).column == 23
    assert any(p.startswith("rules.linkage[0].steps[0].write: unknown point") for p in text)


def test_a_met_hold_or_an_unacked_realarm_schedules_no_busy_ticks() -> None:
    rules = {"alarms": [{"id": "dry", "kind": "condition", "expr": "tank.level < 1 for 30s"}]}
    eng = engine({"tank.level": [{**HIGH, "realarm_s": 60.0}]}, rules)
    eng.feed(good("tank.level", 0.5, 0))
    assert eng.next_due() == T0 + 30
    eng.tick(T0 + 30)
    assert [k for k, _ in kinds(eng)] == ["alarm.raised"]
    assert eng.next_due() is None  # the hold is met: nothing left to time
    eng.feed(good("tank.level", 95.0, 31))  # high, unacknowledged: no re-alarm timer yet
    assert eng.next_due() is None
    eng.ack(pid("tank.level") + "/high", "duty1", T0 + 40)
    assert eng.next_due() == T0 + 100


def test_default_messages_name_the_point() -> None:
    eng = engine({"tank.level": [{"id": "h", "kind": "high", "setpoint": 80}]})
    eng.feed(good("tank.level", 90, 0))
    message = eng.drain().events[0].data["message"]
    assert message == {"zh": "tank.level 高于 80", "en": "tank.level high (above 80)"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=1, max_size=60))
def test_deadband_property_raise_above_setpoint_clear_below_band(values: list[float]) -> None:
    eng = engine({"tank.level": [{**HIGH, "ack_required": False}]})
    active = False
    for t, v in enumerate(values):
        eng.feed(good("tank.level", v, t))
        key = pid("tank.level") + "/high"
        out = [k for k, src in kinds(eng) if src == key and not k.startswith("alarm.chatter")]
        if out == ["alarm.raised"]:
            assert not active and v > 80.0
            active = True
        elif out == ["alarm.cleared"]:
            assert active and v < 75.0
            active = False
        else:
            assert out == []
            assert (v > 80.0 and active) or (v < 75.0 and not active) or 75.0 <= v <= 80.0


def test_alarm_table_lists_what_is_not_normal_most_urgent_first() -> None:
    eng = engine(
        {
            "tank.level": [HIGH],
            "fp.det": [{"id": "fire", "kind": "state", "priority": "fire", "latched": True}],
        }
    )
    eng.feed(good("tank.level", 90, 0))
    eng.feed(good("fp.det", True, 1))
    eng.feed(good("fp.det", False, 2))
    table = eng.alarm_table()
    assert [(r["key"], r["state"], r["unacked"]) for r in table] == [
        (pid("fp.det") + "/fire", "latched", True),
        (pid("tank.level") + "/high", "unacknowledged", True),
    ]
    eng.ack(pid("fp.det") + "/fire", "duty1", T0 + 3)
    assert (eng.alarm_table()[0]["state"], eng.alarm_table()[0]["unacked"]) == ("latched", False)
    eng.reset(pid("fp.det") + "/fire", "duty1", T0 + 4)
    assert [r["key"] for r in eng.alarm_table()] == [pid("tank.level") + "/high"]
