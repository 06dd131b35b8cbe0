"""The site file's ``zones:`` section: the fire/linkage zones people name, validated by its owner.

A zone is what the duty staff call a part of the estate ("Tower B floors 1-3"); the devices and
points of the site file refer to it by id (``zone: "5"``). The section is optional; when it is
given, the dashboard shows only these zones, by name, and every zone id used in the site file
must be declared (:func:`zone_reference_issues`). Example::

    zones:
      - id: "5"
        name: Tower B floors 1-3
        name_zh: B座1-3层
        building: B
        plan: plans/b1.png            # optional floor plan, relative to the site file
        devices: {smoke-z5: [120, 80]} # device positions on the plan, in image pixels

The loader calls :func:`check_zones` with the raw list; everything else reads
:func:`site_zones` from a loaded ``Site``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge.config.checks import Issue, issues_from_validation
from edge.config.site import Site

__all__ = ["ZoneConfig", "check_zones", "site_zones", "zone_reference_issues"]

_LOC = ("zones",)
_PLAN_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".svg", ".webp", ".gif"})


class ZoneConfig(BaseModel):
    """One named zone; ``plan`` is absolute once read through :func:`site_zones`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    name_zh: str | None = Field(default=None, max_length=200)
    building: str | None = None
    floor: str | None = None
    plan: str | None = Field(default=None, description="floor-plan image, relative to the site file")
    devices: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="device id → [x, y] on the plan, in image pixels"
    )

    @field_validator("id", "floor", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # ``id: 5`` and ``floor: 1`` are natural to write; they name, they do not count
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("plan")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and Path(value).suffix.lower() not in _PLAN_SUFFIXES:
            raise ValueError(f"plan must be an image ({', '.join(sorted(_PLAN_SUFFIXES))})")
        return value


def _parse(raw: Any, base_dir: Path) -> tuple[list[ZoneConfig], list[Issue]]:
    if not isinstance(raw, list):
        return [], [Issue(_LOC, "expected a list of zones (- id: ..., name: ...)")]
    zones: list[ZoneConfig] = []
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        loc = (*_LOC, index)
        if not isinstance(item, Mapping):
            issues.append(Issue(loc, "expected a mapping with at least 'id' and 'name'"))
            continue
        try:
            zone = ZoneConfig.model_validate(dict(item))
        except ValidationError as exc:
            issues.extend(issues_from_validation(exc, dict(item), ZoneConfig, prefix=loc))
            continue
        if zone.id in seen:
            issues.append(
                Issue((*loc, "id"), f"zone {zone.id!r} is declared twice (first at zones[{seen[zone.id]}])")
            )
            continue
        seen[zone.id] = index
        if zone.plan is not None:
            path = base_dir / zone.plan
            if not path.is_file():
                issues.append(Issue((*loc, "plan"), f"file {path} does not exist"))
                continue
            zone = zone.model_copy(update={"plan": str(path.resolve())})
        zones.append(zone)
    return zones, issues


def check_zones(raw: Any, *, base_dir: Path) -> list[Issue]:
    """Located problems of the ``zones:`` section (a list of zone mappings)."""
    return _parse(raw, base_dir)[1]


def site_zones(site: Site) -> list[ZoneConfig] | None:
    """The declared zones of a loaded site, in file order; None when the file has no ``zones:``."""
    raw = site.config.zones
    if raw is None:
        return None
    return _parse(raw, site.path.parent)[0]


def used_zone_ids(site: Site) -> list[tuple[tuple[str | int, ...], str]]:
    """Every zone id the site file itself sets, with its location: devices and point patches.

    Zones that come from a profile (a fire panel numbers its own zones "1".."8") are not the
    site's choice and are not listed.
    """
    out: list[tuple[tuple[str | int, ...], str]] = []
    for d_index, device in enumerate(site.config.devices):
        if device.zone:
            out.append((("devices", d_index, "zone"), device.zone))
        for p_index, patch in enumerate(device.points):
            if patch.zone:
                out.append((("devices", d_index, "points", p_index, "zone"), patch.zone))
    return out


def zone_reference_issues(site: Site, zones: Iterable[ZoneConfig] | None = None) -> list[Issue]:
    """With ``zones:`` given: zone ids used by devices/points and plan device ids must exist."""
    declared = site_zones(site) if zones is None else list(zones)
    if declared is None:
        return []
    ids = {z.id for z in declared}
    issues = [
        Issue(loc, f"zone {zone!r} is not declared in zones: (declared: {', '.join(sorted(ids)) or 'none'})")
        for loc, zone in used_zone_ids(site)
        if zone not in ids
    ]
    devices = {d.id for d in site.config.devices}
    index = {z.id: i for i, z in enumerate(declared)}
    for zone in declared:
        for device_id in zone.devices:
            if device_id not in devices:
                loc = (*_LOC, index[zone.id], "devices", device_id)
                issues.append(Issue(loc, f"no device {device_id!r} in this site", at_key=True))
    return issues
