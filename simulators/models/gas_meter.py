"""A remote-read gas meter with a shut-off valve."""

from __future__ import annotations

from typing import Any

from simulators.models.volume_meter import VolumeMeterModel

__all__ = ["GasMeterModel"]


class GasMeterModel(VolumeMeterModel):
    family = "gas_meter"

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        merged = {"peak_m3h": 0.8, "total_m3": 600.0, **(params or {})}
        super().__init__(seed=seed, params=merged)
