"""Alarm flood (site) and chattering (per alarm) detection, per ISA-18.2's performance targets.

A flood starts when more than ``start_above`` alarms were raised within ``window_s`` (10 in
10 minutes) and ends when fewer than ``end_below`` (5) remain in the window. An alarm chatters
when it made more than ``chatter_above`` process transitions within ``chatter_window_s`` (5 in
5 minutes) and stops chattering at ``chatter_end_at_or_below``. The windows are bounded deques.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rules.definitions import FloodConfig

__all__ = ["FloodChange", "FloodDetector"]

# A window never needs more entries than the threshold that decides it, plus slack; the cap keeps
# memory bounded even under a storm of transitions.
_CAP_SLACK = 64


@dataclass(frozen=True, slots=True)
class FloodChange:
    kind: str  # flood_started, flood_ended, chatter_started, chatter_ended
    key: str | None  # the chattering alarm, for chatter changes
    count: int


@dataclass(slots=True)
class FloodDetector:
    config: FloodConfig
    raises: deque[float] = field(default_factory=deque)
    transitions: dict[str, deque[float]] = field(default_factory=dict)
    flooding: bool = False
    chattering: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(
        default_factory=lambda: {"raised": 0, "floods": 0, "chatter_episodes": 0, "transitions": 0}
    )

    def record_raise(self, now: float) -> list[FloodChange]:
        self.counters["raised"] += 1
        self.raises.append(now)
        while len(self.raises) > self.config.start_above + _CAP_SLACK:
            self.raises.popleft()
        return self._flood(now)

    def record_transition(self, key: str, now: float) -> list[FloodChange]:
        self.counters["transitions"] += 1
        window = self.transitions.get(key)
        if window is None:
            window = self.transitions[key] = deque()
        window.append(now)
        while len(window) > self.config.chatter_above + _CAP_SLACK:
            window.popleft()
        return self._chatter(key, window, now)

    def expire(self, now: float) -> list[FloodChange]:
        """Let old entries fall out of the windows (call on every tick)."""
        out = self._flood(now)
        for key in sorted(self.transitions):
            out.extend(self._chatter(key, self.transitions[key], now))
            if not self.transitions[key]:
                del self.transitions[key]
        return out

    def _flood(self, now: float) -> list[FloodChange]:
        _trim(self.raises, now - self.config.window_s)
        n = len(self.raises)
        if not self.flooding and n > self.config.start_above:
            self.flooding = True
            self.counters["floods"] += 1
            return [FloodChange("flood_started", None, n)]
        if self.flooding and n < self.config.end_below:
            self.flooding = False
            return [FloodChange("flood_ended", None, n)]
        return []

    def _chatter(self, key: str, window: deque[float], now: float) -> list[FloodChange]:
        _trim(window, now - self.config.chatter_window_s)
        n = len(window)
        if key not in self.chattering and n > self.config.chatter_above:
            self.chattering.add(key)
            self.counters["chatter_episodes"] += 1
            return [FloodChange("chatter_started", key, n)]
        if key in self.chattering and n <= self.config.chatter_end_at_or_below:
            self.chattering.discard(key)
            return [FloodChange("chatter_ended", key, n)]
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "raises": list(self.raises),
            "transitions": {k: list(v) for k, v in self.transitions.items()},
            "flooding": self.flooding,
            "chattering": sorted(self.chattering),
            "counters": dict(self.counters),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.raises = deque(float(t) for t in data.get("raises", []))
        self.transitions = {k: deque(float(t) for t in v) for k, v in data.get("transitions", {}).items()}
        self.flooding = bool(data.get("flooding", False))
        self.chattering = set(data.get("chattering", []))
        self.counters.update({k: int(v) for k, v in data.get("counters", {}).items()})


def _trim(window: deque[float], oldest: float) -> None:
    while window and window[0] <= oldest:
        window.popleft()
