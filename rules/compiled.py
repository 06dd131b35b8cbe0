"""Turn a site's alarm definitions and linkage rules into checked, compiled specs.

Input is neutral data (point ids, zones and raw alarm dicts, plus the site's ``rules:``
section) so that the rules package never needs ``edge.config``: the daemon, ``gatehouse check``
and the rule test mode all build ``PointRules`` from a loaded site and call ``compile_rules``.
Every mistake is collected (not just the first) as a ``RuleProblem`` with a path and, for
expressions, the line and column inside the expression.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError

from core.errors import ConfigProblem, GatehouseError
from core.model import Value
from rules.alarm_state import AlarmInfo
from rules.definitions import (
    AlarmDef,
    FloodConfig,
    LinkageRule,
    LinkageStep,
    Message,
    RulesConfig,
    priority_of,
)
from rules.expr import AlarmMeta, CompiledExpr, ExprError, Scope, compile_expr, site_alarm_key

__all__ = [
    "AlarmSpec",
    "CompiledRules",
    "LinkageSpec",
    "PointRules",
    "RuleProblem",
    "RulesError",
    "StepSpec",
    "compile_rules",
]

_LOG = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PointRules:
    """One point as the rules see it: its id, its zone, and its (profile + device) alarms."""

    point_id: str
    zone: str | None = None
    alarms: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True, slots=True)
class RuleProblem:
    path: str
    message: str
    line: int = 0  # inside the expression (1-based); 0 when the problem is not in an expression
    col: int = 0

    def to_config_problem(self, file: str, node_line: int, node_col: int) -> ConfigProblem:
        """Place the problem in the YAML file.

        ``node_line``/``node_col`` are where the expression's text starts: the scalar's position,
        plus one column for a quoted scalar.
        """
        if self.line <= 0:
            return ConfigProblem(file, node_line, node_col, self.path, self.message)
        # a plain one-line scalar: columns add up; later lines of a block scalar keep their own
        col = node_col + self.col - 1 if self.line == 1 else self.col
        return ConfigProblem(file, node_line + self.line - 1, col, self.path, self.message)

    def __str__(self) -> str:
        where = f" (expression {self.line}:{self.col})" if self.line else ""
        return f"{self.path}: {self.message}{where}"


class RulesError(GatehouseError):
    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class AlarmSpec:
    info: AlarmInfo
    kind: str
    point_id: str | None
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    deadband: float = 0.0
    setpoint: float = 0.0
    when: bool = True
    bit: int | None = None
    code: int | None = None
    after_s: float = 0.0
    per_s: float = 1.0
    limit: float = 0.0
    expr: CompiledExpr | None = None
    suppressed_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepSpec:
    index: int
    write: str | None  # point id
    value: Value
    wait_point: str | None
    wait_equals: Value
    verify: bool
    delay_s: float
    retries: int
    timeout_s: float
    interlock: CompiledExpr | None
    on_interlock: str
    on_failure: str
    name: str
    priority: int | None = None  # a priority-array write (BACnet), else the point's own


@dataclass(frozen=True, slots=True)
class LinkageSpec:
    id: str
    name_zh: str
    name_en: str
    mode: str
    trigger: CompiledExpr
    reset: CompiledExpr
    interlock: CompiledExpr | None
    steps: tuple[StepSpec, ...]
    restore: tuple[StepSpec, ...]


@dataclass(frozen=True, slots=True)
class CompiledRules:
    site: str
    alarms: tuple[AlarmSpec, ...]
    linkage: tuple[LinkageSpec, ...]
    flood: FloodConfig
    scope: Scope
    meta: dict[str, AlarmInfo] = field(default_factory=dict)

    @property
    def flood_key(self) -> str:
        return f"{self.site}/_meta/flood"

    @property
    def chatter_key(self) -> str:
        return f"{self.site}/_meta/chattering"


def compile_rules(
    site: str, points: Sequence[PointRules], config: RulesConfig | Mapping[str, Any] | None = None
) -> CompiledRules:
    """Validate and compile; raises ``RulesError`` listing every problem found."""
    return _Builder(site, points).build(config)


class _Builder:
    def __init__(self, site: str, points: Sequence[PointRules]) -> None:
        self.site = site
        self.points = points
        self.problems: list[RuleProblem] = []
        self.zones = {p.point_id: p.zone for p in points}
        self.scope = Scope(site, frozenset(self.zones))

    def build(self, raw: RulesConfig | Mapping[str, Any] | None) -> CompiledRules:
        config = self._config(raw)
        defs = self._definitions(config)
        metas: dict[str, AlarmMeta] = {}
        pending: list[tuple[str, AlarmDef, str | None, str]] = []
        for path, (point_id, definition) in defs.items():
            if not definition.enabled:
                continue
            for key, priority, klass in self._keys(point_id, definition):
                zone = definition.zone or (self.zones.get(point_id) if point_id else None)
                metas[key] = AlarmMeta(key, point_id, zone, priority, klass)
            pending.append((path, definition, point_id, self._base_key(point_id, definition)))
        self.scope.alarms.update(metas)
        specs: list[AlarmSpec] = []
        for path, definition, point_id, base in pending:
            specs.extend(self._specs(path, definition, point_id, base))
        linkage = [self._linkage(f"rules.linkage[{i}]", r) for i, r in enumerate(config.linkage) if r.enabled]
        if self.problems:
            raise RulesError(self.problems)
        meta = {
            k: AlarmInfo(k, None, "high", None, zh, en, ack_required=True)
            for k, zh, en in (
                (f"{self.site}/_meta/flood", "报警泛滥", "alarm flood"),
                (f"{self.site}/_meta/chattering", "报警振荡", "chattering alarm"),
            )
        }
        rules = tuple(s for s in linkage if s is not None)
        return CompiledRules(self.site, tuple(specs), rules, config.flood, self.scope, meta)

    # -- definitions -----------------------------------------------------------------------
    def _config(self, raw: RulesConfig | Mapping[str, Any] | None) -> RulesConfig:
        if isinstance(raw, RulesConfig):
            return raw
        try:
            return RulesConfig.model_validate(raw or {})
        except ValidationError as exc:
            self._pydantic("rules", exc)
            raise RulesError(self.problems) from exc

    def _pydantic(self, path: str, exc: ValidationError) -> None:
        for err in exc.errors():
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            self.problems.append(RuleProblem(path + loc, err["msg"]))

    def _definitions(self, config: RulesConfig) -> dict[str, tuple[str | None, AlarmDef]]:
        """Profile defaults merged with the site's overrides, by ``point + id``."""
        raw: dict[tuple[str | None, str], tuple[str, dict[str, Any]]] = {}
        for point in self.points:
            for i, alarm in enumerate(point.alarms):
                alarm_id = str(alarm.get("id", f"#{i}"))
                raw[(point.point_id, alarm_id)] = (f"{point.point_id}.alarms[{i}]", dict(alarm))
        for i, override in enumerate(config.alarms):
            path = f"rules.alarms[{i}]"
            point_id = None if override.point is None else self._point_ref(override.point)
            if point_id is not None and point_id not in self.zones:
                self.problems.append(RuleProblem(path + ".point", f"unknown point {override.point!r}"))
                continue
            base = raw.get((point_id, override.id))
            if base is None:
                raw[(point_id, override.id)] = (path, override.fields())
            else:
                raw[(point_id, override.id)] = (path, {**base[1], **override.fields()})
        out: dict[str, tuple[str | None, AlarmDef]] = {}
        for (point_id, _), (path, fields) in raw.items():
            try:
                definition = AlarmDef.model_validate(fields)
            except ValidationError as exc:
                self._pydantic(path, exc)
                continue
            if point_id is None and definition.kind != "condition":
                self.problems.append(RuleProblem(path, "only a 'condition' alarm may leave out 'point'"))
                continue
            out[path] = (point_id, definition)
        return out

    def _point_ref(self, text: str) -> str:
        if "/" in text:
            return text
        return f"{self.site}/{text.replace('.', '/', 1)}"

    def _base_key(self, point_id: str | None, definition: AlarmDef) -> str:
        return site_alarm_key(self.site, definition.id) if point_id is None else f"{point_id}/{definition.id}"

    def _keys(self, point_id: str | None, definition: AlarmDef) -> list[tuple[str, str, str | None]]:
        base = self._base_key(point_id, definition)
        if definition.kind == "enum" and definition.codes:
            out = []
            for code, entry in sorted(definition.codes.items()):
                priority, klass = priority_of(entry.priority or definition.priority)
                out.append((f"{base}.{code}", priority, klass))
            return out
        priority, klass = priority_of(definition.priority)
        return [(base, priority, klass)]

    def _specs(self, path: str, d: AlarmDef, point_id: str | None, base: str) -> list[AlarmSpec]:
        zone = d.zone or (self.zones.get(point_id) if point_id else None)
        suppressed_by: list[str] = []
        for j, ref in enumerate(d.suppressed_by):
            keys = self.scope.in_device(_device(point_id)).alarm_keys_by_id(ref)
            if not keys:
                self.problems.append(RuleProblem(f"{path}.suppressed_by[{j}]", f"no alarm matches {ref!r}"))
            suppressed_by.extend(keys)
        expr = None
        if d.kind == "condition":
            assert d.expr is not None
            expr = self._expr(f"{path}.expr", d.expr, base, _device(point_id))
            if expr is None:
                return []
        common: dict[str, Any] = {
            "kind": d.kind,
            "point_id": point_id,
            "on_delay_s": d.on_delay_s,
            "off_delay_s": d.off_delay_s,
            "deadband": d.deadband,
            "setpoint": d.setpoint or 0.0,
            "when": d.when,
            "bit": d.bit,
            "after_s": d.after_s or 0.0,
            "per_s": d.per_s or 1.0,
            "limit": d.limit or 0.0,
            "expr": expr,
            "suppressed_by": tuple(k for k in suppressed_by if not k.startswith(base)),
        }
        out = []
        for key, priority, klass in self._keys(point_id, d):
            message = d.message
            code = None
            if d.kind == "enum" and d.codes:
                code = int(key.rsplit(".", 1)[1])
                entry = d.codes[code]
                if entry.message.zh or entry.message.en:
                    message = entry.message
            if not (message.zh or message.en):
                message = _default_message(d, point_id, code)
            info = AlarmInfo(
                key, point_id, priority, klass, message.zh, message.en,
                d.ack_required, d.latched, d.realarm_s, zone,
            )  # fmt: skip
            out.append(AlarmSpec(info=info, code=code, **common))
        return out

    def _expr(self, path: str, text: str, name: str, device: str | None = None) -> CompiledExpr | None:
        try:
            return compile_expr(text, self.scope.in_device(device), name=name)
        except ExprError as exc:
            self.problems.append(RuleProblem(path, exc.message, exc.line, exc.col))
            return None

    # -- linkage ---------------------------------------------------------------------------
    def _linkage(self, path: str, rule: LinkageRule) -> LinkageSpec | None:
        name = f"linkage:{rule.id}"
        trigger = self._expr(f"{path}.trigger", rule.trigger, f"{name}:trigger")
        # the steps are checked even when the trigger is wrong: report every mistake at once
        steps = self._steps(f"{path}.steps", rule.steps, name)
        restore = self._steps(f"{path}.restore", rule.restore, f"{name}:restore")
        if trigger is None:
            return None
        if rule.reset is not None:
            reset = self._expr(f"{path}.reset", rule.reset, f"{name}:reset")
        elif trigger.alarms:
            keys = ", ".join(f'"{k}"' for k in sorted(trigger.alarms))
            reset = self._expr(f"{path}.trigger", f"not any(alarms({keys}))", f"{name}:reset")
        else:
            reset = self._expr(f"{path}.trigger", f"not ({rule.trigger})", f"{name}:reset")
        interlock = None
        if rule.interlock is not None:
            interlock = self._expr(f"{path}.interlock", rule.interlock, f"{name}:interlock")
        if reset is None:
            return None
        return LinkageSpec(
            rule.id, rule.name.zh, rule.name.en, rule.mode, trigger, reset, interlock, steps, restore
        )

    def _steps(self, path: str, steps: list[LinkageStep], name: str) -> tuple[StepSpec, ...]:
        out = []
        for i, s in enumerate(steps):
            write = wait = None
            if s.write is not None:
                write = self._known_point(f"{path}[{i}].write", s.write)
            if s.wait_for is not None:
                wait = self._known_point(f"{path}[{i}].wait_for.point", s.wait_for.point)
            interlock = None
            if s.interlock is not None:
                interlock = self._expr(f"{path}[{i}].interlock", s.interlock, f"{name}:step{i}")
            target = s.write if s.write else (s.wait_for.point if s.wait_for else "")
            label = s.name or (f"write {target}" if s.write else f"wait for {target}")
            out.append(
                StepSpec(
                    i,
                    write,
                    s.value,
                    wait,
                    s.wait_for.equals if s.wait_for else None,
                    s.verify,
                    s.delay_s,
                    s.retries,
                    s.wait_for.timeout_s if s.wait_for else s.timeout_s,
                    interlock,
                    s.on_interlock,
                    s.on_failure,
                    label,
                    s.priority,
                )  # fmt: skip
            )
        return tuple(out)

    def _known_point(self, path: str, ref: str) -> str:
        pid = self._point_ref(ref)
        if pid not in self.zones:
            self.problems.append(RuleProblem(path, f"unknown point {ref!r}"))
        return pid


_DEFAULT_TEXT: dict[str, tuple[str, str]] = {
    "high": ("{p} 高于 {sp:g}", "{p} high (above {sp:g})"),
    "high_high": ("{p} 超高 {sp:g}", "{p} very high (above {sp:g})"),
    "low": ("{p} 低于 {sp:g}", "{p} low (below {sp:g})"),
    "low_low": ("{p} 超低 {sp:g}", "{p} very low (below {sp:g})"),
    "state": ("{p} 报警", "{p} in alarm"),
    "enum": ("{p} 代码 {code}", "{p} code {code}"),
    "stale": ("{p} {after:g} 秒无数据", "{p}: no good value for {after:g} s"),
    "rate": ("{p} 变化过快", "{p} changing too fast"),
    "condition": ("{expr}", "{expr}"),
}


def _default_message(d: AlarmDef, point_id: str | None, code: int | None) -> Message:
    """A plain message for a definition that gave none, so the console never shows a blank."""
    label = d.id if point_id is None else point_id.split("/", 1)[1].replace("/", ".")
    zh, en = _DEFAULT_TEXT[d.kind]
    fields = {"p": label, "sp": d.setpoint or 0.0, "code": code, "after": d.after_s or 0.0, "expr": d.expr}
    return Message(zh=zh.format(**fields), en=en.format(**fields))


def _device(point_id: str | None) -> str | None:
    return None if point_id is None else point_id.split("/")[1]
