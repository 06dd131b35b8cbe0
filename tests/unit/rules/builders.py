"""Small builders shared by the rules tests: sites of a few points, engines, samples."""

from __future__ import annotations

from typing import Any

from core.model import Quality, Reason, Sample, Value
from rules.compiled import CompiledRules, PointRules, compile_rules
from rules.evaluator import RulesEngine

SITE = "s"
T0 = 1_767_225_600.0


def pid(ref: str) -> str:
    return f"{SITE}/{ref.replace('.', '/', 1)}"


def compiled(points: dict[str, Any], rules: dict[str, Any] | None = None) -> CompiledRules:
    """``points``: {"dev.pt": [alarm dicts]} or {"dev.pt": {"zone": "2", "alarms": [...]}}."""
    out = []
    for ref, spec in points.items():
        if isinstance(spec, dict):
            out.append(PointRules(pid(ref), spec.get("zone"), spec.get("alarms", [])))
        else:
            out.append(PointRules(pid(ref), None, spec))
    return compile_rules(SITE, out, rules)


def engine(points: dict[str, Any], rules: dict[str, Any] | None = None, now: float = T0) -> RulesEngine:
    return RulesEngine(compiled(points, rules), now)


def good(ref: str, value: Value, t: float) -> Sample:
    return Sample(pid(ref), value, Quality.GOOD, T0 + t)


def bad(ref: str, t: float) -> Sample:
    return Sample(pid(ref), None, Quality.BAD, T0 + t, Reason.COMM_FAILURE)


def kinds(eng: RulesEngine) -> list[tuple[str, str]]:
    return [(e.kind, e.source) for e in eng.drain().events]
