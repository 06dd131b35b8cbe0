"""Pydantic models of a site file, and the protocol-independent parts of devices and profiles.

Every model forbids unknown keys and is frozen: configuration is data, validated once. The
loader (``edge.config.loader``) turns the YAML into these and maps pydantic's error locations
back to ``file:line:col``. Cross-reference checks (unknown bus, duplicate ids, overlapping
registers, ...) live in ``edge.config.checks`` because they need the whole site at once.

What depends on the protocol — a bus's settings, a device's address, a point's location —
comes from the driver registry (``drivers.registry``): ``buses:`` is a union of every
registered bus model (tagged by ``type``), and each device and profile is validated by the
loader with the model of its bus type or ``protocol:``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from drivers.config_base import (
    Access,
    BusBase,
    DeviceBase,
    Identifier,
    PointBase,
    ProfileBase,
    ProfileDefaultsBase,
    ReportPolicy,
)
from drivers.registry import bus_drivers

__all__ = [
    "Access",
    "BusBase",
    "BusConfig",
    "DeviceBase",
    "GatewayConfig",
    "OutboxConfig",
    "PointBase",
    "ProfileBase",
    "ProfileDefaultsBase",
    "ReportPolicy",
    "SiteConfig",
    "SiteInfo",
]


class _Model(BaseModel):
    # Schemas are built when a model is first used: a site uses a few of the drivers' many
    # models, and building them all at import cost about 4 MB of RSS (issue 19).
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False, defer_build=True)


def _bus_union() -> Any:
    models = tuple(driver.bus_model for driver in bus_drivers().values())
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007 - built at run time


# Every registered bus model, told apart by ``type``: a type nobody registered is an error.
BusConfig: Any = _bus_union()


class SiteInfo(_Model):
    id: Identifier
    name: str | None = None
    name_zh: str | None = None
    timezone: str = "Asia/Shanghai"


class GatewayConfig(_Model):
    id: Identifier
    data_dir: str = Field(default="/var/lib/gatehouse", description="relative to the site file")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    poll_workers: int = Field(
        default=0,
        ge=0,
        le=16,
        description="poll the buses in this many worker processes (whole buses each) so a large site "
        "uses more than one core; 0 polls in the gateway's own process",
    )


class OutboxConfig(_Model):
    path: str | None = Field(default=None, description="default: DATA_DIR/outbox.db")
    quota_bytes: int = Field(default=2_000_000_000, ge=1_000_000)
    queue_size: int = Field(default=50_000, ge=100)
    commit_interval_ms: int = Field(default=100, ge=1, le=10_000)
    commit_batch: int = Field(default=5_000, ge=1)


class SiteConfig(_Model):
    """A whole site file."""

    site: SiteInfo
    gateway: GatewayConfig
    outbox: OutboxConfig = OutboxConfig()
    profile_dirs: list[str] = Field(default_factory=list, description="site-local profile folders")
    buses: list[BusConfig] = Field(default_factory=list)
    # Each device is validated by the loader with its bus type's device model; after loading
    # this list holds those models (``DeviceBase`` subclasses).
    devices: list[Any] = Field(default_factory=list)
    # Sections owned by later subsystems are kept as raw mappings here and validated by them.
    uplink: dict[str, Any] | None = None
    rules: dict[str, Any] | None = None
    dashboard: dict[str, Any] | None = None
    zones: list[Any] | None = Field(default=None, description="named zones; see docs/configuration.md")
    retention: dict[str, Any] | None = None
