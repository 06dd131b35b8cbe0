"""An evacuation lighting controller: per-zone emergency mode, lamps, central battery."""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel

__all__ = ["EvacuationLightingModel"]

_NORMAL, _EMERGENCY = 0, 1


class EvacuationLightingModel(DeviceModel):
    family = "evacuation_lighting"
    scenarios = {
        "mains_failure": "mains power is lost: every zone switches to emergency on battery",
        "lamp_fault": "count lamps (default 2) in zone N report a fault",
        "battery_fault": "the central battery fails its self-test",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.zones = int(self._param("zones", 8))
        # Switching a zone takes a moment; GB 50116 §4.9.2 wants the whole system within 5 s.
        self.switch_delay_s = self._param("switch_delay_s", 0.5)
        self.command = [False] * self.zones
        self.state = [_NORMAL] * self.zones
        self.pending_s = [0.0] * self.zones
        self.lamp_faults = [0] * self.zones
        self.all_cmd = False
        self._step(0.0)

    def _inject_mains_failure(self, params: dict[str, Any]) -> None:
        self.state = [_EMERGENCY] * self.zones

    def _inject_lamp_fault(self, params: dict[str, Any]) -> None:
        zone = max(1, min(self.zones, int(params.get("zone", 1))))
        self.lamp_faults[zone - 1] = int(params.get("count", 2))

    def _clear_lamp_fault(self, params: dict[str, Any]) -> None:
        self.lamp_faults = [0] * self.zones

    def _inject_battery_fault(self, params: dict[str, Any]) -> None:
        pass

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id == "all_emergency":
            self.all_cmd = bool(value)
            self._step(0.0)
            return True
        if point_id.startswith("zone") and point_id.endswith("_emergency"):
            zone = int(point_id[4 : -len("_emergency")])
            if 1 <= zone <= self.zones:
                self.command[zone - 1] = bool(value)
                self._step(0.0)
                return True
        return False

    def _step(self, dt_s: float) -> None:
        mains_lost = "mains_failure" in self.active
        v = self._values
        for i in range(self.zones):
            wanted = _EMERGENCY if (self.command[i] or self.all_cmd or mains_lost) else _NORMAL
            if wanted != self.state[i]:
                self.pending_s[i] += dt_s
                if self.pending_s[i] >= self.switch_delay_s or mains_lost:
                    self.state[i], self.pending_s[i] = wanted, 0.0
            else:
                self.pending_s[i] = 0.0
            v[f"zone{i + 1}_emergency"] = self.command[i]
            v[f"zone{i + 1}_state"] = self.state[i]
            v[f"zone{i + 1}_lamp_faults"] = self.lamp_faults[i]
        v["all_emergency"] = self.all_cmd
        v["zones_in_emergency"] = sum(1 for s in self.state if s == _EMERGENCY)
        v["mains_ok"] = not mains_lost
        v["battery_fault"] = "battery_fault" in self.active
        v["lamp_fault_any"] = any(self.lamp_faults)
