"""The fire panel with per-detector status on loop 1 (``fire-panel-modbus``, loop points).

Extends :class:`FirePanelModel` (zones, latching, reset, silence) with the device-level bits
some interface cards expose: ``loop1_det1_fire`` … ``loop1_det8_fire``. A ``detector``
scenario puts one addressed detector into alarm; it latches like the zone does and is cleared
by the panel's reset once the smoke is gone.
"""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.fire_panel import FirePanelModel

__all__ = ["FirePanelLoopsModel"]

_LOOP_DETECTORS = 8


class FirePanelLoopsModel(FirePanelModel):
    scenarios = {
        **FirePanelModel.scenarios,
        "detector": "loop 1 detector N (address 1-8) senses fire; zone Z (optional) goes into fire too",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        self.sensing: set[int] = set()  # loop-1 addresses sensing smoke now
        self.latched_detectors: set[int] = set()
        super().__init__(seed=seed, params=params)

    def _inject_detector(self, params: dict[str, Any]) -> None:
        address = int(params.get("address", 1))
        if not 1 <= address <= _LOOP_DETECTORS:
            raise ValueError(f"address must be 1..{_LOOP_DETECTORS}")
        self.sensing.add(address)
        self.latched_detectors.add(address)
        if params.get("zone") is not None:
            self._inject_fire({"zone": params["zone"]})
        self.active["detector"] = {"address": address}

    def _clear_detector(self, params: dict[str, Any]) -> None:
        self.sensing.clear()

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id == "reset" and value:
            self.latched_detectors = set(self.sensing)
        return super()._write(point_id, value)

    def _step(self, dt_s: float) -> None:
        super()._step(dt_s)
        latched: set[int] = getattr(self, "latched_detectors", set())
        for address in range(1, _LOOP_DETECTORS + 1):
            self._values[f"loop1_det{address}_fire"] = address in latched
