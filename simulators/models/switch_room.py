"""A switch-room environment monitor: temperature, humidity, water leak and smoke."""

from __future__ import annotations

from typing import Any

from simulators.models.base import DeviceModel, clamp

__all__ = ["SwitchRoomModel"]


class SwitchRoomModel(DeviceModel):
    family = "switch_room"
    scenarios = {
        "overheat": "room temperature rises to temperature_c (default 42 °C)",
        "humidity_high": "humidity rises to pct (default 92 %RH)",
        "water_leak": "the leak rope detects water",
        "smoke": "the smoke detector alarms",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.temperature_c = self._param("temperature_c", 26.0)
        self.humidity_pct = self._param("humidity_pct", 55.0)
        self._step(0.0)

    def _inject_overheat(self, params: dict[str, Any]) -> None:
        self.temperature_c = float(params.get("temperature_c", 42.0))

    def _clear_overheat(self, params: dict[str, Any]) -> None:
        self.temperature_c = 26.0

    def _inject_humidity_high(self, params: dict[str, Any]) -> None:
        self.humidity_pct = float(params.get("pct", 92.0))

    def _clear_humidity_high(self, params: dict[str, Any]) -> None:
        self.humidity_pct = 55.0

    def _inject_water_leak(self, params: dict[str, Any]) -> None:
        pass

    def _inject_smoke(self, params: dict[str, Any]) -> None:
        pass

    def _step(self, dt_s: float) -> None:
        v = self._values
        v["temperature_c"] = round(self.temperature_c + self._noise(0.1), 1)
        v["humidity_pct"] = round(clamp(self.humidity_pct + self._noise(0.3), 0.0, 100.0), 1)
        v["water_leak"] = "water_leak" in self.active
        v["smoke"] = "smoke" in self.active
