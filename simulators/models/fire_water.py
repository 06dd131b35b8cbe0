"""Fire water supply: a fire tank, the pipe network held up by a jockey pump, two fire pumps.

Pressure at the least favourable point sits near the jockey setpoint; a sprinkler or hydrant
flowing drops it, and a running fire pump lifts it. The tank drains while water flows and is
refilled slowly by its make-up valve.
"""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel, clamp

__all__ = ["FireWaterModel"]


class FireWaterModel(DeviceModel):
    family = "fire_water"
    scenarios = {
        "tank_low": "fire tank level falls below the low level (make-up valve fails)",
        "low_pressure": "pipe network pressure at the least favourable point drops (leak, valve shut)",
        "sprinkler_flow": "a sprinkler head opens: sprinkler pressure drops, flow starts, pump 1 starts",
        "pump_fault": "fire pump N (1 or 2) trips",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.tank_area_m2 = self._param("tank_area_m2", 60.0)
        self.tank_level_m = self._param("tank_level_m", 3.2)
        self.tank_full_m = self._param("tank_full_m", 3.5)
        self.pipe_pressure_mpa = 0.35
        self.sprinkler_pressure_mpa = 0.45
        self.pump_running = [False, False]
        self.pump_fault = [False, False]
        self.pump_start_cmd = False
        self.flow_lps = 0.0
        self._step(0.0)

    def _inject_tank_low(self, params: dict[str, Any]) -> None:
        self.tank_level_m = float(params.get("level_m", 0.4))

    def _clear_tank_low(self, params: dict[str, Any]) -> None:
        self.tank_level_m = max(self.tank_level_m, 3.0)

    def _inject_low_pressure(self, params: dict[str, Any]) -> None:
        self.pipe_pressure_mpa = float(params.get("pressure_mpa", 0.05))

    def _inject_sprinkler_flow(self, params: dict[str, Any]) -> None:
        self.flow_lps = float(params.get("flow_lps", 20.0))
        if not self.pump_fault[0]:
            self.pump_running[0] = True

    def _clear_sprinkler_flow(self, params: dict[str, Any]) -> None:
        self.flow_lps = 0.0

    def _inject_pump_fault(self, params: dict[str, Any]) -> None:
        index = clamp(int(params.get("pump", 1)), 1, 2)
        self.pump_fault[int(index) - 1] = True
        self.pump_running[int(index) - 1] = False

    def _clear_pump_fault(self, params: dict[str, Any]) -> None:
        self.pump_fault = [False, False]

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id == "pump_start":
            self.pump_start_cmd = bool(value)
            for i in (0, 1):
                if not self.pump_fault[i]:
                    self.pump_running[i] = self.pump_start_cmd
                    break
            if not self.pump_start_cmd and "sprinkler_flow" not in self.active:
                self.pump_running = [False, False]
            self._step(0.0)
            return True
        return False

    def _step(self, dt_s: float) -> None:
        pumping = any(self.pump_running)
        if "low_pressure" in self.active:
            target = float(self.active["low_pressure"].get("pressure_mpa", 0.05))
        elif pumping:
            target = 0.62 - 0.004 * self.flow_lps
        else:
            target = 0.35 - 0.01 * self.flow_lps
        # First-order approach to the target with a 2 s time constant.
        alpha = 1.0 if dt_s == 0.0 and not self.elapsed_s else clamp(dt_s / 2.0, 0.0, 1.0)
        self.pipe_pressure_mpa += (target - self.pipe_pressure_mpa) * alpha
        self.sprinkler_pressure_mpa = max(0.0, self.pipe_pressure_mpa + 0.1 - 0.012 * self.flow_lps)
        if "tank_low" not in self.active:
            make_up_m3 = 0.002 * dt_s if self.tank_level_m < self.tank_full_m else 0.0
            used_m3 = self.flow_lps / 1000.0 * dt_s
            self.tank_level_m += (make_up_m3 - used_m3) / self.tank_area_m2
            self.tank_level_m = clamp(self.tank_level_m, 0.0, self.tank_full_m)
        v = self._values
        v["tank_level_m"] = round(self.tank_level_m, 3)
        v["pipe_pressure_mpa"] = round(max(0.0, self.pipe_pressure_mpa + self._noise(0.002)), 3)
        v["sprinkler_pressure_mpa"] = round(self.sprinkler_pressure_mpa, 3)
        v["flow_lps"] = round(self.flow_lps, 1)
        v["pump1_running"] = self.pump_running[0]
        v["pump1_fault"] = self.pump_fault[0]
        v["pump2_running"] = self.pump_running[1]
        v["pump2_fault"] = self.pump_fault[1]
        v["pump_start"] = self.pump_start_cmd
