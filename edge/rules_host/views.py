"""Read-only views of the rules runtime for the dashboard: linkage rule rows, statistics."""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Iterable
from typing import Any

import structlog

from rules import RulesEngine
from rules.linkage import Phase

__all__ = ["holding_summary", "linkage_rule_rows", "per_day", "utc_offset_s"]

_LOG = structlog.get_logger(__name__)

# the dashboard's names for the sequencer's phases (edge.alarm_api)
_PHASES = {
    Phase.IDLE.value: "idle",
    Phase.AWAIT_CONFIRM.value: "awaiting_confirm",
    Phase.RUNNING.value: "running",
    Phase.ACTIVE.value: "done",
    Phase.RESTORING.value: "restoring",
}


def linkage_rule_rows(engine: RulesEngine) -> list[dict[str, Any]]:
    """Each rule: id, name {zh, en}, mode, state, the current step and where it is in it."""
    rows = []
    for rule_id, runner in engine.linkage.items():
        st = runner.state
        seq = runner.spec.restore if st.restoring else runner.spec.steps
        step = seq[st.step] if 0 <= st.step < len(seq) else None
        rows.append(
            {
                "id": rule_id,
                "name": {"zh": runner.spec.name_zh, "en": runner.spec.name_en},
                "mode": runner.spec.mode,
                "state": _PHASES.get(st.phase, st.phase),
                "step": None if step is None else step.index,
                "step_name": None if step is None else step.name,
                "steps": len(runner.spec.steps),
                "run": st.run,
                "sequence": "restore" if st.restoring else "steps",
                "stage": st.stage,
                "held_off": st.hold,
                "zones": sorted(engine._rule_zones.get(rule_id, set())),
                "writes": [
                    {"step": s.index, "point": s.write, "value": s.value}
                    for s in runner.spec.steps
                    if s.write
                ],
            }
        )
    return rows


def per_day(counts: Iterable[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """(day, class, n) rows → [{"day": d, "fire": n, "fault": n, ...}], oldest day first."""
    days: dict[str, dict[str, Any]] = {}
    for day, klass, count in counts:
        days.setdefault(day, {"day": day})[klass] = count
    return [days[d] for d in sorted(days)]


def utc_offset_s(timezone: str, at: float) -> float:
    """The site's offset from UTC at ``at``, so that statistics count days in site time."""
    try:
        tz = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return 0.0
    offset = datetime.datetime.fromtimestamp(at, tz).utcoffset()
    return 0.0 if offset is None else offset.total_seconds()


_OK = frozenset({"written", "verified"})


def holding_summary(rule: dict[str, Any], log: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a running (or done) rule holds now, one entry per write step of its current run.

    Each entry: ``step``, ``point``, ``device``, ``value`` and ``status`` — "ok" (written or
    verified), "failed" (with ``reason``), "skipped" (with ``reason``) or "pending". ``log`` is
    the linkage log, newest first; only this run's "steps" sequence counts.
    """
    if rule.get("state") not in ("running", "done", "restoring"):
        return []
    latest: dict[int, dict[str, Any]] = {}
    for row in log:
        if row.get("rule") != rule["id"] or row.get("run") != rule.get("run"):
            continue
        if row.get("sequence") != "steps" or row.get("step") is None:
            continue
        latest.setdefault(int(row["step"]), row)  # newest first: the first seen is the latest
    out = []
    for write in rule.get("writes", []):
        found = latest.get(int(write["step"]))
        kind = None if found is None else found.get("kind")
        status = (
            "ok"
            if kind in _OK
            else "failed"
            if kind == "failed"
            else "skipped"
            if kind == "skipped"
            else "pending"
        )
        point = str(write["point"])
        out.append(
            {
                "step": write["step"],
                "point": point,
                "device": point.split("/")[1] if point.count("/") >= 2 else point,
                "value": write["value"],
                "status": status,
                "reason": (found or {}).get("detail") or "",
            }
        )
    return out
