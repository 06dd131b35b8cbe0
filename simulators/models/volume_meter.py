"""Shared physics of the volume meters (water, gas): a total that integrates a demand curve."""

from __future__ import annotations

import math
from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel

__all__ = ["VolumeMeterModel", "usage_factor"]


def usage_factor(hour: float) -> float:
    """Relative household use of water or gas over a day: meals and showers, quiet at night."""
    peaks = (7.0, 12.0, 19.0)
    return 0.05 + 0.95 * max(math.exp(-(((hour - p) / 1.2) ** 2)) for p in peaks)


class VolumeMeterModel(DeviceModel):
    """A cumulative volume meter with a remote shut-off valve."""

    scenarios = {
        "abnormal_consumption": "a constant flow of flow_m3h (default 3× peak) day and night: a leak",
        "meter_fault": "the meter reports a sensor fault",
        "battery_low": "the meter battery falls to 3.0 V",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.peak_m3h = self._param("peak_m3h", 1.5)
        self.hour = self._param("start_hour", 19.0)
        self.total_m3 = self._param("total_m3", 1000.0 + self._rng.uniform(0, 500))
        self.flow_m3h = 0.0
        self.valve_open = True
        self.battery_v = self._param("battery_v", 3.6)
        self.fault = False
        self._step(0.0)

    def _inject_abnormal_consumption(self, params: dict[str, Any]) -> None:
        pass

    def _inject_meter_fault(self, params: dict[str, Any]) -> None:
        self.fault = True

    def _clear_meter_fault(self, params: dict[str, Any]) -> None:
        self.fault = False

    def _inject_battery_low(self, params: dict[str, Any]) -> None:
        self.battery_v = float(params.get("battery_v", 3.0))

    def _clear_battery_low(self, params: dict[str, Any]) -> None:
        self.battery_v = 3.6

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id == "valve_open":
            self.valve_open = bool(value)
            self._step(0.0)
            return True
        return False

    def _step(self, dt_s: float) -> None:
        self.hour = (self.hour + dt_s / 3600.0) % 24.0
        if not self.valve_open:
            self.flow_m3h = 0.0
        elif "abnormal_consumption" in self.active:
            self.flow_m3h = float(self.active["abnormal_consumption"].get("flow_m3h", 3 * self.peak_m3h))
        else:
            self.flow_m3h = self.peak_m3h * usage_factor(self.hour) * (1.0 + self._noise(0.05))
        self.total_m3 += self.flow_m3h * dt_s / 3600.0
        # Lithium cells in these meters last years; a small drain shows the trend in a long demo.
        self.battery_v = max(2.8, self.battery_v - dt_s * 1e-8)
        v = self._values
        v["total_m3"] = round(self.total_m3, 3)
        v["flow_m3h"] = round(self.flow_m3h, 3)
        v["valve_open"] = self.valve_open
        v["battery_v"] = round(self.battery_v, 2)
        v["meter_fault"] = self.fault
        v["status"] = (
            (1 if self.fault else 0) | (2 if self.battery_v < 3.2 else 0) | (4 if not self.valve_open else 0)
        )
