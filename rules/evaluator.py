"""The rules engine: samples and a clock in; alarm transitions, audit events and commands out.

Definitions are indexed by point id, so a sample touches only its own alarms, and an alarm is
re-tested only when its point's value changed (a threshold with hysteresis is idempotent for a
repeated value). Conditions over several points, linkage triggers and interlocks are *watches*:
re-evaluated only when a point or alarm they read changes, or on ``tick`` when they hold a
duration. Delays (on/off), staleness, shelving expiry, re-alarm and the linkage sequencer all
move on ``tick(now)``; the caller decides how often (the daemon: every second).

Quality: a bad sample is never compared with a threshold (the alarm keeps its state) and makes
the point *unknown* to conditions; ``stale`` alarms watch for the lack of a good value. A
condition whose arithmetic overflows or yields NaN is unknown too (``rules.expr`` records the
fault instead of raising): the engine emits ``rule.bad_value`` once when an expression goes bad
and ``rule.value_ok`` when it evaluates cleanly again, and goes on with every other rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from core.model import Event, Quality, Sample, Value
from rules import alarm_state as isa
from rules.alarm_state import AlarmInfo, AlarmState
from rules.compiled import AlarmSpec, CompiledRules
from rules.drill import Drill, DrillBook
from rules.expr import CompiledExpr, Env
from rules.flood import FloodChange, FloodDetector
from rules.linkage import Command, CommandResult, LinkageIO, LinkageRunner
from rules.thresholds import threshold_test

__all__ = ["Output", "RulesEngine"]

_LOG = structlog.get_logger(__name__)
_MISSING: Any = object()
_INF = math.inf
_MAX_CASCADE = 32  # conditions over alarms over conditions…: a cycle must not hang the engine
_BAD = Quality.BAD
_PROCESS_KINDS = ("alarm.raised", "alarm.returned", "alarm.cleared")


@dataclass(slots=True)
class Output:
    events: list[Event] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)


class _Alarm:
    __slots__ = (
        "info",
        "key",
        "off_delay_s",
        "on_delay_s",
        "pending_at",
        "prev_t",
        "prev_v",
        "raw",
        "spec",
        "state",
        "test",
    )

    def __init__(self, spec: AlarmSpec) -> None:
        self.spec = spec
        self.info: AlarmInfo = spec.info
        self.key = spec.info.key
        self.test = threshold_test(spec)
        self.on_delay_s = spec.on_delay_s
        self.off_delay_s = spec.off_delay_s
        self.raw = False  # the condition before on/off delays
        self.pending_at: float | None = None  # when a delayed change of ``raw`` takes effect
        self.state = AlarmState()
        self.prev_v: float | None = None  # rate alarms: the previous good value and its time
        self.prev_t: float | None = None


@dataclass(slots=True)
class _Watch:
    expr: CompiledExpr
    on_change: Callable[[bool, float], None]
    last: bool | None = None


def _poker(runner: LinkageRunner) -> Callable[[bool, float], None]:
    def poke(_value: bool, now: float) -> None:
        runner.advance(now)

    return poke


class RulesEngine:
    def __init__(self, rules: CompiledRules, now: float) -> None:
        self.rules = rules
        self.env = Env()
        self.env.now = now
        self.io = LinkageIO(self.env)
        self._out = Output(self.io.events, self.io.commands)
        self._alarms: dict[str, _Alarm] = {}
        self._by_point: dict[str, list[_Alarm]] = {}
        self._stale: list[_Alarm] = []
        self._pending: dict[str, _Alarm] = {}
        self._ticking: set[str] = set()  # shelved, or acked with a re-alarm time
        self._last_good: dict[str, float] = {}
        self._next_due = _INF
        self._children: dict[str, list[_Alarm]] = {}  # parent key → alarms suppressed by design
        self._watch_points: dict[str, list[_Watch]] = {}
        self._watch_alarms: dict[str, list[_Watch]] = {}
        self._timed: list[_Watch] = []
        self._cascade = 0
        self._faulted: set[str] = set()  # expressions whose last evaluation overflowed
        self.flood = FloodDetector(rules.flood)
        self.drills = DrillBook(rules.site)
        for spec in (*rules.alarms, *(AlarmSpec(info, "meta", None) for info in rules.meta.values())):
            alarm = _Alarm(spec)
            self._alarms[alarm.key] = alarm
            if spec.point_id is not None and spec.kind != "condition":
                self._by_point.setdefault(spec.point_id, []).append(alarm)
                if spec.kind == "stale":
                    self._stale.append(alarm)
                    self._last_good[spec.point_id] = now
            for parent in spec.suppressed_by:
                self._children.setdefault(parent, []).append(alarm)
            if spec.expr is not None:
                self._watch(spec.expr, self._condition_setter(alarm))
        self.linkage: dict[str, LinkageRunner] = {}
        self._rule_zones: dict[str, set[str]] = {}
        self._wait_points: dict[str, list[LinkageRunner]] = {}
        for lspec in rules.linkage:
            runner = LinkageRunner(lspec, self.io)
            self.linkage[lspec.id] = runner
            self._rule_zones[lspec.id] = {
                z
                for k in lspec.trigger.alarms
                if (a := self._alarms.get(k)) is not None and (z := a.info.zone)
            }
            self._watch(lspec.trigger, self._trigger(runner))
            self._watch(lspec.reset, runner.on_reset)
            poke = _poker(runner)
            for expr in (lspec.interlock, *(s.interlock for s in (*lspec.steps, *lspec.restore))):
                if expr is not None:
                    self._watch(expr, poke)
            for s in (*lspec.steps, *lspec.restore):
                if s.wait_point is not None:
                    self._wait_points.setdefault(s.wait_point, []).append(runner)
        self._meta_flood = self._alarms[rules.flood_key]
        self._meta_chatter = self._alarms[rules.chatter_key]

    def _watch(self, expr: CompiledExpr, on_change: Callable[[bool, float], None]) -> None:
        w = _Watch(expr, on_change)
        for pid in expr.points:
            self._watch_points.setdefault(pid, []).append(w)
        for key in expr.alarms:
            self._watch_alarms.setdefault(key, []).append(w)
        if expr.timed:
            self._timed.append(w)

    def _trigger(self, runner: LinkageRunner) -> Callable[[bool, float], None]:
        def on_trigger(value: bool, now: float) -> None:
            if value and runner.state.phase == "idle":
                drill = self.drill_for_rule(runner.spec.id)
                if drill is not None and not drill.linkage:
                    runner.hold_off(now, f"drill ({drill.scope}) without linkage")
                    return
            runner.on_trigger(value, now)

        return on_trigger

    def drill_for_rule(self, rule_id: str) -> Drill | None:
        """The drill covering a linkage rule: its trigger's alarm zones, or the whole site."""
        return self.drills.covering_any(self._rule_zones.get(rule_id, set()))

    def _condition_setter(self, alarm: _Alarm) -> Callable[[bool, float], None]:
        return lambda value, now: self._set_raw(alarm, value, now, None)

    # -- feeding ---------------------------------------------------------------------------
    def feed(self, sample: Sample, now: float | None = None) -> None:
        """One sample; ``now`` defaults to the sample's receipt time."""
        if now is None:
            now = sample.receipt_ts
        if now >= self._next_due:
            self.tick(now)
        pid = sample.point_id
        values = self.env.values
        if sample.quality is _BAD:
            if pid not in values:
                return
            del values[pid]
            changed = True
            v = None
        else:
            v = sample.value
            old = values.get(pid, _MISSING)
            changed = old is _MISSING or old != v or old.__class__ is not v.__class__
            if changed:
                values[pid] = v
            if sample.quality is Quality.GOOD and pid in self._last_good:
                self._last_good[pid] = now
        alarms = self._by_point.get(pid)
        if alarms is not None:
            for a in alarms:
                test = a.test
                if test is not None:
                    if not changed or v is None:
                        continue
                    raw = test(v, a.raw)
                    if raw is not None and (raw is not a.raw or a.pending_at is not None):
                        self._set_raw(a, raw, now, v)
                elif pid in self._last_good or a.spec.kind == "rate":
                    self._special(a, sample, now)
        if changed:
            self.env.now = now
            watches = self._watch_points.get(pid)
            if watches is not None:
                self._run_watches(watches, now)
            runners = self._wait_points.get(pid)
            if runners is not None:
                for r in runners:
                    r.advance(now)

    def _special(self, a: _Alarm, sample: Sample, now: float) -> None:
        kind = a.spec.kind
        if kind == "stale":
            if sample.quality is Quality.GOOD:
                self._set_raw(a, False, now, sample.value)
            return
        if kind == "rate" and sample.quality is not _BAD:
            v = sample.value
            if isinstance(v, bool) or not isinstance(v, int | float):
                return
            if a.prev_v is not None and a.prev_t is not None and now > a.prev_t:
                rate = abs(v - a.prev_v) / (now - a.prev_t) * a.spec.per_s
                limit = a.spec.limit
                raw = rate > limit or (a.raw and rate > limit - a.spec.deadband)
                if raw is not a.raw or a.pending_at is not None:
                    self._set_raw(a, raw, now, v)
            a.prev_v, a.prev_t = float(v), now

    def _set_raw(self, a: _Alarm, raw: bool | None, now: float, value: Value) -> None:
        if raw is None:
            return  # unknown: keep whatever was decided before
        if raw is not a.raw:
            a.raw = raw
        if raw is a.state.active:
            if a.pending_at is not None:
                a.pending_at = None
                self._pending.pop(a.key, None)
            return
        if a.pending_at is not None:
            return  # a change already counting down
        delay = a.on_delay_s if raw else a.off_delay_s
        if delay > 0:
            a.pending_at = now + delay
            self._pending[a.key] = a
            if a.pending_at < self._next_due:
                self._next_due = a.pending_at
            return
        self._apply(a, isa.ProcessChange(raw, value if value is not None else self._value_of(a)), now)

    def _value_of(self, a: _Alarm) -> Value:
        pid = a.spec.point_id
        return None if pid is None else self.env.values.get(pid)

    def _apply(self, a: _Alarm, inp: isa.Input, now: float) -> bool:
        before = a.state
        after, events = isa.step(a.info, before, inp, now)
        a.state = after
        in_drill = False
        if events and a.spec.kind != "meta":
            if any(ev.kind == "alarm.raised" for ev in events) and self.drills.covering(a.info.zone):
                self.drills.marked.add(a.key)
            in_drill = a.key in self.drills.marked
            if in_drill:
                for ev in events:
                    ev.data["drill"] = True  # to the centre marked as a drill
        if after.name is isa.Isa.NORMAL:
            self.drills.marked.discard(a.key)
        if events:
            self._out.events.extend(events)
            # a drill's alarms count towards neither the flood nor chattering
            if a.spec.kind != "meta" and not in_drill:
                for ev in events:
                    if ev.kind in _PROCESS_KINDS:
                        self._meta(self.flood.record_transition(a.key, now), now)
                    if ev.kind == "alarm.raised" or (ev.kind.endswith("unshelved") and ev.data.get("raised")):
                        self._meta(self.flood.record_raise(now), now)
        if after.shelved_until is not None or (a.info.realarm_s is not None and after.active):
            self._ticking.add(a.key)
            due = after.shelved_until
            if due is None and after.acked_at is not None and not after.unacked:
                assert a.info.realarm_s is not None
                due = after.acked_at + a.info.realarm_s
            if due is not None and now < due < self._next_due:
                self._next_due = due
        else:
            self._ticking.discard(a.key)
        if before.standing is not after.standing:
            self._standing_changed(a, after.standing, now)
        return bool(events)

    def _standing_changed(self, a: _Alarm, standing: bool, now: float) -> None:
        if standing:
            self.env.active.add(a.key)
        else:
            self.env.active.discard(a.key)
        children = self._children.get(a.key)
        if children is not None:
            for child in children:
                parents = child.spec.suppressed_by
                if any(p in self.env.active for p in parents):
                    self._apply(child, isa.Suppress(a.key if standing else parents[0]), now)
                else:
                    self._apply(child, isa.Unsuppress(a.key), now)
        watches = self._watch_alarms.get(a.key)
        if watches is not None:
            self.env.now = now
            self._run_watches(watches, now)

    def _run_watches(self, watches: list[_Watch], now: float) -> None:
        if self._cascade >= _MAX_CASCADE:
            _LOG.warning("rules cascade too deep; a condition probably refers to itself")
            return
        self._cascade += 1
        try:
            env = self.env
            for w in watches:
                value = w.expr.fn(env)
                if env.faults:
                    self._report_faults(now)
                elif w.expr.name in self._faulted:
                    self._faulted.discard(w.expr.name)
                    self._out.events.append(Event("rule.value_ok", w.expr.name, now, {"rule": w.expr.name}))
                if value is not None and value is not w.last:
                    w.last = value
                    w.on_change(value, now)
                if w.expr.timed:
                    due = w.expr.next_due(env)
                    if due is not None and due < self._next_due:
                        self._next_due = due
        finally:
            self._cascade -= 1

    def _report_faults(self, now: float) -> None:
        """Turn the expressions' recorded faults into events: one per expression going bad."""
        for name, error in self.env.faults.items():
            if name not in self._faulted:
                self._faulted.add(name)
                _LOG.warning("rule value bad", rule=name, error=error)
                self._out.events.append(
                    Event("rule.bad_value", name, now, {"rule": name, "error": error, "quality": "bad"})
                )
        self.env.faults.clear()

    def _meta(self, changes: list[FloodChange], now: float) -> None:
        for ch in changes:
            if ch.kind.startswith("chatter"):
                self._out.events.append(
                    Event(f"alarm.{ch.kind}", ch.key or "", now, {"alarm": ch.key, "transitions": ch.count})
                )
                meta, active = self._meta_chatter, bool(self.flood.chattering)
            else:
                meta, active = self._meta_flood, self.flood.flooding
            self._apply(meta, isa.ProcessChange(active, ch.count), now)

    # -- time ------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Advance time: delays, staleness, shelving, re-alarm, holds, linkage, flood windows."""
        self.env.now = now
        next_due = _INF
        # in a fixed order (due time, then key) so that a restored engine emits the same sequence
        for key, a in sorted(self._pending.items(), key=lambda item: (item[1].pending_at or 0.0, item[0])):
            assert a.pending_at is not None
            if a.pending_at <= now:
                del self._pending[key]
                a.pending_at = None
                self._apply(a, isa.ProcessChange(a.raw, self._value_of(a)), now)
        for a in self._stale:
            pid = a.spec.point_id
            assert pid is not None
            if not a.raw and now - self._last_good[pid] >= a.spec.after_s:
                self._set_raw(a, True, now, None)
            elif not a.raw:
                next_due = min(next_due, self._last_good[pid] + a.spec.after_s)
        for key in sorted(self._ticking):
            self._apply(self._alarms[key], isa.Tick(), now)
        if self._timed:
            self._run_watches(self._timed, now)
        for runner in self.linkage.values():
            runner.advance(now)
        self._meta(self.flood.expire(now), now)
        self._out.events.extend(self.drills.expire(now))
        self._next_due = min(next_due, self._recompute_due(now))

    def _recompute_due(self, now: float) -> float:
        due = [a.pending_at for a in self._pending.values() if a.pending_at is not None]
        for key in self._ticking:
            st = self._alarms[key].state
            realarm = self._alarms[key].info.realarm_s
            if st.shelved_until is not None:
                due.append(st.shelved_until)
            elif realarm is not None and st.acked_at is not None and not st.unacked:
                due.append(st.acked_at + realarm)
        for w in self._timed:
            d = w.expr.next_due(self.env)
            if d is not None:
                due.append(d)
        for r in self.linkage.values():
            if r.next_due is not None:
                due.append(r.next_due)
        drill_due = self.drills.next_due()
        if drill_due is not None:
            due.append(drill_due)
        # anything at or before ``now`` was handled by this tick or waits for an input, not time
        return min((d for d in due if d > now), default=_INF)

    def next_due(self) -> float | None:
        """When ``tick`` next has something to do (None: nothing scheduled)."""
        return None if self._next_due == _INF else self._next_due

    # -- operator actions ------------------------------------------------------------------
    def ack(self, key: str, by: str, now: float, comment: str = "") -> bool:
        return self._operator(key, isa.Ack(by, comment), now)

    def reset(self, key: str, by: str, now: float) -> bool:
        return self._operator(key, isa.Reset(by), now)

    def shelve(self, key: str, until: float, by: str, now: float, reason: str = "") -> bool:
        return self._operator(key, isa.Shelve(until, by, reason), now)

    def unshelve(self, key: str, by: str, now: float) -> bool:
        return self._operator(key, isa.Unshelve(by), now)

    def remove_from_service(self, key: str, by: str, now: float, reason: str = "") -> bool:
        return self._operator(key, isa.RemoveFromService(by, reason), now)

    def return_to_service(self, key: str, by: str, now: float) -> bool:
        return self._operator(key, isa.ReturnToService(by), now)

    def _operator(self, key: str, inp: isa.Input, now: float) -> bool:
        alarm = self._alarms.get(key)
        if alarm is None:
            raise KeyError(f"no alarm {key!r}")
        self.env.now = now
        return self._apply(alarm, inp, now)

    def confirm(self, rule_id: str, by: str, now: float) -> bool:
        self.env.now = now
        return self.linkage[rule_id].confirm(by, now)

    def cancel(self, rule_id: str, by: str, now: float) -> bool:
        self.env.now = now
        return self.linkage[rule_id].cancel(by, now)

    def manual_start(self, rule_id: str, by: str, now: float) -> bool:
        self.env.now = now
        return self.linkage[rule_id].manual_start(by, now)

    def manual_restore(self, rule_id: str, by: str, now: float) -> bool:
        self.env.now = now
        return self.linkage[rule_id].manual_restore(by, now)

    def start_drill(
        self, zone: str | None, until: float, by: str, now: float, *, linkage: bool = False, reason: str = ""
    ) -> None:
        self.env.now = now
        self._out.events.append(self.drills.start(zone, until, by, now, linkage=linkage, reason=reason))
        if until < self._next_due:
            self._next_due = until

    def end_drill(self, zone: str | None, by: str, now: float) -> bool:
        event = self.drills.end(zone, by, now)
        if event is not None:
            self._out.events.append(event)
        return event is not None

    def command_result(self, result: CommandResult, now: float) -> bool:
        rule_id = result.correlation_id.split(":", 1)[0]
        runner = self.linkage.get(rule_id)
        self.env.now = now
        return runner is not None and runner.on_result(result, now)

    def override(self, point_id: str, by: str, now: float, value: Value = None) -> None:
        """An operator wrote ``point_id`` by hand: automation leaves it alone until released."""
        self.io.overridden[point_id] = by
        self.io.events.append(
            Event("linkage.override", point_id, now, {"by": by, "value": value, "at": now, "point": point_id})
        )

    def release_override(self, point_id: str, by: str, now: float) -> bool:
        if self.io.overridden.pop(point_id, None) is None:
            return False
        self.io.events.append(
            Event("linkage.override_released", point_id, now, {"by": by, "at": now, "point": point_id})
        )
        return True

    # -- reading ---------------------------------------------------------------------------
    def drain(self) -> Output:
        """Everything produced since the last drain, in order."""
        if self.env.faults:  # from expressions evaluated outside a watch (linkage interlocks)
            self._report_faults(self.env.now)
        out = Output(list(self.io.events), list(self.io.commands))
        self.io.events.clear()
        self.io.commands.clear()
        return out

    def alarm(self, key: str) -> AlarmState:
        return self._alarms[key].state

    def alarm_keys(self) -> list[str]:
        return list(self._alarms)

    def alarm_info(self, key: str) -> AlarmInfo:
        return self._alarms[key].info

    def alarm_row(self, key: str) -> dict[str, Any] | None:
        """One alarm as a console row (see ``alarm_table``); None while it is plainly normal."""
        a = self._alarms[key]
        st = a.state
        if st.name is isa.Isa.NORMAL:
            return None
        return {
            "key": key,
            "state": st.name.value,
            "unacked": st.unacked,
            "priority": a.info.priority,
            "class": a.info.klass,
            "message": {"zh": a.info.message_zh, "en": a.info.message_en},
            "point": a.info.point_id,
            "zone": a.info.zone,
            "value": st.value,
            "raised_at": st.raised_at,
            "shelved_until": st.shelved_until,
            "drill": key in self.drills.marked,
        }

    def alarm_table(self) -> list[dict[str, Any]]:
        """Every alarm that is not plainly normal, most urgent first: for consoles and dashboards."""
        rank = {"critical": 1, "high": 2, "medium": 3, "low": 4}
        keyed: list[tuple[int, float, str, dict[str, Any]]] = []
        for key, a in self._alarms.items():
            row = self.alarm_row(key)
            if row is None:
                continue
            keyed.append((rank.get(a.info.priority, 9), -(a.state.raised_at or 0.0), key, row))
        keyed.sort(key=lambda item: item[:3])
        return [item[3] for item in keyed]

    def restart_stale_clocks(self, now: float) -> None:
        """Start every communication-loss timer afresh: after the gateway itself was down, the
        devices are not to blame for the gap, so a restart must not raise stale alarms for it."""
        for pid in self._last_good:
            self._last_good[pid] = max(self._last_good[pid], now)

    def counters(self) -> dict[str, int]:
        out = dict(self.flood.counters)
        out["standing"] = len(self.env.active)
        out["pending_delays"] = len(self._pending)
        return out

    # -- used by rules.snapshot ------------------------------------------------------------
    def _alarm_runtime(self) -> dict[str, _Alarm]:
        return self._alarms

    def _watches(self) -> list[_Watch]:
        seen: dict[int, _Watch] = {}
        for group in (*self._watch_points.values(), *self._watch_alarms.values(), self._timed):
            for w in group:
                seen[id(w)] = w
        return list(seen.values())

    def _after_restore(self, now: float, next_due: float | None) -> None:
        self.env.active = {k for k, a in self._alarms.items() if a.state.standing}
        self._pending = {k: a for k, a in self._alarms.items() if a.pending_at is not None}
        self._ticking = {
            k
            for k, a in self._alarms.items()
            if a.state.shelved_until is not None or (a.info.realarm_s is not None and a.state.active)
        }
        # the saved schedule, so that a restored engine ticks exactly when the original would
        self._next_due = (
            self._recompute_due(now) if next_due is None else min(next_due, self._recompute_due(now))
        )
