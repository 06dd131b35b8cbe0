"""A secondary water supply tank (二次供水) with booster pumps and water-quality analysers.

The level follows inflow through the float-controlled inlet valve minus the estate's demand,
which follows a daily curve; the duty booster pump runs while there is demand. Water quality
drifts slowly around drinking-water values.
"""

from __future__ import annotations

import math
from typing import Any

from simulators.models.base import DeviceModel, clamp

__all__ = ["WaterTankModel", "demand_factor"]


def demand_factor(hour: float) -> float:
    """Relative domestic water demand over a day: morning and evening peaks, quiet nights."""
    morning = math.exp(-(((hour - 7.5) / 1.5) ** 2))
    evening = math.exp(-(((hour - 19.5) / 2.0) ** 2))
    return 0.15 + 0.85 * max(morning, evening)


class WaterTankModel(DeviceModel):
    family = "water_tank"
    scenarios = {
        "tank_low": "inlet blocked: the level falls to the low-water level",
        "overflow": "inlet valve stuck open: the level rises to the overflow level",
        "freezing": "water temperature falls to freezing (unheated pump room in winter)",
        "chlorine_low": "residual chlorine falls below 0.05 mg/L",
        "turbidity_high": "turbidity rises above 1 NTU",
        "ph_abnormal": "pH leaves 6.5..8.5 (value=9.2 by default)",
        "pump_fault": "booster pump N (1 or 2) trips; the standby pump takes over",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.area_m2 = self._param("area_m2", 20.0)
        self.height_m = self._param("height_m", 3.0)
        self.high_m = self._param("inlet_close_m", 2.6)
        self.low_m = self._param("inlet_open_m", 2.2)
        self.peak_demand_m3h = self._param("peak_demand_m3h", 18.0)
        self.inlet_m3h = self._param("inlet_m3h", 30.0)
        self.hour = self._param("start_hour", 8.0)
        self.level_m = self._param("level_m", 2.4)
        self.temperature_c = self._param("temperature_c", 14.0)
        self.inlet_open = False
        self.pump_fault = [False, False]
        self.duty_pump = 0
        self.turbidity_ntu = 0.3
        self.chlorine_mgl = 0.3
        self.ph = 7.2
        self.conductivity_us_cm = 420.0
        self.colour_pcu = 3.0
        self._step(0.0)

    def _inject_tank_low(self, params: dict[str, Any]) -> None:
        self.level_m = float(params.get("level_m", 0.3))

    def _inject_overflow(self, params: dict[str, Any]) -> None:
        self.level_m = float(params.get("level_m", self.height_m - 0.05))

    def _clear_overflow(self, params: dict[str, Any]) -> None:
        self.level_m = min(self.level_m, self.high_m)

    def _clear_tank_low(self, params: dict[str, Any]) -> None:
        self.level_m = max(self.level_m, self.low_m)

    def _inject_freezing(self, params: dict[str, Any]) -> None:
        self.temperature_c = float(params.get("temperature_c", 0.5))

    def _clear_freezing(self, params: dict[str, Any]) -> None:
        self.temperature_c = 14.0

    def _inject_chlorine_low(self, params: dict[str, Any]) -> None:
        self.chlorine_mgl = float(params.get("value", 0.02))

    def _clear_chlorine_low(self, params: dict[str, Any]) -> None:
        self.chlorine_mgl = 0.3

    def _inject_turbidity_high(self, params: dict[str, Any]) -> None:
        self.turbidity_ntu = float(params.get("value", 2.5))

    def _clear_turbidity_high(self, params: dict[str, Any]) -> None:
        self.turbidity_ntu = 0.3

    def _inject_ph_abnormal(self, params: dict[str, Any]) -> None:
        self.ph = float(params.get("value", 9.2))

    def _clear_ph_abnormal(self, params: dict[str, Any]) -> None:
        self.ph = 7.2

    def _inject_pump_fault(self, params: dict[str, Any]) -> None:
        index = int(clamp(int(params.get("pump", 1)), 1, 2)) - 1
        self.pump_fault[index] = True
        if self.duty_pump == index:
            self.duty_pump = 1 - index

    def _clear_pump_fault(self, params: dict[str, Any]) -> None:
        self.pump_fault = [False, False]

    def _step(self, dt_s: float) -> None:
        self.hour = (self.hour + dt_s / 3600.0) % 24.0
        demand_m3h = self.peak_demand_m3h * demand_factor(self.hour)
        pumping = not all(self.pump_fault) and self.level_m > 0.2
        if "tank_low" in self.active:
            self.inlet_open = False
        elif "overflow" in self.active or self.level_m <= self.low_m:
            self.inlet_open = True
        elif self.level_m >= self.high_m:
            self.inlet_open = False
        inflow = self.inlet_m3h if self.inlet_open else 0.0
        outflow = demand_m3h if pumping else 0.0
        self.level_m += (inflow - outflow) / 3600.0 * dt_s / self.area_m2
        floor_m = float(self.active["tank_low"].get("level_m", 0.3)) if "tank_low" in self.active else 0.0
        self.level_m = clamp(self.level_m, floor_m, self.height_m)
        v = self._values
        v["level_m"] = round(self.level_m, 2)
        v["level_decimals"] = 2
        v["water_temp_c"] = round(self.temperature_c, 1)
        v["inlet_valve_open"] = self.inlet_open
        for i in (0, 1):
            v[f"pump{i + 1}_running"] = pumping and self.duty_pump == i and not self.pump_fault[i]
            v[f"pump{i + 1}_fault"] = self.pump_fault[i]
        v["outlet_pressure_mpa"] = round(0.42 if pumping else 0.05, 3)
        v["turbidity_ntu"] = round(self.turbidity_ntu + self._noise(0.01), 3)
        v["residual_chlorine_mgl"] = round(self.chlorine_mgl, 3)
        v["ph"] = round(self.ph + self._noise(0.01), 2)
        v["conductivity_us_cm"] = round(self.conductivity_us_cm + self._noise(2.0), 1)
        v["colour_pcu"] = round(self.colour_pcu, 1)
        v["low_level"] = self.level_m <= 0.5
        v["overflow"] = self.level_m >= self.height_m - 0.1
