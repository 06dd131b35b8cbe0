"""A heat meter: flow and the supply/return temperature difference give the heat power."""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel, clamp

__all__ = ["HeatMeterModel"]

# Specific heat of water × density, in kWh per m³ per kelvin.
_KWH_PER_M3_K = 1.163


class HeatMeterModel(DeviceModel):
    family = "heat_meter"
    scenarios = {
        "abnormal_consumption": "flow jumps to factor× normal (default 4×): a bypass or a leak",
        "sensor_fault": "the return temperature sensor fails (reads -20 °C, fault flag set)",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.flow_m3h = self._param("flow_m3h", 2.0)
        self.supply_c = self._param("supply_c", 55.0)
        self.return_c = self._param("return_c", 42.0)
        self.energy_kwh = self._param("energy_kwh", 8000.0 + self._rng.uniform(0, 2000))
        self.volume_m3 = self._param("volume_m3", 900.0)
        self._step(0.0)

    def _inject_abnormal_consumption(self, params: dict[str, Any]) -> None:
        pass

    def _inject_sensor_fault(self, params: dict[str, Any]) -> None:
        pass

    def _step(self, dt_s: float) -> None:
        factor = 1.0
        if "abnormal_consumption" in self.active:
            factor = float(self.active["abnormal_consumption"].get("factor", 4.0))
        flow = self.flow_m3h * factor * (1.0 + self._noise(0.03))
        supply = self.supply_c + self._noise(0.2)
        ret = self.return_c + self._noise(0.2)
        delta_k = clamp(supply - ret, 0.0, 100.0)
        power_kw = flow * delta_k * _KWH_PER_M3_K
        self.energy_kwh += power_kw * dt_s / 3600.0
        self.volume_m3 += flow * dt_s / 3600.0
        fault = "sensor_fault" in self.active
        v = self._values
        v["energy_kwh"] = round(self.energy_kwh, 1)
        v["volume_m3"] = round(self.volume_m3, 2)
        v["power_kw"] = round(power_kw, 2)
        v["flow_m3h"] = round(flow, 3)
        v["supply_temp_c"] = round(supply, 1)
        v["return_temp_c"] = -20.0 if fault else round(ret, 1)
        v["sensor_fault"] = fault

    def _write(self, point_id: str, value: Value) -> bool:
        return False
