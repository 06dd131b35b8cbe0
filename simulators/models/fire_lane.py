"""A geomagnetic occupancy sensor in a fire lane: a parked vehicle disturbs the magnetic field."""

from __future__ import annotations

from typing import Any

from simulators.models.base import DeviceModel

__all__ = ["FireLaneModel"]


class FireLaneModel(DeviceModel):
    family = "fire_lane"
    scenarios = {
        "blocked": "a vehicle parks on the sensor (the fire lane is blocked)",
        "battery_low": "the battery falls to battery_v (default 3.1 V)",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.baseline_ut = self._param("baseline_ut", 48.0)
        self.battery_v = self._param("battery_v", 3.6)
        self.occupied_s = 0.0
        self._step(0.0)

    def _inject_blocked(self, params: dict[str, Any]) -> None:
        self.occupied_s = 0.0

    def _inject_battery_low(self, params: dict[str, Any]) -> None:
        self.battery_v = float(params.get("battery_v", 3.1))

    def _clear_battery_low(self, params: dict[str, Any]) -> None:
        self.battery_v = 3.6

    def _step(self, dt_s: float) -> None:
        occupied = "blocked" in self.active
        self.occupied_s = self.occupied_s + dt_s if occupied else 0.0
        field = self.baseline_ut + (35.0 if occupied else 0.0) + self._noise(0.5)
        v = self._values
        v["occupied"] = occupied
        v["occupied_s"] = int(self.occupied_s)
        v["magnetic_ut"] = round(field, 1)
        v["battery_v"] = round(self.battery_v, 2)
        v["battery_low"] = self.battery_v < 3.3
