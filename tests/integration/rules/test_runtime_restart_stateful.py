"""Hypothesis drives the runtime (real SQLite store) and restarts it at random moments.

After every restart each alarm and linkage rule is exactly as before, and over the whole run no
condition is raised twice (R2.3), whatever happened in between: samples, bad quality, time,
acknowledgements, resets, shelving, linkage writes.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from core.model import Event, ManualClock, Quality, Sample, Value
from edge.config.loader import load_site
from edge.rules_host.runtime import RulesRuntime
from tests.integration.rules.support import SITE_TEMPLATE

P = "rules-test"
POINTS = {
    "fire": f"{P}/fire-panel/zone1_fire",
    "detectors": f"{P}/fire-panel/zone1_detectors_in_alarm",
    "fault": f"{P}/fire-panel/zone2_fault",
    "forced": f"{P}/door/forced_open",
}
ALARMS = [
    f"{P}/fire-panel/zone1_fire/fire",
    f"{P}/fire-panel/zone2_fault/fault",
    f"{P}/door/forced_open/forced",
]


class _Outbox:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def put_event(self, event: Event) -> None:
        self.events.append(event)


class _Gateway:
    """What the runtime uses of ``edge.app.Gateway``: site, clock, outbox and write."""

    def __init__(self, site: Any, clock: ManualClock, outbox: _Outbox) -> None:
        self.site = site
        self.clock = clock
        self.outbox = outbox
        self.writes: list[tuple[str, str, Value]] = []

    async def devices_running(self) -> None:
        return None

    async def write(self, device_id: str, key: str, value: Value, *, verify: bool = True) -> Value:
        self.writes.append((device_id, key, value))
        return value if verify else None


class RuntimeRestartMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="rules-stateful-"))
        path = self.dir / "site.yaml"
        path.write_text(
            SITE_TEMPLATE.format(data=self.dir / "data", port=1502, mode="automatic"), encoding="utf-8"
        )
        self.site = load_site(path)
        self.clock = ManualClock()
        self.outbox = _Outbox()
        self.loop = asyncio.new_event_loop()
        self.gateway = _Gateway(self.site, self.clock, self.outbox)
        self.runtime = self.run(self.start())
        self.seen = 0
        self.raised: set[str] = set()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def start(self) -> RulesRuntime:
        runtime = RulesRuntime(self.gateway)  # type: ignore[arg-type]
        await runtime.__aenter__()
        return runtime

    def teardown(self) -> None:
        self.run(self.runtime.__aexit__(None, None, None))
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def check_events(self) -> None:
        self.run(self.runtime.flush())
        for ev in self.outbox.events[self.seen :]:
            if ev.kind == "alarm.raised" or (ev.kind.startswith("alarm.") and ev.data.get("raised")):
                assert ev.source not in self.raised, f"{ev.source} raised twice for one condition"
                self.raised.add(ev.source)
        self.seen = len(self.outbox.events)
        engine = self.runtime.engine
        self.raised = {k for k in self.raised if k not in engine.alarm_keys() or engine.alarm(k).active}

    @rule(
        which=st.sampled_from(sorted(POINTS)),
        value=st.one_of(st.booleans(), st.integers(0, 3)),
        bad=st.booleans(),
    )
    def sample(self, which: str, value: Value, bad: bool) -> None:
        value = int(value or 0) if which == "detectors" else bool(value)
        quality = Quality.BAD if bad else Quality.GOOD
        s = Sample(POINTS[which], None if bad else value, quality, self.clock.wall())
        self.run(self.runtime.feed([s]))
        self.check_events()

    @rule(dt=st.sampled_from([0.5, 2.0, 5.0, 40.0]))
    def time_passes(self, dt: float) -> None:
        self.clock.advance(dt)
        self.run(self.runtime.tick())
        self.check_events()

    @rule(key=st.sampled_from(ALARMS), action=st.sampled_from(["ack", "reset", "shelve", "unshelve"]))
    def operator(self, key: str, action: str) -> None:
        rt = self.runtime
        if action == "ack":
            self.run(rt.acknowledge(key, by="duty"))
        elif action == "reset":
            self.run(rt.reset(key, by="duty"))
        elif action == "shelve":
            self.run(rt.shelve(key, by="duty", until_wall=self.clock.wall() + 30, reason="test"))
        else:
            self.run(rt.unshelve(key, by="duty"))
        self.check_events()

    @rule()
    def restart(self) -> None:
        before = {k: self.runtime.engine.alarm(k) for k in self.runtime.engine.alarm_keys()}
        linkage = {r: x.state for r, x in self.runtime.engine.linkage.items()}
        overridden = dict(self.runtime.engine.io.overridden)
        self.run(self.runtime.__aexit__(None, None, None))
        self.runtime = self.run(self.start())
        assert self.runtime.restored
        engine = self.runtime.engine
        for key, state in before.items():
            assert engine.alarm(key) == state, key
        for rule_id, state in linkage.items():
            assert engine.linkage[rule_id].state == state
        assert engine.io.overridden == overridden
        self.check_events()

    @invariant()
    def history_matches_outbox(self) -> None:
        self.run(self.runtime.flush())
        raised_events = sum(1 for e in self.outbox.events if e.kind == "alarm.raised")
        raised_rows = [h for h in self.runtime.history(limit=100_000) if h["transition"] == "raised"]
        assert len(raised_rows) == raised_events


RuntimeRestartMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
TestRuntimeRestart = RuntimeRestartMachine.TestCase
