"""A site after loading: every device joined to its bus and profile, every point resolved.

``edge.config.loader.load_site`` builds this; everything downstream (coordinators, drivers,
rules, dashboard) reads it and never the raw YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge.config.models import (
    BusConfig,
    DeviceConfig,
    PointConfig,
    ProfileConfig,
    ReportPolicy,
    SiteConfig,
)
from edge.model import make_point_id

__all__ = ["ResolvedDevice", "Site"]


@dataclass(frozen=True, slots=True)
class ResolvedDevice:
    config: DeviceConfig
    bus: BusConfig
    profile: ProfileConfig | None
    points: tuple[PointConfig, ...]
    poll_interval_s: float
    timeout_ms: int
    retries: int
    max_registers_per_read: int
    max_bits_per_read: int
    max_gap: int
    report: ReportPolicy

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def endpoint(self) -> tuple[str, int] | str:
        """What this device's requests travel over: (host, port) for TCP, a tty path for RTU.

        Devices with the same endpoint share one connection and take turns on it.
        """
        bus = self.bus
        if bus.type == "modbus_tcp":
            return (self.config.host or bus.host, self.config.port or bus.port)
        return bus.port

    def report_policy(self, point: PointConfig) -> ReportPolicy:
        return point.report or self.report


@dataclass(frozen=True, slots=True)
class Site:
    config: SiteConfig
    path: Path
    devices: tuple[ResolvedDevice, ...]
    profiles: dict[str, ProfileConfig] = field(default_factory=dict)

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
