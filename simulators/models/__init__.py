"""Behaviour models, one module per device family, and the table that picks one for a profile."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simulators.models.access_door import AccessDoorModel
from simulators.models.barrier import BarrierModel
from simulators.models.base import DeviceModel, UnknownScenario
from simulators.models.broadcast import BroadcastModel
from simulators.models.electrical_fire import ElectricalFireModel
from simulators.models.elevator import ElevatorModel
from simulators.models.energy_meter import EnergyMeterModel
from simulators.models.ev_charger import EvChargerModel
from simulators.models.evacuation_lighting import EvacuationLightingModel
from simulators.models.fire_io import FireIoModuleModel
from simulators.models.fire_lane import FireLaneModel
from simulators.models.fire_panel import FirePanelModel
from simulators.models.fire_panel_loops import FirePanelLoopsModel
from simulators.models.fire_water import FireWaterModel
from simulators.models.gas_meter import GasMeterModel
from simulators.models.heat_meter import HeatMeterModel
from simulators.models.manhole import ManholeModel
from simulators.models.smoke_detector import SmokeDetectorModel
from simulators.models.smoke_fan import SmokeFanModel
from simulators.models.switch_room import SwitchRoomModel
from simulators.models.water_meter import WaterMeterModel
from simulators.models.water_tank import WaterTankModel

__all__ = ["MODELS", "DeviceModel", "FirePanelModel", "UnknownScenario", "make_model"]

MODELS: dict[str, type[DeviceModel]] = {
    cls.family: cls
    for cls in (
        AccessDoorModel,
        BarrierModel,
        BroadcastModel,
        ElectricalFireModel,
        ElevatorModel,
        EnergyMeterModel,
        EvChargerModel,
        EvacuationLightingModel,
        FireIoModuleModel,
        FireLaneModel,
        FirePanelModel,
        FireWaterModel,
        GasMeterModel,
        HeatMeterModel,
        ManholeModel,
        SmokeDetectorModel,
        SmokeFanModel,
        SwitchRoomModel,
        WaterMeterModel,
        WaterTankModel,
    )
}
# The panel with loop-1 detector bits (a subclass: zones, latching and reset are the panel's).
MODELS["fire_panel"] = FirePanelLoopsModel
# Profiles may name the energy-meter family either way.
MODELS["energy_meter"] = EnergyMeterModel


def make_model(family: str, *, seed: int = 0, params: Mapping[str, Any] | None = None) -> DeviceModel:
    try:
        cls = MODELS[family]
    except KeyError:
        raise ValueError(f"no simulator model for family '{family}' (known: {sorted(MODELS)})") from None
    return cls(seed=seed, params=dict(params or {}))
