"""A manhole cover sensor reporting through a concentrator: tilt, lid, water, methane, battery.

The battery drains a little with every report; the lid-open and overflow flags follow the tilt
and the water depth the way the sensors derive them.
"""

from __future__ import annotations

from typing import Any

from simulators.models.base import DeviceModel, clamp

__all__ = ["ManholeModel"]

_TILT_ALARM_DEG = 15.0  # DOMAIN.md: tilt above about 15 degrees (unconfirmed)


class ManholeModel(DeviceModel):
    family = "manhole"
    scenarios = {
        "opened": "the cover is lifted off (lid open, tilt 90°)",
        "tilted": "the cover is displaced by angle_deg (default 25°)",
        "overflow": "water rises to level_m (default 1.4 m) and the overflow flag is set",
        "methane": "methane builds up to pct_lel (default 25 %LEL)",
        "battery_low": "the battery falls to battery_v (default 3.2 V)",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.depth_m = self._param("depth_m", 1.5)
        self.battery_v = self._param("battery_v", 3.62)
        # About 0.3 V per year at one report a minute; a scale demo can speed it up.
        self.drain_v_per_s = self._param("drain_v_per_s", 1e-8)
        self.tilt_deg = 0.4
        self.water_m = 0.15
        self.methane = 0.0
        self._step(0.0)

    def _inject_opened(self, params: dict[str, Any]) -> None:
        self.tilt_deg = 90.0

    def _clear_opened(self, params: dict[str, Any]) -> None:
        self.tilt_deg = 0.4

    def _inject_tilted(self, params: dict[str, Any]) -> None:
        self.tilt_deg = float(params.get("angle_deg", 25.0))

    def _clear_tilted(self, params: dict[str, Any]) -> None:
        self.tilt_deg = 0.4

    def _inject_overflow(self, params: dict[str, Any]) -> None:
        self.water_m = float(params.get("level_m", 1.4))

    def _clear_overflow(self, params: dict[str, Any]) -> None:
        self.water_m = 0.15

    def _inject_methane(self, params: dict[str, Any]) -> None:
        self.methane = float(params.get("pct_lel", 25.0))

    def _clear_methane(self, params: dict[str, Any]) -> None:
        self.methane = 0.0

    def _inject_battery_low(self, params: dict[str, Any]) -> None:
        self.battery_v = float(params.get("battery_v", 3.2))

    def _clear_battery_low(self, params: dict[str, Any]) -> None:
        self.battery_v = 3.62

    def _step(self, dt_s: float) -> None:
        self.battery_v = max(2.5, self.battery_v - self.drain_v_per_s * dt_s)
        lid_open = self.tilt_deg >= 60.0
        overflow = self.water_m >= self.depth_m - 0.2
        tilt_alarm = self.tilt_deg > _TILT_ALARM_DEG
        battery_low = self.battery_v < 3.3
        v = self._values
        v["tilt_deg"] = round(clamp(self.tilt_deg, 0.0, 90.0), 1)
        v["water_level_m"] = round(self.water_m, 2)
        v["methane_pct_lel"] = round(self.methane, 1)
        v["temperature_c"] = round(18.0 + self._noise(0.2), 1)
        v["battery_v"] = round(self.battery_v, 2)
        v["signal_dbm"] = -85
        v["lid_open"] = lid_open
        v["overflow"] = overflow
        v["tilt_alarm"] = tilt_alarm
        v["battery_low"] = battery_low
        v["device_fault"] = False
        v["status"] = (
            (1 if lid_open else 0)
            | (2 if tilt_alarm else 0)
            | (4 if overflow else 0)
            | (8 if battery_low else 0)
        )
