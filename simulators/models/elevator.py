"""An elevator: the car answers calls, travels between floors and cycles its doors.

Motion is a small state machine (idle → door closing → moving → arriving → door opening → door
open → door closing → idle); calls come from the gateway's ``car_call`` write or, with
``auto_calls``, from passengers at a random pace. Fault, event and alarm codes follow the
GB/T 24476-style numbering in DOMAIN.md.
"""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel

__all__ = ["ElevatorModel"]

_DOOR_CLOSED, _DOOR_OPEN, _DOOR_CLOSING, _DOOR_OPENING = 0, 1, 2, 3
_STOP, _UP, _DOWN = 0, 1, 2
_DOOR_TIME_S = 2.0
_DWELL_S = 4.0
_FLOOR_TIME_S = 2.0  # 3 m per floor at 1.5 m/s

_FAULT_OUTSIDE_DOOR_ZONE = 4
_FAULT_MOVING_DOOR_OPEN = 5
_EVENT_AUTOMATIC = 40
_EVENT_OUT_OF_SERVICE = 42
_EVENT_FIRE_RECALL = 44
_ALARM_TRAPPED = 93


class ElevatorModel(DeviceModel):
    family = "elevator"
    scenarios = {
        "trapped": "the car stops between floors with a passenger inside (fault 4, alarm 93)",
        "door_open_moving": "the car moves with its door open (fault 5, UCMP)",
        "fire_recall": "fire recall: the car returns to the ground floor and parks open (event 44)",
        "out_of_service": "the car is taken out of service (event 42)",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.floors = int(self._param("floors", 18))
        self.ground = int(self._param("ground_floor", 1))
        self.lowest = int(self._param("lowest_floor", -1))
        self.auto_calls = bool(self._params.get("auto_calls", False))
        self.position = float(self.ground)  # floors, fractional while moving
        self.target: int | None = None
        self.door = _DOOR_CLOSED
        self.phase = "idle"
        self.phase_s = 0.0
        self.occupied = False
        self.fault_code = 0
        self.event_code = _EVENT_AUTOMATIC
        self.alarm_code = 0
        self.trapped = False
        self._step(0.0)

    # -- scenarios

    def _inject_trapped(self, params: dict[str, Any]) -> None:
        if self.target is None or self.phase != "moving":
            floor = int(round(self.position))
            self.target = floor + 1 if floor < self.floors else floor - 1
        self.position = (int(self.position) + 0.5) if self.position % 1 == 0 else self.position
        self.phase, self.door, self.occupied, self.trapped = "stopped", _DOOR_CLOSED, True, True
        self.fault_code, self.alarm_code = _FAULT_OUTSIDE_DOOR_ZONE, _ALARM_TRAPPED

    def _clear_trapped(self, params: dict[str, Any]) -> None:
        self.trapped, self.fault_code, self.alarm_code = False, 0, 0
        self.position = float(round(self.position))
        self.phase, self.phase_s, self.target = "door_opening", 0.0, None

    def _inject_door_open_moving(self, params: dict[str, Any]) -> None:
        if self.phase != "moving":
            floor = int(round(self.position))
            self.target = floor + 1 if floor < self.floors else floor - 1
            self.phase, self.phase_s = "moving", 0.0
        self.door, self.fault_code = _DOOR_OPEN, _FAULT_MOVING_DOOR_OPEN

    def _clear_door_open_moving(self, params: dict[str, Any]) -> None:
        self.door, self.fault_code = _DOOR_CLOSED, 0

    def _inject_fire_recall(self, params: dict[str, Any]) -> None:
        self.event_code = _EVENT_FIRE_RECALL
        self._call(self.ground)

    def _clear_fire_recall(self, params: dict[str, Any]) -> None:
        self.event_code = _EVENT_AUTOMATIC

    def _inject_out_of_service(self, params: dict[str, Any]) -> None:
        self.event_code = _EVENT_OUT_OF_SERVICE

    def _clear_out_of_service(self, params: dict[str, Any]) -> None:
        self.event_code = _EVENT_AUTOMATIC

    # -- behaviour

    def _call(self, floor: int) -> None:
        floor = max(self.lowest, min(self.floors, floor))
        if "trapped" in self.active:
            return
        if floor == round(self.position) and self.phase in ("idle", "door_open", "door_opening"):
            self.phase, self.phase_s = "door_opening", 0.0
            return
        self.target = floor
        if self.phase in ("idle", "door_open", "door_opening"):
            self.phase, self.phase_s = "door_closing", 0.0

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id == "car_call":
            if value is not None and int(value) != 0:
                self._call(int(value))
            self._step(0.0)
            return True
        return False

    def _advance(self, dt_s: float) -> None:
        self.phase_s += dt_s
        if self.phase == "idle":
            if self.target is not None:
                self.phase, self.phase_s = "door_closing", 0.0
            elif self.auto_calls and self._rng.random() < dt_s / 20.0:
                self._call(self._rng.randint(self.lowest, self.floors))
        elif self.phase == "door_closing":
            self.door = _DOOR_CLOSING
            if self.phase_s >= _DOOR_TIME_S:
                self.door, self.phase, self.phase_s = _DOOR_CLOSED, "moving" if self.target else "idle", 0.0
        elif self.phase == "moving" and self.target is not None:
            step = dt_s / _FLOOR_TIME_S
            if abs(self.target - self.position) <= step:
                self.position, self.target = float(self.target), None
                self.phase, self.phase_s = "door_opening", 0.0
                self.occupied = self._rng.random() < 0.6
            else:
                self.position += step if self.target > self.position else -step
        elif self.phase == "door_opening":
            self.door = _DOOR_OPENING
            if self.phase_s >= _DOOR_TIME_S:
                self.door, self.phase, self.phase_s = _DOOR_OPEN, "door_open", 0.0
        elif self.phase == "door_open":
            self.door = _DOOR_OPEN
            parked = "fire_recall" in self.active and round(self.position) == self.ground
            if self.phase_s >= _DWELL_S and not parked:
                self.phase, self.phase_s = "door_closing", 0.0

    def _step(self, dt_s: float) -> None:
        # Large steps are cut into small ones so that no floor or door phase is skipped.
        remaining = dt_s
        while remaining > 0 and self.phase != "stopped":
            chunk = min(remaining, 0.5)
            self._advance(chunk)
            remaining -= chunk
        moving = self.phase == "moving" and self.target is not None
        direction = _STOP
        if moving and self.target is not None:
            direction = _UP if self.target > self.position else _DOWN
        if "door_open_moving" in self.active:
            self.door = _DOOR_OPEN
        v = self._values
        v["floor"] = int(self.position) if self.position >= 0 else -int(-self.position + 0.999)
        v["direction"] = direction
        v["door_state"] = self.door
        v["levelled"] = self.position % 1 == 0 and not moving
        v["running"] = moving
        v["occupied"] = self.occupied or self.trapped
        v["fault_code"] = self.fault_code
        v["event_code"] = self.event_code
        v["alarm_code"] = self.alarm_code
        v["trapped"] = self.trapped
        v["in_service"] = self.event_code == _EVENT_AUTOMATIC and self.fault_code == 0
        v["fire_recall"] = self.event_code == _EVENT_FIRE_RECALL
        v["car_call"] = self.target or 0
        v["speed_mps"] = 1.5 if moving else 0.0
