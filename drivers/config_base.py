"""The shapes every protocol's configuration shares: bus, device, point and profile bases.

A protocol package (``drivers/<name>/``) subclasses these with its own fields — a Modbus point
adds ``table``/``address``/``type``, a BACnet point ``object_type``/``instance``/``property`` —
and registers the subclasses with the driver registry (``drivers.registry``). The site loader
validates each bus, device, point and profile with the model its bus type registered, so a
mistake is still reported as ``site.yaml:12:7: devices[3].points[0].instance: ...``.

Every model forbids unknown keys and is frozen: configuration is data, validated once.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

__all__ = [
    "Access",
    "BusBase",
    "ConfigModel",
    "DeviceBase",
    "Identifier",
    "PointBase",
    "ProfileBase",
    "ProfileDefaultsBase",
    "ReportPolicy",
    "make_patch_model",
]

Identifier = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$",
        description="lower-case letters, digits, '_' and '-'; starts with a letter or digit; at most 64",
    ),
]


class ConfigModel(BaseModel):
    # Schemas are built when a model is first used: a site uses a few of the drivers' many
    # models, and building them all at import cost about 4 MB of RSS (issue 19).
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False, defer_build=True)


class Access(enum.StrEnum):
    READ = "r"
    READ_WRITE = "rw"
    WRITE = "w"


class ReportPolicy(ConfigModel):
    """When a polled value goes to the outbox. A quality change is always reported."""

    on_change: bool = True
    deadband_abs: float | None = Field(default=None, ge=0, description="report when |Δ| > this")
    deadband_pct: float | None = Field(
        default=None, ge=0, le=100, description="report when |Δ| > this % of the last reported value"
    )
    heartbeat_s: float | None = Field(
        default=300.0, gt=0, description="report at least this often even if nothing changed"
    )


class PointBase(ConfigModel):
    """What a point means, whatever protocol carries it. Protocols add where it lives."""

    id: Identifier
    name: str | None = None
    name_zh: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    enum: dict[int, str] | None = None
    enum_zh: dict[int, str] | None = Field(
        default=None, description="Chinese labels of the enum's codes (same keys as 'enum')"
    )
    access: Access = Access.READ
    poll_interval_s: float | None = Field(default=None, gt=0, le=86400)
    valid_min: float | None = None
    valid_max: float | None = None
    verify_write: bool = True
    zone: str | None = None
    report: ReportPolicy | None = None
    # Alarm definitions are validated by the rules package; see docs/configuration.md.
    alarms: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _common_shape(self) -> PointBase:
        if self.valid_min is not None and self.valid_max is not None and self.valid_min > self.valid_max:
            raise ValueError("valid_min is above valid_max")
        # Chinese labels translate the English ones; a code with no English label would be a
        # label the gateway never reports (a typo in the key, or 'enum' changed without it).
        if self.enum_zh is not None:
            if self.enum is None:
                raise ValueError("enum_zh needs an 'enum' (Chinese labels for its codes)")
            extra = sorted(set(self.enum_zh) - set(self.enum))
            if extra:
                codes = ", ".join(str(k) for k in extra)
                known = ", ".join(str(k) for k in sorted(self.enum))
                raise ValueError(
                    f"enum_zh has code(s) {codes} that 'enum' does not have (enum codes: {known})"
                )
        return self

    @property
    def writable(self) -> bool:
        return self.access is not Access.READ


def make_patch_model(point_model: type[PointBase]) -> type[ConfigModel]:
    """A device's override of one profile point: every field of ``point_model`` optional,
    plus ``enabled`` (``false`` drops the point). Only the fields a patch names change."""
    fields: dict[str, Any] = {}
    for name, info in point_model.model_fields.items():
        if name == "id":
            fields[name] = (Identifier, ...)
            continue
        annotation: Any = info.annotation
        meta = list(info.metadata)
        typ: Any = Annotated[annotation | None, *meta] if meta else annotation | None
        fields[name] = (typ, Field(default=None, description=info.description))
    fields["enabled"] = (bool, True)
    model: type[ConfigModel] = create_model(
        f"{point_model.__name__.removesuffix('Config')}Patch",
        __base__=ConfigModel,
        __doc__=make_patch_model.__doc__,
        **fields,
    )
    return model


class BusBase(ConfigModel):
    """One physical port or endpoint family the gateway talks over; ``type`` picks the driver."""

    id: Identifier
    type: str
    timeout_ms: int = Field(default=1000, ge=10, le=60000)
    retries: int = Field(default=1, ge=0, le=10)
    backoff_max_s: float = Field(default=60.0, gt=0, le=3600)


class DeviceBase(ConfigModel):
    """A device in the site file: what every protocol has. Protocols add their address fields
    and set ``points`` to a list of their patch model (``make_patch_model``)."""

    # The keys whose loss would change what the cross-reference checks conclude about a
    # device; a protocol adds its address keys (unit, instance, ...).
    essential_keys: ClassVar[frozenset[str]] = frozenset({"id", "bus", "profile", "points", "enabled"})

    id: Identifier
    name: str | None = None
    name_zh: str | None = None
    bus: str
    profile: str | None = None
    enabled: bool = True
    poll_interval_s: float | None = Field(default=None, gt=0, le=86400)
    timeout_ms: int | None = Field(default=None, ge=10, le=60000)
    retries: int | None = Field(default=None, ge=0, le=10)
    building: str | None = None
    floor: str | None = None
    zone: str | None = None
    location: str | None = None
    points: list[Any] = Field(default_factory=list)


class ProfileDefaultsBase(ConfigModel):
    poll_interval_s: float = Field(default=5.0, gt=0, le=86400)
    report: ReportPolicy = ReportPolicy()


class ProfileBase(ConfigModel):
    """What is known about one model of device: its points and defaults. ``protocol`` says
    which protocol's point model reads ``points`` (``modbus`` when absent)."""

    id: Identifier
    name: str
    name_zh: str | None = None
    family: str
    manufacturer: str | None = None
    model: str | None = None
    source: str = Field(description="where the map comes from: a manual, a standard, or 'typical'")
    protocol: str = "modbus"
    defaults: ProfileDefaultsBase = ProfileDefaultsBase()
    points: Sequence[PointBase] = Field(min_length=1)
