"""A remote-read water meter."""

from __future__ import annotations

from simulators.models.volume_meter import VolumeMeterModel

__all__ = ["WaterMeterModel"]


class WaterMeterModel(VolumeMeterModel):
    family = "water_meter"
