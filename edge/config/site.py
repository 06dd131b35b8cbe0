"""A site after loading: every device joined to its bus and profile, every point resolved.

``edge.config.loader.load_site`` builds this; everything downstream (coordinators, drivers,
rules, dashboard) reads it and never the raw YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.model import make_point_id
from drivers.config_base import (
    BusBase,
    DeviceBase,
    PointBase,
    ProfileBase,
    ProfileDefaultsBase,
    ReportPolicy,
)
from edge.config.models import SiteConfig

__all__ = ["ResolvedDevice", "Site"]


@dataclass(frozen=True, slots=True)
class ResolvedDevice:
    """A device with its bus and profile joined: ``config`` is the bus type's device model,
    ``points`` the profile's points with the device's patches applied (the protocol's point
    model), ``defaults`` the profile's defaults (protocol-specific ones included)."""

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

    def report_policy(self, point: PointBase) -> ReportPolicy:
        return point.report or self.report


@dataclass(frozen=True, slots=True)
class Site:
    config: SiteConfig
    path: Path
    devices: tuple[ResolvedDevice, ...]
    profiles: dict[str, ProfileBase] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.config.site.id

    @property
    def data_dir(self) -> Path:
        """The gateway's data folder; a relative path is taken from the site file's folder."""
        return (self.path.parent / self.config.gateway.data_dir).resolve()

    @property
    def outbox_path(self) -> Path:
        configured = self.config.outbox.path
        if configured is None:
            return self.data_dir / "outbox.db"
        return (self.path.parent / configured).resolve()

    def point_id(self, device_id: str, point_id: str) -> str:
        return make_point_id(self.id, device_id, point_id)
