"""Replay a scenario through the rules on a simulated clock: the core of ``gatehouse rules test``.

A scenario lists what happens when (values set, qualities lost, operators acknowledging,
confirming, overriding) and, optionally, how simulated writes answer. The replay feeds it to
the same ``RulesEngine`` the daemon runs, on a ``ManualClock``, and returns every alarm
transition, linkage audit event and command in order, as rows and as a readable table.

Scenario shape (YAML)::

    name: fire in zone 2
    site: demo                      # needed when points/rules are embedded
    points: [{id: fire_panel.zone2_detector_a, zone: "2", alarms: [...]}, ...]   # optional
    rules: {linkage: [...]}         # optional: the site's rules section
    results: {fans.zone2_smoke_fan: failed}   # verified (default), written, failed, timeout
    until: 120s
    tick_s: 1
    steps:
      - {at: 0s, set: {fire_panel.zone2_detector_a: false}}
      - {at: 5s, set: {fire_panel.zone2_detector_a: true}}
      - {at: 6s, bad: [tank1.level]}
      - {at: 30s, ack: fire_panel.zone2_detector_a/fire, by: duty1}
      - {at: 40s, confirm: fire-zone2, by: duty1}
      - {at: 50s, override: {doors.escape_release: false}, by: duty1}
      - {at: 90s, reset: fire_panel.zone2_detector_a/fire, by: duty1}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.model import ManualClock, Quality, Reason, Sample, Value
from rules.compiled import CompiledRules, PointRules, compile_rules
from rules.evaluator import RulesEngine
from rules.expr.tokens import DURATION_UNITS_S
from rules.linkage import CommandResult

__all__ = [
    "Expectation",
    "ReplayRow",
    "Scenario",
    "check_expectations",
    "format_table",
    "parse_duration",
    "replay",
    "scenario_rules",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")
_MAX_COMMAND_ROUNDS = 100


def parse_duration(value: float | int | str) -> float:
    """``90``, ``"90s"``, ``"1.5min"``, ``"2h"`` → seconds."""
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(value)
    if m is None or (m.group(2) and m.group(2) not in DURATION_UNITS_S):
        raise ValueError(f"not a duration: {value!r} (write 30s, 5min, 1h)")
    return float(m.group(1)) * DURATION_UNITS_S.get(m.group(2) or "s", 1.0)


@dataclass(frozen=True, slots=True)
class ReplayRow:
    t_s: float
    kind: str
    source: str
    detail: str


class _Model(BaseModel):
    # Built when a scenario is first read (``gatehouse rules replay``), never by the daemon that
    # only imports this module (issue 19).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class ScenarioPoint(_Model):
    id: str = Field(description="device.point or site/device/point")
    zone: str | None = None
    alarms: list[dict[str, Any]] = Field(default_factory=list)


class ScenarioStep(_Model):
    at: float
    set: dict[str, Value] | None = None
    bad: list[str] | None = None
    ack: str | None = None
    reset: str | None = None
    shelve: str | None = None
    for_: float | None = Field(default=None, alias="for")
    unshelve: str | None = None
    confirm: str | None = None
    cancel: str | None = None
    override: dict[str, Value] | None = None
    release: str | None = None
    by: str = "operator"

    @field_validator("at", "for_", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)


class Expectation(_Model):
    """A row the replay must (or, with ``absent: true``, must not) contain.

    ``at`` may be left out (any time); ``source`` and ``detail`` match as substrings.
    """

    event: str
    at: float | None = None
    source: str | None = None
    detail: str | None = None
    absent: bool = False

    @field_validator("at", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    def matches(self, row: ReplayRow) -> bool:
        return (
            row.kind == self.event
            and (self.at is None or abs(row.t_s - self.at) < 1e-6)
            and (self.source is None or self.source in row.source)
            and (self.detail is None or self.detail in row.detail)
        )

    def __str__(self) -> str:
        parts = [self.event]
        if self.at is not None:
            parts.append(f"at {self.at:g}s")
        if self.source:
            parts.append(f"source ~ {self.source!r}")
        if self.detail:
            parts.append(f"detail ~ {self.detail!r}")
        return ("no " if self.absent else "") + " ".join(parts)


class Scenario(_Model):
    name: str = "scenario"
    site: str | None = None
    points: list[ScenarioPoint] = Field(default_factory=list)
    rules: dict[str, Any] | None = None
    results: dict[str, Literal["verified", "written", "failed", "timeout"]] = Field(default_factory=dict)
    until: float = 60.0
    tick_s: float = Field(default=1.0, gt=0)
    start_wall: float = 1_767_225_600.0
    steps: list[ScenarioStep] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)

    @field_validator("until", "tick_s", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return parse_duration(v)


def scenario_rules(scenario: Scenario) -> CompiledRules:
    """Compile the points and rules a scenario embeds (a site file's rules are compiled by the CLI)."""
    if scenario.site is None:
        raise ValueError("a scenario that embeds points needs 'site'")
    site = scenario.site
    points = [
        PointRules(p.id if "/" in p.id else f"{site}/{p.id.replace('.', '/', 1)}", p.zone, p.alarms)
        for p in scenario.points
    ]
    return compile_rules(site, points, scenario.rules)


def replay(rules: CompiledRules, scenario: Scenario) -> list[ReplayRow]:
    site = rules.site

    def pid(ref: str) -> str:
        return ref if ref.startswith(site + "/") else f"{site}/{ref.replace('.', '/', 1)}"

    def key(ref: str) -> str:
        if ref.startswith(site + "/"):
            return ref
        point, _, alarm = ref.partition("/")
        return f"{pid(point)}/{alarm}" if alarm else pid(point)

    clock = ManualClock(scenario.start_wall)
    engine = RulesEngine(rules, clock.wall())
    rows: list[ReplayRow] = []
    steps = sorted(scenario.steps, key=lambda s: s.at)
    modes = {pid(p): mode for p, mode in scenario.results.items()}
    i = 0
    t = 0.0
    while t <= scenario.until + 1e-9:
        now = clock.wall()
        while i < len(steps) and steps[i].at <= t + 1e-9:
            _apply(engine, steps[i], now, pid, key)
            i += 1
        engine.tick(now)
        for _ in range(_MAX_COMMAND_ROUNDS):
            out = engine.drain()
            rows.extend(_rows(t, out.events))
            if not out.commands:
                break
            for cmd in out.commands:
                rows.append(
                    ReplayRow(t, "command", cmd.point_id, f"write {cmd.value!r} [{cmd.correlation_id}]")
                )
                mode = modes.get(cmd.point_id, "verified")
                if mode == "timeout":
                    continue
                if mode == "verified":
                    engine.feed(Sample(cmd.point_id, cmd.value, Quality.GOOD, now), now)
                engine.command_result(CommandResult(cmd.correlation_id, mode), now)
        clock.advance(scenario.tick_s)
        t += scenario.tick_s
    return rows


def _apply(engine: RulesEngine, step: ScenarioStep, now: float, pid: Any, key: Any) -> None:
    for point, value in (step.set or {}).items():
        engine.feed(Sample(pid(point), value, Quality.GOOD, now), now)
    for point in step.bad or []:
        engine.feed(Sample(pid(point), None, Quality.BAD, now, Reason.COMM_FAILURE), now)
    if step.ack:
        engine.ack(key(step.ack), step.by, now)
    if step.reset:
        engine.reset(key(step.reset), step.by, now)
    if step.shelve:
        engine.shelve(key(step.shelve), now + (step.for_ or 3600.0), step.by, now)
    if step.unshelve:
        engine.unshelve(key(step.unshelve), step.by, now)
    if step.confirm:
        engine.confirm(step.confirm, step.by, now)
    if step.cancel:
        engine.cancel(step.cancel, step.by, now)
    for point, value in (step.override or {}).items():
        engine.override(pid(point), step.by, now, value)
    if step.release:
        engine.release_override(pid(step.release), step.by, now)


def _rows(t: float, events: list[Any]) -> list[ReplayRow]:
    rows = []
    for ev in events:
        d = ev.data
        if ev.kind.startswith("alarm.") and "from" in d:
            detail = f"{d['from']} -> {d['to']} by {d['by']}"
            if d.get("value") is not None:
                detail += f" (value {d['value']!r})"
        elif "step" in d:
            detail = f"step {d['step']} {d.get('step_name', '')}"
            if d.get("attempt"):
                detail += f" attempt {d['attempt']}"
            if d.get("reason"):
                detail += f": {d['reason']}"
            if d.get("final"):
                detail += " (final)"
        else:
            extra = {k: v for k, v in d.items() if k in ("by", "reason", "alarm", "transitions", "value")}
            detail = " ".join(f"{k}={v}" for k, v in extra.items())
        rows.append(ReplayRow(t, ev.kind, ev.source, detail.strip()))
    return rows


def check_expectations(scenario: Scenario, rows: list[ReplayRow]) -> list[str]:
    """What the scenario's ``expect`` list asked for and did not get (empty: all met)."""
    failures = []
    for exp in scenario.expect:
        found = any(exp.matches(r) for r in rows)
        if found == exp.absent:
            failures.append(f"expected {exp}" if not exp.absent else f"unexpected: {exp}")
    return failures


def format_table(rows: list[ReplayRow]) -> str:
    """A fixed-width text table: time, what, where, details."""
    header = ("t", "event", "source", "detail")
    cells = [(f"{r.t_s:g}s", r.kind, r.source, r.detail) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells)
    return "\n".join(lines)
