"""Drill (test) mode: a zone or the whole site under a fire drill or commissioning test.

While a drill covers an alarm's zone, every alarm raised there is *marked as drill*: its events
carry ``"drill": true`` (so the monitoring centre sees a drill, not a fire), and its transitions
count towards neither the flood nor the chattering detector. A linkage rule whose trigger reads
alarms of a drilled zone runs only if the drill allows it (``linkage=True``). A drill always has
an end time; the engine ends it on the tick that reaches it.

Pure like the rest of the engine: the caller passes ``now``; the book only returns events.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.model import Event

__all__ = ["Drill", "DrillBook"]


@dataclass(frozen=True, slots=True)
class Drill:
    zone: str | None  # None: the whole site
    until: float
    by: str
    started_at: float
    linkage: bool = False
    reason: str = ""

    @property
    def scope(self) -> str:
        return "site" if self.zone is None else f"zone:{self.zone}"

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "scope": self.scope}


@dataclass(slots=True)
class DrillBook:
    site: str = ""
    drills: dict[str, Drill] = field(default_factory=dict)  # scope → drill
    marked: set[str] = field(default_factory=set)  # alarm keys raised during a drill

    def start(
        self, zone: str | None, until: float, by: str, now: float, *, linkage: bool = False, reason: str = ""
    ) -> Event:
        if until <= now:
            raise ValueError("a drill needs an end time in the future")
        drill = Drill(zone, until, by, now, linkage, reason)
        self.drills[drill.scope] = drill
        return Event("drill.started", f"{self.site}/_drill/{drill.scope}", now, {**drill.row(), "at": now})

    def end(self, zone: str | None, by: str, now: float, why: str = "ended") -> Event | None:
        scope = "site" if zone is None else f"zone:{zone}"
        drill = self.drills.pop(scope, None)
        if drill is None:
            return None
        data = {**drill.row(), "at": now, "ended_by": by, "why": why}
        return Event("drill.ended", f"{self.site}/_drill/{scope}", now, data)

    def expire(self, now: float) -> list[Event]:
        out = []
        for scope in sorted(self.drills):
            drill = self.drills[scope]
            if drill.until <= now:
                event = self.end(drill.zone, "system", now, why="end time reached")
                if event is not None:
                    out.append(event)
        return out

    def covering(self, zone: str | None) -> Drill | None:
        """The drill that covers ``zone`` now (a zone's own drill before the site's)."""
        if zone is not None and f"zone:{zone}" in self.drills:
            return self.drills[f"zone:{zone}"]
        return self.drills.get("site")

    def covering_any(self, zones: set[str]) -> Drill | None:
        for zone in sorted(zones):
            drill = self.drills.get(f"zone:{zone}")
            if drill is not None:
                return drill
        return self.drills.get("site")

    def next_due(self) -> float | None:
        return min((d.until for d in self.drills.values()), default=None)

    def rows(self) -> list[dict[str, Any]]:
        return [self.drills[s].row() for s in sorted(self.drills)]

    def to_dict(self) -> dict[str, Any]:
        return {"drills": [asdict(d) for d in self.drills.values()], "marked": sorted(self.marked)}

    def restore(self, data: dict[str, Any]) -> None:
        for entry in data.get("drills", []):
            drill = Drill(**entry)
            self.drills[drill.scope] = drill
        self.marked = set(data.get("marked", []))
