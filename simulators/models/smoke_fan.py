"""A smoke exhaust fan with its motorised vent: both answer commands after a travel delay."""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel

__all__ = ["SmokeFanModel"]


class SmokeFanModel(DeviceModel):
    family = "smoke_fan"
    scenarios = {
        "fan_fault": "the fan motor trips (overload); it stops and reports a fault",
        "manual_mode": "the local panel switch is turned to manual",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.fan_delay_s = self._param("fan_start_delay_s", 3.0)
        self.vent_delay_s = self._param("vent_travel_s", 2.0)
        self.fan_cmd = False
        self.vent_cmd = False
        self.fan_running = False
        self.vent_open = False
        self.fan_timer_s = 0.0
        self.vent_timer_s = 0.0
        self._step(0.0)

    def _inject_fan_fault(self, params: dict[str, Any]) -> None:
        self.fan_running = False

    def _inject_manual_mode(self, params: dict[str, Any]) -> None:
        pass

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id == "fan_start":
            self.fan_cmd, self.fan_timer_s = bool(value), 0.0
        elif point_id == "vent_open_cmd":
            self.vent_cmd, self.vent_timer_s = bool(value), 0.0
        else:
            return False
        self._step(0.0)
        return True

    def _step(self, dt_s: float) -> None:
        fault = "fan_fault" in self.active
        if self.fan_cmd != self.fan_running and not fault:
            self.fan_timer_s += dt_s
            # A fan spins up slowly but stops at once when told to.
            if not self.fan_cmd or self.fan_timer_s >= self.fan_delay_s:
                self.fan_running = self.fan_cmd
        if fault:
            self.fan_running = False
        if self.vent_cmd != self.vent_open:
            self.vent_timer_s += dt_s
            if self.vent_timer_s >= self.vent_delay_s:
                self.vent_open = self.vent_cmd
        v = self._values
        v["fan_start"] = self.fan_cmd
        v["fan_running"] = self.fan_running
        v["fan_fault"] = fault
        v["vent_open_cmd"] = self.vent_cmd
        v["vent_open"] = self.vent_open
        v["manual_mode"] = "manual_mode" in self.active
        v["fan_current_a"] = round(18.5 + self._noise(0.3), 1) if self.fan_running else 0.0
