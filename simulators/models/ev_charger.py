"""An AC charger (ABB Terra AC-like map): idle → connected → charging, with a current limit.

States are the IEC 61851 control-pilot states as the Terra AC encodes them. Charging current is
the smallest of the charger's rating, the limit the gateway wrote and what the car asks for; the
car tapers off as its battery fills and the session ends in "connected, not charging".
"""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel, clamp

__all__ = ["EvChargerModel", "State"]


class State:
    IDLE = 0x8000  # A: no vehicle
    CONNECTED = 0x8100  # B1: vehicle connected, charger not ready
    READY = 0x8200  # B2: connected, not charging
    WAITING = 0x8300  # C1: car ready, charger not supplying
    CHARGING = 0x8400  # C2
    OTHER = 0x8500  # fault or other


class EvChargerModel(DeviceModel):
    family = "ev_charger"
    scenarios = {
        "plug_in": "a car is plugged in (needs_kwh, default 20) and starts charging if allowed",
        "unplug": "the car is unplugged; the session ends",
        "fault": "the charger reports error code (default 0x0004 RCD trip) and stops",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.rated_a = self._param("rated_a", 32.0)
        self.limit_a = self._param("limit_a", 32.0)
        self.car_max_a = 16.0
        self.state = State.IDLE
        self.needs_kwh = 0.0
        self.session_kwh = 0.0
        self.current_a = 0.0
        self.error_code = 0
        self.serial = int(self._param("serial", 1_000_000 + seed))
        self._since_plug_s = 0.0
        if self._params.get("plugged"):
            self._plug(float(self._params.get("needs_kwh", 30.0)))
        self._step(0.0)

    def _plug(self, needs_kwh: float) -> None:
        self.state = State.CONNECTED
        self.needs_kwh = needs_kwh
        self.session_kwh = 0.0
        self._since_plug_s = 0.0

    def _inject_plug_in(self, params: dict[str, Any]) -> None:
        self.active.pop("unplug", None)
        self._plug(float(params.get("needs_kwh", 20.0)))

    def _inject_unplug(self, params: dict[str, Any]) -> None:
        self.active.pop("plug_in", None)
        self.state = State.IDLE
        self.current_a = 0.0

    def _inject_fault(self, params: dict[str, Any]) -> None:
        self.error_code = int(params.get("code", 0x0004))
        self.state = State.OTHER
        self.current_a = 0.0

    def _clear_fault(self, params: dict[str, Any]) -> None:
        self.error_code = 0
        self.state = State.READY if self.needs_kwh > 0 else State.IDLE

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id == "set_current_limit_a":
            self.limit_a = clamp(float(value or 0.0), 0.0, self.rated_a)
            self._step(0.0)
            return True
        return False

    def _step(self, dt_s: float) -> None:
        self._since_plug_s += dt_s
        if self.state == State.CONNECTED and self._since_plug_s >= 1.0:
            self.state = State.READY
        if self.state in (State.READY, State.WAITING, State.CHARGING):
            remaining = self.needs_kwh - self.session_kwh
            if remaining <= 0:
                self.state, self.current_a = State.READY, 0.0
            elif self.limit_a < 6.0:
                # IEC 61851: below 6 A the charger may not supply; the car waits (C1).
                self.state, self.current_a = State.WAITING, 0.0
            else:
                taper = clamp(remaining / 2.0, 0.2, 1.0)  # the car tapers in its last 2 kWh
                self.state = State.CHARGING
                self.current_a = min(self.rated_a, self.limit_a, self.car_max_a) * taper
        else:
            self.current_a = 0.0
        volts = 230.0
        power_w = 3 * volts * self.current_a
        self.session_kwh += power_w * dt_s / 3_600_000.0
        v = self._values
        v["serial"] = self.serial
        v["rated_current_a"] = self.rated_a
        v["error_code"] = self.error_code
        v["socket_locked"] = 1 if self.state != State.IDLE else 0
        v["charging_state"] = self.state
        v["current_limit_a"] = round(self.limit_a, 3)
        v["set_current_limit_a"] = round(self.limit_a, 3)
        for i in (1, 2, 3):
            v[f"current_l{i}_a"] = round(self.current_a, 3)
            v[f"voltage_l{i}_v"] = volts if self.state != State.OTHER else 0.0
        v["power_w"] = round(power_w)
        v["session_energy_kwh"] = round(self.session_kwh, 3)
