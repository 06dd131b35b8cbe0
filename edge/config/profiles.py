"""Finding device profiles, and merging a device's ``points:`` patches over its profile.

A profile is the file ``<id>.yaml`` in one of the profile folders. Folders are searched in order
of precedence (folders named on the command line, then the site's ``profile_dirs:``, then the
bundled ``config/profiles/``), so a site-local profile of the same id wins over a bundled one.
Profiles are read lazily: only those a device names, each once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError

from core.errors import ConfigError, ConfigProblem
from core.yaml_doc import Loc
from drivers.config_base import BusBase, ConfigModel, DeviceBase, PointBase, ProfileBase
from drivers.registry import Protocol_
from edge.config.checks import Issue, issues_from_validation
from edge.config.site import ResolvedDevice

__all__ = [
    "BUNDLED_PROFILES",
    "MergeResult",
    "ProfileLibrary",
    "merge_points",
    "resolve_device",
]

_LOG = structlog.get_logger(__name__)

_T = TypeVar("_T")

BUNDLED_PROFILES = Path(__file__).resolve().parents[2] / "config" / "profiles"
_SUFFIXES = (".yaml", ".yml")


@dataclass
class ProfileLibrary:
    """Profile folders in precedence order, with a cache of the profiles read so far.

    ``read`` parses one profile file and raises ``ConfigError`` located in that file; it is
    passed in so that this module does not depend on how YAML positions are tracked.
    """

    dirs: Sequence[Path]
    read: Callable[[Path], ProfileBase]
    problems: list[ConfigProblem] = field(default_factory=list)
    _cache: dict[str, ProfileBase | None] = field(default_factory=dict)

    def find(self, profile_id: str) -> Path | None:
        for folder in self.dirs:
            for suffix in _SUFFIXES:
                candidate = folder / f"{profile_id}{suffix}"
                if candidate.is_file():
                    return candidate
        return None

    def available(self) -> list[str]:
        names: set[str] = set()
        for folder in self.dirs:
            if folder.is_dir():
                names.update(p.stem for p in folder.iterdir() if p.suffix in _SUFFIXES)
        return sorted(names)

    def get(self, profile_id: str) -> ProfileBase | None:
        """The profile, or ``None`` when it is missing or broken (its problems are recorded)."""
        if profile_id in self._cache:
            return self._cache[profile_id]
        path = self.find(profile_id)
        profile: ProfileBase | None = None
        if path is not None:
            try:
                profile = self.read(path)
            except ConfigError as exc:
                self.problems.extend(exc.problems)
        self._cache[profile_id] = profile
        return profile

    @property
    def loaded(self) -> dict[str, ProfileBase]:
        return {key: value for key, value in self._cache.items() if value is not None}


@dataclass(frozen=True, slots=True)
class MergeResult:
    points: tuple[PointBase, ...]
    patch_of_point: tuple[int | None, ...]
    issues: list[Issue]


def merge_points(
    profile: ProfileBase | None,
    patches: Sequence[ConfigModel],
    raw_patches: Sequence[Any],
    where: Loc,
    protocol: Protocol_,
) -> MergeResult:
    """Apply a device's point patches over its profile's points, in profile order, new points last.

    A patch naming a profile point changes only the fields it names (and the merged point is
    validated again, so a patch cannot make it inconsistent); ``enabled: false`` drops the point;
    a patch with a new id must be a complete point. ``raw_patches`` are the patches as written,
    so that a new point is validated from exactly what the installer typed. Points are
    validated with ``protocol``'s point model.
    """
    model = protocol.point_model
    base = {p.id: p for p in profile.points} if profile else {}
    order = [p.id for p in profile.points] if profile else []
    shaped: dict[str, tuple[PointBase, int | None]] = {p.id: (p, None) for p in base.values()}
    issues: list[Issue] = []
    for j, patch in enumerate(patches):
        loc: Loc = (*where, "points", j)
        fields = patch.model_fields_set - {"id", "enabled"}
        patch_id: str = getattr(patch, "id")  # noqa: B009 - patch models are made at run time
        enabled: bool = getattr(patch, "enabled")  # noqa: B009
        if patch_id in base:
            if not enabled:
                shaped.pop(patch_id, None)
                continue
            if not fields:
                continue
            merged = {**base[patch_id].model_dump(), **{name: getattr(patch, name) for name in fields}}
            try:
                point = model.model_validate(merged)
            except ValidationError as exc:
                issues.extend(_patch_issues(exc, merged, loc, model))
                continue
            shaped[patch_id] = (point, j)
        elif not enabled:
            issues.append(
                Issue(
                    (*loc, "id"),
                    f"no point '{patch_id}' in the profile to disable"
                    + ("" if profile else " (the device has no profile)"),
                )
            )
        elif patch_id in shaped:
            continue  # a duplicate id, reported by check_devices
        else:
            raw = raw_patches[j] if j < len(raw_patches) else {}
            data = {k: v for k, v in raw.items() if k != "enabled"} if isinstance(raw, Mapping) else raw
            try:
                point = model.model_validate(data)
            except ValidationError as exc:
                issues.extend(_new_point_issues(exc, data, loc, profile, model))
                continue
            shaped[patch_id] = (point, j)
            order.append(patch_id)
    kept = [shaped[i] for i in order if i in shaped]
    return MergeResult(tuple(p for p, _ in kept), tuple(j for _, j in kept), issues)


def _patch_issues(exc: ValidationError, merged: Any, loc: Loc, model: type[PointBase]) -> list[Issue]:
    # The patch itself validated as a PointPatch, so these come from the combination: the
    # locator falls back to the patch's own mapping when the field came from the profile.
    issues = issues_from_validation(exc, merged, model, loc)
    return [Issue(i.loc, f"{i.message} (after applying this patch to the profile's point)") for i in issues]


def _new_point_issues(
    exc: ValidationError, data: Any, loc: Loc, profile: ProfileBase | None, model: type[PointBase]
) -> list[Issue]:
    issues = issues_from_validation(exc, data, model, loc)
    if profile is None:
        return issues
    hint = f" (point '{data.get('id')}' is not in profile '{profile.id}', so it must be a complete point)"
    return [Issue(i.loc, i.message + hint if "missing" in i.message else i.message, i.at_key) for i in issues]


def resolve_device(
    device: DeviceBase,
    bus: BusBase,
    profile: ProfileBase | None,
    merged: MergeResult,
    protocol: Protocol_,
) -> ResolvedDevice:
    """Effective settings: the device's value, else the profile's default, else the bus's."""
    defaults = profile.defaults if profile else protocol.profile_model.model_fields["defaults"].get_default()
    return ResolvedDevice(
        config=device,
        bus=bus,
        profile=profile,
        points=merged.points,
        poll_interval_s=_first(device.poll_interval_s, defaults.poll_interval_s),
        timeout_ms=_first(device.timeout_ms, bus.timeout_ms),
        retries=_first(device.retries, bus.retries),
        defaults=defaults,
        report=defaults.report,
    )


def _first(value: _T | None, fallback: _T) -> _T:
    return fallback if value is None else value
