"""A manual call point / input-output module (``fire-io-module``).

The call point latches until reset (as the glass or the resettable element does); the output
answers (feedback) a moment after it is commanded, like a relay with an auxiliary contact.
"""

from __future__ import annotations

from typing import Any

from core.model import Value
from simulators.models.base import DeviceModel

__all__ = ["FireIoModuleModel"]


class FireIoModuleModel(DeviceModel):
    family = "fire_io_module"
    scenarios = {
        "call_point": "someone operates the manual call point (latched until the scenario is cleared)",
        "fault": "an open or short circuit on the input wiring",
        "no_feedback": "the output's equipment does not answer",
    }

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(seed=seed, params=params)
        self.output = False
        self._step(0.0)

    def _inject_call_point(self, params: dict[str, Any]) -> None:
        pass

    def _inject_fault(self, params: dict[str, Any]) -> None:
        pass

    def _inject_no_feedback(self, params: dict[str, Any]) -> None:
        pass

    def _write(self, point_id: str, value: Value) -> bool:
        if point_id != "output":
            return False
        self.output = bool(value)
        self._step(0.0)
        return True

    def _step(self, dt_s: float) -> None:
        v = self._values
        v["call_point"] = "call_point" in self.active
        v["input_fault"] = "fault" in self.active
        v["output"] = self.output
        v["output_feedback"] = self.output and "no_feedback" not in self.active
