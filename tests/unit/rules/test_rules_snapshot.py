"""Snapshots: after a restore the engine behaves exactly as if it had never stopped."""

from __future__ import annotations

import json
from typing import Any

import msgpack
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from core.model import Quality, Sample
from rules.alarm_state import Isa
from rules.evaluator import Output, RulesEngine
from rules.linkage import CommandResult
from rules.snapshot import restore, snapshot
from tests.unit.rules.builders import T0, compiled, good, kinds, pid

FIRE = {"id": "fire", "kind": "state", "priority": "fire", "latched": True}
POINTS: dict[str, Any] = {
    "tank.level": [
        {"id": "high", "kind": "high", "setpoint": 80, "deadband": 5, "on_delay_s": 10, "off_delay_s": 20},
        {"id": "low", "kind": "low", "setpoint": 20, "realarm_s": 120},
        {"id": "stale", "kind": "stale", "after_s": 60, "priority": "low"},
    ],
    "fp.a": {"zone": "2", "alarms": [FIRE]},
    "fp.b": {"zone": "2", "alarms": [FIRE]},
    "vent.fb": [],
    "doors.release": [],
    "vent.open": [],
}
RULES = {
    "alarms": [{"id": "slow_fill", "kind": "condition", "expr": "tank.level < 30 for 45s"}],
    "linkage": [
        {
            "id": "fire-z2",
            "trigger": "alarm(fp.a) and alarm(fp.b)",
            "steps": [
                {"write": "doors.release", "value": True, "retries": 1, "timeout_s": 5},
                {"write": "vent.open", "value": True, "delay_s": 3},
                {"wait_for": {"point": "vent.fb", "equals": True, "timeout_s": 20}},
            ],
            "restore": [{"write": "doors.release", "value": False}],
        }
    ],
}
RULES_COMPILED = compiled(POINTS, RULES)
ALARMS = [k for k in RULES_COMPILED.scope.alarms]


def test_restart_keeps_ack_latch_and_delay_and_raises_nothing_again() -> None:
    eng = RulesEngine(RULES_COMPILED, T0)
    eng.feed(good("fp.a", True, 1))
    eng.ack(pid("fp.a") + "/fire", "duty1", T0 + 2)
    eng.feed(good("fp.a", False, 3))
    eng.feed(good("tank.level", 90, 4))  # high: on-delay counting
    eng.drain()
    blob = msgpack.packb(snapshot(eng))
    again = restore(RULES_COMPILED, msgpack.unpackb(blob), T0 + 5)
    assert again.alarm(pid("fp.a") + "/fire").name is Isa.LATCHED
    assert not again.alarm(pid("fp.a") + "/fire").unacked
    again.feed(good("fp.a", False, 6))
    again.feed(good("tank.level", 90, 7))
    assert kinds(again) == []
    again.tick(T0 + 14)
    assert kinds(again) == [("alarm.raised", pid("tank.level") + "/high")]  # the delay kept its start


def test_snapshot_of_unknown_version_is_refused() -> None:
    eng = RulesEngine(RULES_COMPILED, T0)
    data = snapshot(eng)
    data["version"] = 99
    try:
        restore(RULES_COMPILED, data, T0)
    except ValueError as exc:
        assert "version" in str(exc)
    else:
        raise AssertionError("a snapshot of an unknown version was accepted")


def same(a: Output, b: Output) -> None:
    assert a.events == b.events
    assert a.commands == b.commands


class SnapshotMachine(RuleBasedStateMachine):
    """Drive an engine; at any moment restart a twin from a snapshot; both must agree after."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.engine = RulesEngine(RULES_COMPILED, self.now)
        self.twin: RulesEngine | None = None
        self.pending: list[str] = []
        self.raised: set[str] = set()

    def both(self) -> list[RulesEngine]:
        return [self.engine] if self.twin is None else [self.engine, self.twin]

    def compare(self) -> None:
        outs = [e.drain() for e in self.both()]
        if len(outs) == 2:
            same(outs[0], outs[1])
        self.pending.extend(c.correlation_id for c in outs[0].commands)
        for ev in outs[0].events:
            if ev.kind == "alarm.raised" or (ev.kind.startswith("alarm.") and ev.data.get("raised")):
                assert ev.source not in self.raised, f"{ev.source} raised twice for one condition (R2.3)"
                self.raised.add(ev.source)
        self.raised = {k for k in self.raised if self.engine.alarm(k).active}

    @rule(
        ref=st.sampled_from(["tank.level", "fp.a", "fp.b", "vent.fb"]),
        value=st.one_of(st.booleans(), st.sampled_from([0, 10, 25, 50, 78, 82, 95])),
        bad=st.booleans(),
    )
    def sample(self, ref: str, value: Any, bad: bool) -> None:
        s = Sample(pid(ref), value, Quality.BAD if bad else Quality.GOOD, self.now)
        for e in self.both():
            e.feed(s)
        self.compare()

    @rule(dt=st.sampled_from([0.5, 1.0, 5.0, 12.0, 30.0, 70.0]))
    def tick(self, dt: float) -> None:
        self.now += dt
        for e in self.both():
            e.tick(self.now)
        self.compare()

    @rule(key=st.sampled_from(ALARMS), action=st.sampled_from(["ack", "reset", "shelve", "unshelve", "oos"]))
    def operator(self, key: str, action: str) -> None:
        for e in self.both():
            if action == "ack":
                e.ack(key, "duty", self.now)
            elif action == "reset":
                e.reset(key, "duty", self.now)
            elif action == "shelve":
                e.shelve(key, self.now + 40, "duty", self.now)
            elif action == "unshelve":
                e.unshelve(key, "duty", self.now)
            elif e.alarm(key).out_of_service:
                e.return_to_service(key, "duty", self.now)
            else:
                e.remove_from_service(key, "duty", self.now)
        self.compare()

    @rule(status=st.sampled_from(["verified", "written", "failed"]), which=st.integers(0, 3))
    def result(self, status: str, which: int) -> None:
        if not self.pending:
            return
        corr = self.pending.pop(min(which, len(self.pending) - 1))
        for e in self.both():
            e.command_result(CommandResult(corr, status), self.now)  # type: ignore[arg-type]
        self.compare()

    @rule(codec=st.sampled_from(["json", "msgpack"]))
    def restart(self, codec: str) -> None:
        data = snapshot(self.engine)
        if codec == "json":
            data = json.loads(json.dumps(data))
        else:
            data = msgpack.unpackb(msgpack.packb(data), strict_map_key=False)
        self.twin = restore(RULES_COMPILED, data, self.now)

    @invariant()
    def same_alarm_states(self) -> None:
        if self.twin is not None:
            for key in ALARMS:
                assert self.engine.alarm(key) == self.twin.alarm(key)
            assert self.engine.linkage["fire-z2"].state == self.twin.linkage["fire-z2"].state


SnapshotMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestSnapshotMachine = SnapshotMachine.TestCase
