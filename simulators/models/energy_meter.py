"""A three-phase energy meter whose load follows a residential daily curve.

The same model serves every energy-meter profile (Eastron SDM630, Chint DTSU666, ...): it
computes the physical quantities once and publishes each under the point ids the profiles use
(``_ALIASES``), so a new profile only needs its ids added there.
"""

from __future__ import annotations

import math
from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel

__all__ = ["EnergyMeterModel", "load_factor"]


def load_factor(hour: float) -> float:
    """Relative residential electrical load over a day (evening peak, night trough)."""
    evening = math.exp(-(((hour - 20.0) / 2.5) ** 2))
    morning = math.exp(-(((hour - 7.5) / 1.5) ** 2))
    return 0.25 + 0.45 * morning + 0.75 * evening


# canonical quantity -> every point id a profile may call it
_ALIASES: dict[str, tuple[str, ...]] = {
    "voltage_l1_v": ("voltage_l1_v", "voltage_l1", "v_l1", "ua_v", "phase_voltage_a_v", "voltage_a_v"),
    "voltage_l2_v": ("voltage_l2_v", "voltage_l2", "v_l2", "ub_v", "phase_voltage_b_v", "voltage_b_v"),
    "voltage_l3_v": ("voltage_l3_v", "voltage_l3", "v_l3", "uc_v", "phase_voltage_c_v", "voltage_c_v"),
    "line_voltage_l1_l2_v": (
        "line_voltage_l1_l2_v",
        "voltage_l1_l2",
        "voltage_l1_l2_v",
        "uab_v",
        "line_voltage_ab_v",
    ),
    "line_voltage_l2_l3_v": (
        "line_voltage_l2_l3_v",
        "voltage_l2_l3",
        "voltage_l2_l3_v",
        "ubc_v",
        "line_voltage_bc_v",
    ),
    "line_voltage_l3_l1_v": (
        "line_voltage_l3_l1_v",
        "voltage_l3_l1",
        "voltage_l3_l1_v",
        "uca_v",
        "line_voltage_ca_v",
    ),
    "current_l1_a": ("current_l1_a", "current_l1", "i_l1", "ia_a", "current_a_a"),
    "current_l2_a": ("current_l2_a", "current_l2", "i_l2", "ib_a", "current_b_a"),
    "current_l3_a": ("current_l3_a", "current_l3", "i_l3", "ic_a", "current_c_a"),
    "power_l1_w": ("power_l1_w", "power_l1", "active_power_l1_w", "pa_w"),
    "power_l2_w": ("power_l2_w", "power_l2", "active_power_l2_w", "pb_w"),
    "power_l3_w": ("power_l3_w", "power_l3", "active_power_l3_w", "pc_w"),
    "power_w": (
        "power_w",
        "power_total",
        "total_power_w",
        "active_power_w",
        "total_active_power_w",
        "p_total_w",
    ),
    "power_kw": ("power_kw", "total_power_kw", "active_power_kw"),
    "power_factor": ("power_factor", "pf", "total_power_factor"),
    "frequency_hz": ("frequency_hz", "frequency", "freq_hz"),
    "import_kwh": (
        "import_kwh",
        "energy_import",
        "import_active_energy_kwh",
        "forward_active_energy_kwh",
        "energy_import_kwh",
    ),
    "export_kwh": (
        "export_kwh",
        "energy_export",
        "export_active_energy_kwh",
        "reverse_active_energy_kwh",
        "energy_export_kwh",
    ),
    "total_kwh": ("total_kwh", "energy_total", "total_active_energy_kwh", "energy_total_kwh"),
}


_SETTINGS = frozenset({"node_address", "baud_code"})


class EnergyMeterModel(DeviceModel):
    family = "meter"
    scenarios = {
        "abnormal_consumption": "the load jumps to factor× normal (default 5×): a fault or theft",
        "phase_loss": "phase L3 voltage and current drop to zero",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.peak_kw = self._param("peak_kw", 30.0)
        self.hour = self._param("start_hour", 19.0)
        self.import_kwh = self._param("import_kwh", 12_000.0 + self._rng.uniform(0, 5000))
        self.export_kwh = self._param("export_kwh", 0.0)
        self.power_kw = 0.0
        self._values["node_address"] = float(self._param("node_address", 1))
        self._values["baud_code"] = 2.0  # 9600 baud
        self._step(0.0)

    def _inject_abnormal_consumption(self, params: dict[str, Any]) -> None:
        pass

    def _inject_phase_loss(self, params: dict[str, Any]) -> None:
        pass

    def _step(self, dt_s: float) -> None:
        self.hour = (self.hour + dt_s / 3600.0) % 24.0
        factor = (
            float(self.active.get("abnormal_consumption", {}).get("factor", 5.0))
            if ("abnormal_consumption" in self.active)
            else 1.0
        )
        self.power_kw = self.peak_kw * load_factor(self.hour) * factor * (1.0 + self._noise(0.02))
        self.import_kwh += self.power_kw * dt_s / 3600.0
        pf = 0.95 + self._noise(0.01)
        phases = [1.0, 1.0, 0.0 if "phase_loss" in self.active else 1.0]
        live = sum(phases) or 1.0
        q: dict[str, float] = {}
        for i, on in enumerate(phases, start=1):
            volts = (230.0 + self._noise(1.5)) * on
            watts = self.power_kw * 1000.0 / live * on
            q[f"voltage_l{i}_v"] = round(volts, 1)
            q[f"power_l{i}_w"] = round(watts, 1)
            q[f"current_l{i}_a"] = round(watts / (volts * pf), 3) if volts else 0.0
        q["line_voltage_l1_l2_v"] = round(math.sqrt(3) * (q["voltage_l1_v"] + q["voltage_l2_v"]) / 2, 1)
        q["line_voltage_l2_l3_v"] = round(math.sqrt(3) * (q["voltage_l2_v"] + q["voltage_l3_v"]) / 2, 1)
        q["line_voltage_l3_l1_v"] = round(math.sqrt(3) * (q["voltage_l3_v"] + q["voltage_l1_v"]) / 2, 1)
        q["power_w"] = round(self.power_kw * 1000.0, 1)
        q["power_kw"] = round(self.power_kw, 3)
        q["power_factor"] = round(pf, 3)
        q["frequency_hz"] = round(50.0 + self._noise(0.02), 2)
        q["import_kwh"] = round(self.import_kwh, 2)
        q["export_kwh"] = round(self.export_kwh, 2)
        q["total_kwh"] = round(self.import_kwh + self.export_kwh, 2)
        for name, value in q.items():
            for alias in _ALIASES.get(name, (name,)):
                self._values[alias] = value

    def _write(self, point_id: str, value: Value) -> bool:
        # Node address and baud code registers: accepted and held, as a real meter does.
        if point_id in _SETTINGS:
            self._values[point_id] = value
            return True
        return False
