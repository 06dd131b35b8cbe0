"""A standalone smoke detector with a Modbus interface (``smoke-detector-standalone``).

Obscuration drifts around clean air; a ``smoke`` scenario raises it past the alarm threshold
(about 1 dB/m, the usual photoelectric response range), and the alarm follows the smoke.
"""

from __future__ import annotations

from typing import Any

from simulators.models.base import DeviceModel, clamp

__all__ = ["SmokeDetectorModel"]

_ALARM_DB_M = 1.0


class SmokeDetectorModel(DeviceModel):
    family = "smoke_detector"
    scenarios = {
        "smoke": "smoke in the chamber (db_m: obscuration, default 2.0 dB/m)",
        "fault": "detector fault (head removed, chamber failure)",
        "battery_low": "the backup battery runs low",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.contamination = self._param("contamination_pct", 8.0)
        self._step(0.0)

    def _inject_smoke(self, params: dict[str, Any]) -> None:
        pass

    def _inject_fault(self, params: dict[str, Any]) -> None:
        pass

    def _inject_battery_low(self, params: dict[str, Any]) -> None:
        pass

    def _step(self, dt_s: float) -> None:
        v = self._values
        smoke = self.active.get("smoke")
        if smoke is not None:
            db_m = float(smoke.get("db_m", 2.0))
        else:
            db_m = clamp(0.05 + self._noise(0.03), 0.0, 0.2)
        v["smoke_db_m"] = round(db_m, 2)
        v["contamination_pct"] = round(self.contamination, 1)
        v["fire"] = db_m >= _ALARM_DB_M and "fault" not in self.active
        v["fault"] = "fault" in self.active
        v["battery_low"] = "battery_low" in self.active
