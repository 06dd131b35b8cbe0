"""What the LAN dashboard needs of the running alarm and linkage rules, as a small protocol.

``edge.rules_host.runtime.RulesRuntime`` implements it inside the daemon; the dashboard
(``edge.dashboard``) depends only on this module, so either side can be tested alone.

Alarm rows are plain dicts (JSON-ready) with at least these keys, as produced by
``rules.RulesEngine.alarm_table()``::

    key            "site/device/point/alarm_id" (enum codes: ".../id.CODE"; site rules: "site/_site/id")
    state          ISA-18.2 state: "unacked" | "acked" | "rtn_unacked" | "latched" | "shelved" |
                   "suppressed" | "out_of_service" (exact strings: see rules.alarm_state)
    unacked        bool
    priority       "critical" | "high" | "medium" | "low"
    class          "fire" | "fault" | "supervisory" | ... (the Chinese 火警/故障/监管 classes)
    message        {"zh": str, "en": str}
    point          point id or None
    zone           zone or None
    value          the value that raised it
    raised_at      wall time (s) or None
    shelved_until  wall time (s) or None
    drill          True when raised while a drill covered its zone (rules.drill)

History rows (one per transition, newest first) have: ``id``, ``ts``, ``key``, ``transition``
(e.g. "raised", "acked", "cleared", "shelved"), ``by`` (user or "system"), ``priority``,
``class``, ``message`` {zh, en}, ``point``, ``zone``, ``value``, ``comment``.

Linkage log rows have: ``id``, ``ts``, ``rule``, ``step``, ``kind`` ("requested" | "written" |
"verified" | "failed" | "skipped" | "blocked" | "started" | "completed" | "restored" ...),
``point``, ``value``, ``detail``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["AlarmService", "AlarmUpdate"]

# Called with {"type": "alarm", "row": <alarm row or None if now normal>, "key": str,
# "transition": str} or {"type": "linkage", "row": <linkage log row>}; must not block.
AlarmUpdate = Callable[[dict[str, Any]], None]


class AlarmService(Protocol):
    def active_alarms(self) -> list[dict[str, Any]]:
        """Every alarm that is not plainly normal, most urgent first."""
        ...

    async def acknowledge(self, key: str, *, by: str, comment: str = "") -> bool:
        """False if there was nothing to acknowledge. Raises KeyError for an unknown key."""
        ...

    async def shelve(self, key: str, *, by: str, until_wall: float, reason: str) -> bool: ...

    async def unshelve(self, key: str, *, by: str) -> bool: ...

    async def reset(self, key: str, *, by: str) -> bool:
        """Reset a latched alarm (only once its condition has cleared)."""
        ...

    async def comment(self, key: str, *, by: str, text: str) -> None: ...

    async def confirm_linkage(self, rule_id: str, *, by: str) -> bool:
        """Operator confirmation for a linkage rule in 'confirm' mode."""
        ...

    async def cancel_linkage(self, rule_id: str, *, by: str) -> bool: ...

    def history(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        priority: str | None = None,
        klass: str | None = None,
        device: str | None = None,
        text: str | None = None,
        limit: int = 200,
        offset: int = 0,
        before: tuple[float, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Alarm transitions, newest first, filtered (R2.8); ``before`` is the ``(ts, id)`` of
        the last row of the previous page. Called on a worker thread (a search can take long)."""
        ...

    def statistics(self, *, since: float, until: float) -> dict[str, Any]:
        """{"per_day": [{"day": "2026-11-21", "fire": n, "fault": n, ...}], "top": [{"key", "count",
        "message"}], "counters": {...}} for the charts (R5.6)."""
        ...

    def linkage_log(self, *, device: str | None = None, limit: int = 200) -> list[dict[str, Any]]: ...

    def linkage_rules(self) -> list[dict[str, Any]]:
        """Each rule: id, name {zh, en}, mode, state ("idle" | "awaiting_confirm" | "running" |
        "done" | "restoring" ...), current step."""
        ...

    def subscribe(self, listener: AlarmUpdate) -> Callable[[], None]:
        """Call ``listener`` on every alarm transition and linkage step; returns an unsubscribe."""
        ...


# Optional, used by the dashboard when present (``edge.rules_host.runtime.RulesRuntime`` has them):
#   async manual_start_linkage(rule_id, *, by) -> bool / manual_restore_linkage(rule_id, *, by) -> bool
#   async start_drill(zone | None, *, by, until_wall, linkage=False, reason="") -> None
#   async end_drill(zone | None, *, by) -> bool;  drills() -> [{"zone", "scope", "until", "by",
#   "started_at", "linkage", "reason"}]
# and the listener also gets {"type": "drill"} when a drill starts or ends.
