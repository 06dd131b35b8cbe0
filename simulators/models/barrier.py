"""A vehicle barrier: the arm opens on command or for a vehicle and closes after it has passed."""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel

__all__ = ["BarrierModel"]

_CLOSED, _OPENING, _OPEN, _CLOSING = 0, 1, 2, 3
_TRAVEL_S = 3.0


class BarrierModel(DeviceModel):
    family = "barrier"
    scenarios = {
        "vehicle": "a vehicle arrives: the arm opens, the vehicle passes, the arm closes",
        "fault": "the barrier motor faults; the arm stays where it is",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.position = _CLOSED
        self.travel_s = 0.0
        self.open_cmd = False
        self.vehicle_s: float | None = None
        self.passages = int(self._param("passages", 0))
        self._step(0.0)

    def _inject_vehicle(self, params: dict[str, Any]) -> None:
        self.vehicle_s = 0.0

    def _inject_fault(self, params: dict[str, Any]) -> None:
        pass

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id == "open_cmd":
            self.open_cmd = bool(value)
            self._step(0.0)
            return True
        return False

    def _step(self, dt_s: float) -> None:
        if self.vehicle_s is not None:
            self.vehicle_s += dt_s
            if self.vehicle_s >= 8.0:
                self.vehicle_s = None
                self.passages += 1
                self.active.pop("vehicle", None)
        want_open = self.open_cmd or self.vehicle_s is not None
        if "fault" not in self.active:
            if want_open and self.position in (_CLOSED, _CLOSING):
                self.position, self.travel_s = _OPENING, 0.0
            elif not want_open and self.position in (_OPEN, _OPENING):
                self.position, self.travel_s = _CLOSING, 0.0
            elif self.position in (_OPENING, _CLOSING):
                self.travel_s += dt_s
                if self.travel_s >= _TRAVEL_S:
                    self.position = _OPEN if self.position == _OPENING else _CLOSED
        v = self._values
        v["position"] = self.position
        v["is_open"] = self.position == _OPEN
        v["open_cmd"] = self.open_cmd
        v["vehicle_present"] = self.vehicle_s is not None and self.vehicle_s < 6.0
        v["fault"] = "fault" in self.active
        v["passages"] = self.passages
