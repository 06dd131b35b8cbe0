"""An access-controlled door: magnetic lock, door contact, forced-open and held-open detection."""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel

__all__ = ["AccessDoorModel"]


class AccessDoorModel(DeviceModel):
    family = "access_door"
    scenarios = {
        "forced_open": "the door is opened while locked (forced entry)",
        "held_open": "the door is propped open past the held-open time",
        "passage": "someone badges in: the lock releases, the door opens and closes again",
        "lock_fault": "the lock reports a fault (power or magnet)",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.held_open_after_s = self._param("held_open_after_s", 30.0)
        self.release_cmd = False
        self.door_open = False
        self.open_s = 0.0
        self.forced = False
        self.passage_s: float | None = None
        self._step(0.0)

    def _inject_forced_open(self, params: dict[str, Any]) -> None:
        self.door_open, self.open_s = True, 0.0
        self.forced = not self.release_cmd

    def _clear_forced_open(self, params: dict[str, Any]) -> None:
        self.door_open, self.forced = False, False

    def _inject_held_open(self, params: dict[str, Any]) -> None:
        self.door_open, self.open_s = True, self.held_open_after_s

    def _clear_held_open(self, params: dict[str, Any]) -> None:
        self.door_open = False

    def _inject_passage(self, params: dict[str, Any]) -> None:
        self.passage_s = 0.0

    def _inject_lock_fault(self, params: dict[str, Any]) -> None:
        pass

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id == "release":
            self.release_cmd = bool(value)
            self._step(0.0)
            return True
        return False

    def _step(self, dt_s: float) -> None:
        if self.passage_s is not None:
            self.passage_s += dt_s
            self.door_open = self.passage_s < 5.0
            if not self.door_open:
                self.passage_s = None
                self.active.pop("passage", None)
        self.open_s = self.open_s + dt_s if self.door_open else 0.0
        if not self.door_open:
            self.forced = False
        badge_release = self.passage_s is not None
        locked = not (self.release_cmd or badge_release) and "lock_fault" not in self.active
        v = self._values
        v["release"] = self.release_cmd
        v["released"] = not locked
        v["locked"] = locked
        v["door_open"] = self.door_open
        v["forced_open"] = self.forced
        v["held_open"] = self.door_open and self.open_s >= self.held_open_after_s
        v["lock_fault"] = "lock_fault" in self.active
