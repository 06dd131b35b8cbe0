"""The part of a device profile a simulator needs: where each point lives and how it is encoded.

The simulators read ``config/profiles/*.yaml`` themselves rather than through the gateway's
loader, so that the simulator package never depends on gateway internals. The gateway validates
the same files with ``edge.config.models.ProfileConfig``; the tests check both readings agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog
from ruamel.yaml import YAML

from drivers.modbus.types import DataType, Table, WordOrder

__all__ = [
    "PROFILE_DIR",
    "SimPoint",
    "SimProfile",
    "apply_patches",
    "find_profile",
    "load_profile_file",
    "parse_profile",
]

_LOG = structlog.get_logger(__name__)

PROFILE_DIR = Path(__file__).resolve().parent.parent / "config" / "profiles"


@dataclass(frozen=True, slots=True)
class SimPoint:
    """One register-mapped point; fits ``drivers.modbus.types.RegisterSpec``."""

    id: str
    table: Table
    address: int
    type: DataType = DataType.UINT16
    order: WordOrder = WordOrder.ABCD
    bit: int | None = None
    length: int | None = None
    scale: float = 1.0
    offset: float = 0.0
    access: str = "r"
    enum: Mapping[int, str] | None = None

    @property
    def writable(self) -> bool:
        return self.access in ("rw", "w")


@dataclass(frozen=True, slots=True)
class SimProfile:
    id: str
    family: str
    points: tuple[SimPoint, ...]
    name: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def point(self, point_id: str) -> SimPoint:
        for p in self.points:
            if p.id == point_id:
                return p
        raise KeyError(point_id)


def _point(raw: Mapping[str, Any]) -> SimPoint:
    enum_raw = raw.get("enum")
    return SimPoint(
        id=str(raw["id"]),
        table=Table(raw.get("table", "holding")),
        address=int(raw["address"]),
        type=DataType(raw.get("type", "uint16")),
        order=WordOrder(raw.get("order", "ABCD")),
        bit=None if raw.get("bit") is None else int(raw["bit"]),
        length=None if raw.get("length") is None else int(raw["length"]),
        scale=float(raw.get("scale", 1.0)),
        offset=float(raw.get("offset", 0.0)),
        access=str(raw.get("access", "r")),
        enum=None if enum_raw is None else {int(k): str(v) for k, v in enum_raw.items()},
    )


def parse_profile(raw: Mapping[str, Any]) -> SimProfile:
    points = tuple(_point(p) for p in raw["points"])
    return SimProfile(
        id=str(raw["id"]),
        family=str(raw["family"]),
        points=points,
        name=str(raw.get("name", "")),
        extra={k: v for k, v in raw.items() if k not in ("points",)},
    )


def load_profile_file(path: Path) -> SimProfile:
    yaml = YAML(typ="safe")
    with path.open("r", encoding="utf-8") as fh:
        raw = yaml.load(fh)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a profile is a mapping")  # noqa: TRY004 - bad file content, not a bad argument
    if raw.get("protocol", "modbus") != "modbus":
        raise NotARegisterMap(f"{path}: a {raw['protocol']} profile, not a Modbus register map")
    return parse_profile(raw)


class NotARegisterMap(ValueError):
    """The profile is for another protocol; its own simulator serves it."""


def find_profile(profile_id: str, dirs: tuple[Path, ...] = ()) -> Path:
    """Site-local folders first, then the shipped library, as the gateway's loader does."""
    for folder in (*dirs, PROFILE_DIR):
        candidate = folder / f"{profile_id}.yaml"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no profile '{profile_id}' in {[str(d) for d in (*dirs, PROFILE_DIR)]}")


def apply_patches(profile: SimProfile, patches: list[Mapping[str, Any]]) -> SimProfile:
    """A site's per-device point overrides: change named fields, or drop a point (enabled: false)."""
    if not patches:
        return profile
    by_id = {str(p["id"]): p for p in patches}
    points: list[SimPoint] = []
    for point in profile.points:
        patch = by_id.get(point.id)
        if patch is None:
            points.append(point)
            continue
        if patch.get("enabled", True) is False:
            continue
        changes: dict[str, Any] = {}
        for key in ("address", "bit", "length"):
            if patch.get(key) is not None:
                changes[key] = int(patch[key])
        for key in ("scale", "offset"):
            if patch.get(key) is not None:
                changes[key] = float(patch[key])
        if patch.get("table") is not None:
            changes["table"] = Table(patch["table"])
        if patch.get("type") is not None:
            changes["type"] = DataType(patch["type"])
        if patch.get("order") is not None:
            changes["order"] = WordOrder(patch["order"])
        if patch.get("access") is not None:
            changes["access"] = str(patch["access"])
        points.append(replace(point, **changes))
    return replace(profile, points=tuple(points))
