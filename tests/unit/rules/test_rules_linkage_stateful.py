"""Hypothesis stateful test of the linkage sequencer inside the engine: whatever the detectors,
operators and coordinators do, the fire-code guarantees hold."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rules.evaluator import RulesEngine
from rules.linkage import CommandResult
from tests.unit.rules.builders import T0, compiled, good, pid

FIRE = [{"id": "fire", "kind": "state", "priority": "fire", "latched": True}]
OUTPUTS = ["doors.release", "light.z2", "vent.open", "fan.start"]
POINTS: dict[str, Any] = {
    "fp.a": {"zone": "2", "alarms": FIRE},
    "fp.b": {"zone": "2", "alarms": FIRE},
    "fp.c": {"zone": "2", "alarms": FIRE},
    "vent.fb": {"zone": "2"},
    **{ref: {"zone": "2"} for ref in OUTPUTS},
}
RULES = compiled(
    POINTS,
    {
        "linkage": [
            {
                "id": "z2",
                "trigger": 'count(alarms(zone="2", class="fire")) >= 2',
                "steps": [
                    {"write": "doors.release", "value": True, "retries": 1, "timeout_s": 4},
                    {"write": "light.z2", "value": True, "delay_s": 1},
                    {"write": "vent.open", "value": True},
                    {"wait_for": {"point": "vent.fb", "equals": True, "timeout_s": 10}},
                    {"write": "fan.start", "value": True},
                ],
                "restore": [
                    {"write": "doors.release", "value": False},
                    {"write": "fan.start", "value": False},
                ],
            }
        ]
    },
)
DETECTORS = ["fp.a", "fp.b", "fp.c"]


class LinkageMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.engine = RulesEngine(RULES, T0)
        self.pending: list[str] = []
        self.overridden: set[str] = set()
        self.requested: set[str] = set()

    def collect(self) -> None:
        out = self.engine.drain()
        for ev in out.events:
            if ev.kind == "linkage.started":
                standing = [k for k in self.engine.env.active if k.endswith("/fire")]
                assert len(standing) >= 2, "linkage started without two independent fire signals"
            if ev.kind == "linkage.requested" and ev.data.get("correlation_id"):
                assert ev.data["correlation_id"] not in self.requested
                self.requested.add(ev.data["correlation_id"])
        for cmd in out.commands:
            assert cmd.point_id not in self.overridden, "automation wrote a manually overridden point"
            assert cmd.correlation_id in self.requested, "a command without its audit event"
            self.pending.append(cmd.correlation_id)

    @rule(ref=st.sampled_from(DETECTORS), on=st.booleans())
    def detector(self, ref: str, on: bool) -> None:
        self.engine.feed(good(ref, on, self.now - T0))
        self.collect()

    @rule(ref=st.sampled_from(DETECTORS))
    def panel_reset(self, ref: str) -> None:
        self.engine.ack(pid(ref) + "/fire", "duty", self.now)
        self.engine.reset(pid(ref) + "/fire", "duty", self.now)
        self.collect()

    @rule(on=st.booleans())
    def vent_feedback(self, on: bool) -> None:
        self.engine.feed(good("vent.fb", on, self.now - T0))
        self.collect()

    @rule(ref=st.sampled_from(OUTPUTS), release=st.booleans())
    def operator(self, ref: str, release: bool) -> None:
        if release:
            self.engine.release_override(pid(ref), "duty", self.now)
            self.overridden.discard(pid(ref))
        else:
            self.engine.override(pid(ref), "duty", self.now, True)
            self.overridden.add(pid(ref))
        self.collect()

    @rule(status=st.sampled_from(["verified", "written", "failed"]), which=st.integers(0, 3))
    def result(self, status: str, which: int) -> None:
        if self.pending:
            corr = self.pending.pop(min(which, len(self.pending) - 1))
            self.engine.command_result(CommandResult(corr, status), self.now)  # type: ignore[arg-type]
            self.collect()

    @rule(dt=st.sampled_from([0.5, 1.0, 3.0, 5.0, 11.0]))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.engine.tick(self.now)
        self.collect()

    @invariant()
    def a_step_in_flight_has_a_deadline(self) -> None:
        state = self.engine.linkage["z2"].state
        if state.phase in ("running", "restoring") and state.stage in ("sent", "waiting"):
            assert state.due is not None


LinkageMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestLinkageMachine = LinkageMachine.TestCase
