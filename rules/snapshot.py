"""Serialise and restore the complete state of a ``RulesEngine``.

The snapshot is a plain dict of str/int/float/bool/None, lists and str-keyed dicts, so it goes
into msgpack or JSON unchanged; the daemon stores it in SQLite after every batch of transitions.
Every timer is an absolute wall time, so a restart neither loses nor restarts a delay. After
``restore`` nothing is re-raised: the alarms come back with their raw condition, their ISA state
(acknowledgement, latch, shelving, suppression, service) and their pending delays.

Entries for alarms or rules that no longer exist in the configuration are dropped; new ones
start from normal.
"""

from __future__ import annotations

from typing import Any

import structlog

from rules.alarm_state import AlarmState
from rules.compiled import CompiledRules
from rules.evaluator import RulesEngine

__all__ = ["SNAPSHOT_VERSION", "restore", "snapshot"]

_LOG = structlog.get_logger(__name__)
SNAPSHOT_VERSION = 1


def snapshot(engine: RulesEngine) -> dict[str, Any]:
    alarms: dict[str, Any] = {}
    for key, a in engine._alarm_runtime().items():
        alarms[key] = {
            "state": a.state.to_dict(),
            "raw": a.raw,
            "pending_at": a.pending_at,
            "prev_v": a.prev_v,
            "prev_t": a.prev_t,
        }
    return {
        "version": SNAPSHOT_VERSION,
        "site": engine.rules.site,
        "now": engine.env.now,
        "alarms": alarms,
        "values": dict(engine.env.values),
        "held": dict(engine.env.held),
        "watches": {w.expr.name: w.last for w in engine._watches()},
        "last_good": dict(engine._last_good),
        "linkage": {rid: r.snapshot() for rid, r in engine.linkage.items()},
        "overridden": dict(engine.io.overridden),
        "flood": engine.flood.to_dict(),
        "drills": engine.drills.to_dict(),
        "next_due": engine.next_due(),
    }


def restore(rules: CompiledRules, data: dict[str, Any], now: float) -> RulesEngine:
    """A new engine for ``rules`` in the state ``data`` describes, as of ``now``."""
    if data.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"unknown rules snapshot version {data.get('version')!r}")
    engine = RulesEngine(rules, now)
    runtime = engine._alarm_runtime()
    dropped = 0
    for key, entry in data.get("alarms", {}).items():
        a = runtime.get(key)
        if a is None:
            dropped += 1
            continue
        a.state = AlarmState.from_dict(entry["state"])
        a.raw = bool(entry["raw"])
        a.pending_at = entry.get("pending_at")
        a.prev_v = entry.get("prev_v")
        a.prev_t = entry.get("prev_t")
    engine.env.values.update({k: v for k, v in data.get("values", {}).items() if k in rules.scope.points})
    engine.env.held.update(data.get("held", {}))
    watches = data.get("watches", {})
    for w in engine._watches():
        if w.expr.name in watches:
            w.last = watches[w.expr.name]
    for pid, ts in data.get("last_good", {}).items():
        if pid in engine._last_good:
            engine._last_good[pid] = float(ts)
    for rid, state in data.get("linkage", {}).items():
        runner = engine.linkage.get(rid)
        if runner is not None:
            runner.restore_state(state)
    engine.io.overridden.update(data.get("overridden", {}))
    engine.flood.restore(data.get("flood", {}))
    engine.drills.restore(data.get("drills", {}))
    engine.env.now = float(data.get("now", now))
    engine._after_restore(now, data.get("next_due"))
    if dropped:
        _LOG.info("rules snapshot had alarms no longer configured", dropped=dropped)
    return engine
