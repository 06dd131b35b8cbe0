"""What every behaviour model shares: engineering values by point id, a step, writes, scenarios.

A model is pure: no I/O and no clock reads. ``step(dt_s)`` moves its physics forward by the time
it is given; ``apply_write`` is what a Modbus write means to the device; ``inject``/``clear`` turn
scenarios on and off. The register image (``simulators.registers``) turns ``values()`` into
registers through the shared codec, so a model never deals with register layouts.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, ClassVar

from core.model import Value

__all__ = ["DeviceModel", "UnknownScenario", "clamp"]


class UnknownScenario(ValueError):
    """The scenario does not exist for this family."""


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class DeviceModel:
    """Base of the family models; subclasses fill ``_values`` and implement the hooks."""

    family: ClassVar[str] = ""
    #: scenario name -> one-line description (shown by the CLI, the control API and the docs)
    scenarios: ClassVar[Mapping[str, str]] = {}

    def __init__(self, *, seed: int = 0, params: Mapping[str, Any] | None = None) -> None:
        self._rng = random.Random(seed)
        self._params: dict[str, Any] = dict(params or {})
        self._values: dict[str, Value] = {}
        self.active: dict[str, dict[str, Any]] = {}
        self.elapsed_s = 0.0

    def values(self) -> dict[str, Value]:
        """Engineering values by point id (a copy)."""
        return dict(self._values)

    def step(self, dt_s: float) -> None:
        if dt_s < 0:
            raise ValueError("time does not run backwards")
        self.elapsed_s += dt_s
        self._step(dt_s)

    def apply_write(self, point_id: str, value: Value) -> bool:
        """Act on a write from the gateway; False when the point is not a command of this model."""
        return self._write(point_id, value)

    def inject(self, scenario: str, params: Mapping[str, Any] | None = None) -> None:
        hook = getattr(self, f"_inject_{scenario}", None)
        if scenario not in self.scenarios or hook is None:
            raise UnknownScenario(f"{self.family} has no scenario '{scenario}'")
        merged = dict(params or {})
        self.active[scenario] = merged
        hook(merged)
        self._step(0.0)

    def clear(self, scenario: str | None = None) -> list[str]:
        """End one scenario, or all of them; returns the names that were active."""
        names = list(self.active) if scenario is None else [scenario]
        cleared: list[str] = []
        for name in names:
            if name not in self.active:
                continue
            params = self.active.pop(name)
            hook = getattr(self, f"_clear_{name}", None)
            if hook is not None:
                hook(params)
            cleared.append(name)
        self._step(0.0)
        return cleared

    # -- hooks for subclasses

    def _step(self, dt_s: float) -> None:
        raise NotImplementedError

    def _write(self, point_id: str, value: Value) -> bool:
        return False

    def _noise(self, amplitude: float) -> float:
        return self._rng.uniform(-amplitude, amplitude)

    def _param(self, name: str, default: float) -> float:
        return float(self._params.get(name, default))
