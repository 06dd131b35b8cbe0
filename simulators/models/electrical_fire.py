"""An electrical fire monitor (电气火灾监控): residual current and cable temperature channels."""

from __future__ import annotations

from typing import Any

from simulators.models.base import DeviceModel

__all__ = ["ElectricalFireModel"]

_CHANNELS = 4


class ElectricalFireModel(DeviceModel):
    family = "electrical_fire"
    scenarios = {
        "leakage_high": "residual current on channel N rises to ma (default 650 mA)",
        "overheat": "cable temperature on channel N rises to temperature_c (default 85 °C)",
        "sensor_fault": "a sensor on channel N is disconnected",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.leakage_ma = [float(self._rng.randint(20, 80)) for _ in range(_CHANNELS)]
        self.temp_c = [28.0 + self._rng.uniform(0, 4) for _ in range(_CHANNELS)]
        self._step(0.0)

    @staticmethod
    def _channel(params: dict[str, Any]) -> int:
        return max(1, min(_CHANNELS, int(params.get("channel", 1)))) - 1

    def _inject_leakage_high(self, params: dict[str, Any]) -> None:
        pass

    def _inject_overheat(self, params: dict[str, Any]) -> None:
        pass

    def _inject_sensor_fault(self, params: dict[str, Any]) -> None:
        pass

    def _step(self, dt_s: float) -> None:
        leak_ch = self._channel(self.active["leakage_high"]) if "leakage_high" in self.active else None
        hot_ch = self._channel(self.active["overheat"]) if "overheat" in self.active else None
        bad_ch = self._channel(self.active["sensor_fault"]) if "sensor_fault" in self.active else None
        status = 0
        v = self._values
        for i in range(_CHANNELS):
            leak = self.leakage_ma[i] + self._noise(2.0)
            temp = self.temp_c[i] + self._noise(0.1)
            if i == leak_ch:
                leak = float(self.active["leakage_high"].get("ma", 650.0))
            if i == hot_ch:
                temp = float(self.active["overheat"].get("temperature_c", 85.0))
            if i == bad_ch:
                status |= 1 << (8 + i)
            if leak >= 500.0:
                status |= 1 << i
            if temp >= 70.0:
                status |= 1 << (4 + i)
            v[f"leakage_ch{i + 1}_ma"] = max(0, round(leak))
            v[f"cable_temp_ch{i + 1}_c"] = round(temp, 1)
        v["alarm_status"] = status
        v["leakage_alarm"] = bool(status & 0x000F)
        v["temperature_alarm"] = bool(status & 0x00F0)
        v["sensor_fault"] = bool(status & 0x0F00)
