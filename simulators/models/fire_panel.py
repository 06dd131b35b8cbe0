"""A fire alarm control panel with zones, exposed over Modbus (``fire-panel-modbus``).

Fire and supervisory states latch until the panel is reset, as on a real panel: a detector that
has gone quiet still shows fire until someone presses reset. A reset while a detector is still
in alarm re-raises the fire at once. Silence mutes the sounders until the next new alarm.
"""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel

__all__ = ["FirePanelModel"]

# Status word bits as in GB/T 26875.3 component/system status (DOMAIN.md).
_FIRE_BIT = 1 << 1
_FAULT_BIT = 1 << 2
_SUPERVISORY_BIT = 1 << 4
_MAIN_POWER_BIT = 1 << 8
_BACKUP_POWER_BIT = 1 << 9


class FirePanelModel(DeviceModel):
    family = "fire_panel"
    scenarios = {
        "fire": "a detector in zone N goes into fire alarm; inject again for a second detector",
        "fault": "a fault in zone N (open loop, detector removed)",
        "supervisory": "a supervisory signal in zone N (valve tamper, pump room door)",
        "power_fault": "main power lost (backup=true: backup battery fault too)",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.zones = int(self._param("zones", 8))
        self.detectors: dict[int, int] = {}  # zone -> detectors currently sensing fire
        self.fire_latched: set[int] = set()
        self.faults: set[int] = set()
        self.supervisory: set[int] = set()
        self.silenced = False
        self.main_power_fault = False
        self.backup_power_fault = False
        self._step(0.0)

    def _zone(self, params: dict[str, Any]) -> int:
        zone = int(params.get("zone", 1))
        if not 1 <= zone <= self.zones:
            raise ValueError(f"zone must be 1..{self.zones}")
        return zone

    def _inject_fire(self, params: dict[str, Any]) -> None:
        zone = self._zone(params)
        count = params.get("detectors")
        self.detectors[zone] = int(count) if count is not None else self.detectors.get(zone, 0) + 1
        self.fire_latched.add(zone)
        self.silenced = False
        # Several zones can burn at once: keep the active entry keyed by the last zone injected.
        self.active["fire"] = {"zone": zone, "detectors": self.detectors[zone]}

    def _clear_fire(self, params: dict[str, Any]) -> None:
        self.detectors.clear()

    def _inject_fault(self, params: dict[str, Any]) -> None:
        self.faults.add(self._zone(params))
        self.silenced = False

    def _clear_fault(self, params: dict[str, Any]) -> None:
        self.faults.clear()

    def _inject_supervisory(self, params: dict[str, Any]) -> None:
        self.supervisory.add(self._zone(params))

    def _clear_supervisory(self, params: dict[str, Any]) -> None:
        self.supervisory.clear()

    def _inject_power_fault(self, params: dict[str, Any]) -> None:
        self.main_power_fault = True
        self.backup_power_fault = bool(params.get("backup", False))

    def _clear_power_fault(self, params: dict[str, Any]) -> None:
        self.main_power_fault = False
        self.backup_power_fault = False

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id == "reset":
            if value:
                self.fire_latched = {z for z, n in self.detectors.items() if n > 0}
                self.silenced = False
            self._step(0.0)
            return True
        if point_id == "silence":
            if value:
                self.silenced = True
            self._step(0.0)
            return True
        return False

    def _step(self, dt_s: float) -> None:
        v = self._values
        panel = 0
        for zone in range(1, self.zones + 1):
            fire = zone in self.fire_latched
            fault = zone in self.faults
            supervisory = zone in self.supervisory
            status = (_FIRE_BIT if fire else 0) | (_FAULT_BIT if fault else 0)
            status |= _SUPERVISORY_BIT if supervisory else 0
            panel |= status
            v[f"zone{zone}_status"] = status
            v[f"zone{zone}_fire"] = fire
            v[f"zone{zone}_fault"] = fault
            v[f"zone{zone}_supervisory"] = supervisory
            v[f"zone{zone}_detectors_in_alarm"] = self.detectors.get(zone, 0)
        panel |= _MAIN_POWER_BIT if self.main_power_fault else 0
        panel |= _BACKUP_POWER_BIT if self.backup_power_fault else 0
        v["panel_status"] = panel
        v["fire_any"] = bool(panel & _FIRE_BIT)
        v["fault_any"] = bool(panel & _FAULT_BIT) or self.main_power_fault or self.backup_power_fault
        v["supervisory_any"] = bool(panel & _SUPERVISORY_BIT)
        v["main_power_fault"] = self.main_power_fault
        v["backup_power_fault"] = self.backup_power_fault
        v["fire_zone_count"] = len(self.fire_latched)
        v["silenced"] = self.silenced
        # Command coils read back as released once the panel has acted on them.
        v["reset"] = False
        v["silence"] = self.silenced
