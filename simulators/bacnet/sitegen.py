"""Point lists and resolved devices for simulated BACnet devices: what a profile of a model
holds, and ``resolved_device`` for tests and benches that open a ``bacnet_ip`` bus directly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drivers.bacnet.config import BacnetBus, BacnetDeviceConfig, BacnetPointConfig
from drivers.config_base import BusBase, DeviceBase, PointBase, ProfileBase, ProfileDefaultsBase, ReportPolicy
from simulators.bacnet.models import Model
from simulators.bacnet.objects import ObjectSpec

__all__ = ["point_id", "points_of", "resolved_device"]

_WRITABLE = ("analog-output", "analog-value", "binary-output", "binary-value", "multi-state-value")


@dataclass(frozen=True, slots=True)
class SimResolvedDevice:
    """A device as the loader would resolve it (``drivers.registry.DeviceSpec``), built here so
    that simulators need nothing of the gateway's loader."""

    config: DeviceBase
    bus: BusBase
    profile: ProfileBase | None
    points: tuple[PointBase, ...]
    poll_interval_s: float
    timeout_ms: int
    retries: int
    defaults: ProfileDefaultsBase
    report: ReportPolicy

    @property
    def id(self) -> str:
        return self.config.id


def point_id(spec: ObjectSpec) -> str:
    return spec.name.lower().replace(" ", "-")[:64]


def point_of(spec: ObjectSpec, *, cov: bool = False, **extra: Any) -> BacnetPointConfig:
    fields: dict[str, Any] = {
        "id": point_id(spec),
        "name": spec.description or spec.name,
        "object_type": spec.type,
        "instance": spec.instance,
        "access": "rw" if spec.type in _WRITABLE else "r",
        "cov": cov,
    }
    if spec.units:
        fields["units"] = spec.units
    if spec.states:
        fields["enum"] = {i + 1: s for i, s in enumerate(spec.states)}
    fields.update(extra)
    return BacnetPointConfig(**fields)


def points_of(model: Model, *, cov: bool = False) -> list[BacnetPointConfig]:
    return [point_of(spec, cov=cov) for spec in model.objects()]


def resolved_device(
    device_id: str,
    bus: BacnetBus,
    instance: int,
    points: Sequence[BacnetPointConfig],
    *,
    address: str | None = None,
    poll_interval_s: float = 1.0,
    report: ReportPolicy | None = None,
    **device: Any,
) -> SimResolvedDevice:
    config = BacnetDeviceConfig(id=device_id, bus=bus.id, instance=instance, address=address, **device)
    return SimResolvedDevice(
        config=config,
        bus=bus,
        profile=None,
        points=tuple(points),
        poll_interval_s=poll_interval_s,
        timeout_ms=bus.timeout_ms,
        retries=bus.retries,
        defaults=ProfileDefaultsBase(),
        report=report or ReportPolicy(),
    )
