"""The ISA-18.2 state machine: examples, then hypothesis stateful invariants."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from rules import alarm_state as isa
from rules.alarm_state import AlarmInfo, AlarmState, Isa

INFO = AlarmInfo("s/tank/level/high", "s/tank/level", "high", None, "水位高", "level high")


def run(info: AlarmInfo, inputs: list[isa.Input], now: float = 0.0) -> tuple[AlarmState, list[str]]:
    state = AlarmState()
    kinds: list[str] = []
    for i, inp in enumerate(inputs):
        state, events = isa.step(info, state, inp, now + i)
        kinds.extend(e.kind for e in events)
    return state, kinds


def test_the_isa_cycle_unacked_acked_normal_and_rtn_unacked() -> None:
    state, kinds = run(INFO, [isa.ProcessChange(True, 5), isa.Ack("duty1"), isa.ProcessChange(False, 1)])
    assert kinds == ["alarm.raised", "alarm.acked", "alarm.cleared"]
    assert state.name is Isa.NORMAL
    state, kinds = run(INFO, [isa.ProcessChange(True), isa.ProcessChange(False), isa.Ack("duty1")])
    assert kinds == ["alarm.raised", "alarm.returned", "alarm.acked"]
    assert state.name is Isa.NORMAL


def test_events_say_who_what_when() -> None:
    state, events = isa.step(INFO, AlarmState(), isa.ProcessChange(True, 4.2), 100.0)
    _, acked = isa.step(INFO, state, isa.Ack("duty1", "seen"), 130.0)
    raised = events[0]
    assert raised.source == INFO.key and raised.ts == 100.0
    assert raised.data["from"] == "normal" and raised.data["to"] == "unacknowledged"
    assert raised.data["value"] == 4.2 and raised.data["priority"] == "high"
    assert raised.data["message"] == {"zh": "水位高", "en": "level high"}
    assert acked[0].data["by"] == "duty1" and acked[0].data["at"] == 130.0
    assert acked[0].data["comment"] == "seen"


def test_auto_clear_without_ack_required() -> None:
    info = AlarmInfo("k", None, "low", None, "", "", ack_required=False)
    state, kinds = run(info, [isa.ProcessChange(True), isa.ProcessChange(False)])
    assert kinds == ["alarm.raised", "alarm.cleared"] and state.name is Isa.NORMAL


def test_latched_alarm_stays_until_reset_after_return() -> None:
    info = AlarmInfo("k", None, "critical", "fire", "", "", latched=True)
    state, kinds = run(info, [isa.ProcessChange(True), isa.Ack("a"), isa.ProcessChange(False), isa.Ack("a")])
    assert state.name is Isa.LATCHED and kinds == ["alarm.raised", "alarm.acked", "alarm.returned"]
    state, events = isa.step(info, state, isa.Reset("a"), 10.0)
    assert state.name is Isa.NORMAL and [e.kind for e in events] == ["alarm.reset"]
    # a reset while the condition is still active does nothing
    state, _ = run(info, [isa.ProcessChange(True), isa.Reset("a")])
    assert state.name is Isa.UNACK


def test_shelved_alarm_is_raised_at_expiry_if_still_active() -> None:
    state, kinds = run(INFO, [isa.Shelve(10.0, "duty1", "sensor work"), isa.ProcessChange(True)])
    assert kinds == ["alarm.shelved"] and state.name is Isa.SHELVED
    state, events = isa.step(INFO, state, isa.Tick(), 9.0)
    assert events == []
    state, events = isa.step(INFO, state, isa.Tick(), 10.0)
    assert [e.kind for e in events] == ["alarm.unshelved"] and events[0].data["raised"] is True
    assert state.name is Isa.UNACK


def test_realarm_of_a_standing_acked_alarm() -> None:
    info = AlarmInfo("k", None, "high", None, "", "", realarm_s=60.0)
    state, _ = run(info, [isa.ProcessChange(True), isa.Ack("a")])
    state, events = isa.step(info, state, isa.Tick(), 60.0)
    assert events == []  # the re-alarm time runs from the acknowledgement at t = 1
    state, events = isa.step(info, state, isa.Tick(), 61.0)
    assert [e.kind for e in events] == ["alarm.realarm"] and state.name is Isa.UNACK


def test_out_of_service_hides_and_return_to_service_raises() -> None:
    state, kinds = run(INFO, [isa.RemoveFromService("tech", "replacing"), isa.ProcessChange(True)])
    assert kinds == ["alarm.out_of_service"] and not state.standing
    state, events = isa.step(INFO, state, isa.ReturnToService("tech"), 5.0)
    assert events[0].kind == "alarm.in_service" and state.name is Isa.UNACK


class AlarmMachine(RuleBasedStateMachine):
    """Random operator and process input against a model of what must hold."""

    def __init__(self) -> None:
        super().__init__()
        self.info = INFO
        self.state = AlarmState()
        self.now = 0.0
        self.raised_this_activation = False
        self.expect_unacked = False
        self.latch_expected = False

    @initialize(latched=st.booleans(), ack_required=st.booleans(), realarm=st.sampled_from([None, 30.0]))
    def configure(self, latched: bool, ack_required: bool, realarm: float | None) -> None:
        self.info = AlarmInfo("k", "p", "high", None, "", "", ack_required, latched, realarm)

    def apply(self, inp: isa.Input) -> list[str]:
        before = self.state
        was_shelved = before.shelved_until is not None and self.now < before.shelved_until
        after, events = isa.step(self.info, before, inp, self.now)
        kinds = [e.kind for e in events]
        for e in events:
            assert e.data["from"] == before.name.value and e.data["to"] == after.name.value
            assert e.ts == self.now and e.data["by"]
        if was_shelved and isinstance(inp, isa.ProcessChange | isa.Tick | isa.Ack):
            assert events == [], "a shelved alarm emits nothing until it expires or is unshelved"
        raised = "alarm.raised" in kinds or any(e.data.get("raised") for e in events)
        if raised:
            assert not self.raised_this_activation, "one condition raised twice"
            self.raised_this_activation = True
            self.expect_unacked = self.info.ack_required
            self.latch_expected = self.info.latched
        if "alarm.realarm" in kinds:
            self.expect_unacked = True
        if "alarm.acked" in kinds or "alarm.reset" in kinds:
            self.expect_unacked = False
        if "alarm.reset" in kinds:
            assert self.latch_expected and not after.active
            self.latch_expected = False
        if before.active and not after.active:
            self.raised_this_activation = False
        if before.name is Isa.RTN_UNACK and isinstance(inp, isa.Ack):
            assert after.name is Isa.NORMAL
        self.state = after
        return kinds

    @rule(active=st.booleans(), value=st.integers(0, 9))
    def process(self, active: bool, value: int) -> None:
        self.apply(isa.ProcessChange(active, value))

    @rule()
    def ack(self) -> None:
        self.apply(isa.Ack("duty"))

    @rule()
    def reset(self) -> None:
        self.apply(isa.Reset("duty"))

    @rule(for_s=st.floats(1, 100))
    def shelve(self, for_s: float) -> None:
        self.apply(isa.Shelve(self.now + for_s, "duty"))

    @rule()
    def unshelve(self) -> None:
        self.apply(isa.Unshelve("duty"))

    @rule(on=st.booleans())
    def suppress(self, on: bool) -> None:
        self.apply(isa.Suppress("parent") if on else isa.Unsuppress("parent"))

    @rule(on=st.booleans())
    def service(self, on: bool) -> None:
        self.apply(isa.ReturnToService("tech") if on else isa.RemoveFromService("tech"))

    @rule(dt=st.floats(0.5, 60))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.apply(isa.Tick())

    @invariant()
    def ack_is_never_lost(self) -> None:
        assert self.state.unacked == self.expect_unacked

    @invariant()
    def latched_stays_until_reset(self) -> None:
        if self.latch_expected:
            assert self.state.held
            if not self.state.masked:
                assert self.state.name in (Isa.UNACK, Isa.ACKED, Isa.LATCHED)

    @invariant()
    def standing_matches_state(self) -> None:
        s = self.state
        assert s.standing == ((s.active or s.held) and not s.out_of_service)


AlarmMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestAlarmMachine = AlarmMachine.TestCase
