"""An emergency broadcast switch: normal background music or emergency broadcast, per zone."""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel

__all__ = ["BroadcastModel"]


class BroadcastModel(DeviceModel):
    family = "broadcast"
    scenarios = {
        "amplifier_fault": "the power amplifier faults",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.zones = int(self._param("zones", 8))
        self.cut_in_delay_s = self._param("cut_in_delay_s", 0.3)
        self.command = False
        self.active_zones = False
        self.timer_s = 0.0
        self._step(0.0)

    def _inject_amplifier_fault(self, params: dict[str, Any]) -> None:
        pass

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id == "emergency_mode":
            self.command, self.timer_s = bool(value), 0.0
            self._step(0.0)
            return True
        return False

    def _step(self, dt_s: float) -> None:
        if self.command != self.active_zones:
            self.timer_s += dt_s
            if self.timer_s >= self.cut_in_delay_s or not self.command:
                self.active_zones = self.command
        v = self._values
        v["emergency_mode"] = self.command
        v["emergency_active"] = self.active_zones
        for zone in range(1, self.zones + 1):
            v[f"zone{zone}_active"] = self.active_zones
        v["amplifier_fault"] = "amplifier_fault" in self.active
