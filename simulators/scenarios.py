"""Scenarios: the named things a technician, a test or the demo can make a device do.

Two kinds share one namespace per device: behaviour scenarios of the family's model (fire in a
zone, tank overflow, a trapped passenger, ...) and communication faults any device can show
(``simulators.faults``). ``inject`` and ``clear`` route a name to the right one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simulators.device import SimulatedDevice
from simulators.faults import FAULT_SCENARIOS
from simulators.models import MODELS, UnknownScenario

__all__ = ["UnknownScenario", "active", "catalogue", "clear", "family_catalogue", "inject"]


def family_catalogue(family: str) -> dict[str, str]:
    """Every scenario a device of this family offers, with a one-line description."""
    model = MODELS.get(family)
    scenarios = dict(model.scenarios) if model is not None else {}
    return {**scenarios, **FAULT_SCENARIOS}


def catalogue() -> dict[str, dict[str, str]]:
    return {family: family_catalogue(family) for family in sorted(MODELS)}


def inject(device: SimulatedDevice, name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Start a scenario (again, with new parameters, if it is already running)."""
    params = dict(params or {})
    if name in FAULT_SCENARIOS:
        device.faults.inject(name, params)
    else:
        device.inject(name, params)
    return active(device)


def clear(device: SimulatedDevice, name: str | None = None) -> list[str]:
    """End one scenario, or every scenario and fault of the device when ``name`` is None."""
    if name is None:
        return device.faults.clear() + device.clear(None)
    if name in FAULT_SCENARIOS:
        return device.faults.clear(name)
    if name not in device.model.scenarios:
        raise UnknownScenario(f"{device.model.family} has no scenario '{name}'")
    return device.clear(name)


def active(device: SimulatedDevice) -> dict[str, Any]:
    return {**device.model.active, **device.faults.active()}
