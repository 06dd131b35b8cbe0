"""Checks that need more than one node of a site at once, and pydantic errors turned into issues.

Everything here is pure: it works on validated models (or plain data) and returns ``Issue``s,
each carrying the *location path* of the offending node (``("devices", 3, "unit")``). The loader
owns the YAML and turns a path into ``file:line:col``; keeping positions out of this module means
the checks can be tested without a file.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

import structlog
from pydantic import BaseModel, ValidationError

from core.yaml_doc import Loc
from drivers.config_base import BusBase, DeviceBase, PointBase
from drivers.registry import bus_driver, bus_drivers, protocol
from edge.config.site import ResolvedDevice

__all__ = [
    "Issue",
    "Loc",
    "ResolvedEntry",
    "check_buses",
    "check_devices",
    "check_profile_points",
    "check_resolved",
    "issues_from_validation",
]

_LOG = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem at a location path. ``at_key`` points at a mapping key rather than its value."""

    loc: Loc
    message: str
    at_key: bool = False


# --------------------------------------------------------------------------- pydantic errors

# A model-level validator of PointConfig raises a plain ValueError, so pydantic reports it at the
# point's mapping; these name the field the installer has to change so the position is exact.
_FIELD_OF_MODEL_ERROR: tuple[tuple[str, str], ...] = (
    ("is read-only; access must be", "access"),
    ("valid_min is above valid_max", "valid_min"),
    ("runs past register", "address"),
    ("'bit' is only for type 'bit'", "bit"),
    ("needs 'bit:", "type"),
    ("needs 'length'", "type"),
    ("has type 'bool'", "type"),
    ("type 'bool' is for coils", "type"),
    ("enum_zh needs an 'enum'", "enum_zh"),
    ("enum_zh has code(s)", "enum_zh"),
)


def issues_from_validation(
    exc: ValidationError, data: Any, model: type[BaseModel], prefix: Loc = ()
) -> list[Issue]:
    """Translate every error of ``exc`` (raised validating ``data`` as ``model``) into an issue."""
    issues: list[Issue] = []
    for error in exc.errors(include_url=False):
        loc, key_error = _strip_tags(tuple(error["loc"]), data)
        kind = error["type"]
        message = str(error["msg"])
        at_key = key_error
        if kind == "missing":
            message = f"missing required key '{loc[-1]}'" if loc else "missing required key"
        elif kind == "extra_forbidden":
            name = loc[-1] if loc else "?"
            message = f"unknown key '{name}'"
            suggestion = _suggest(str(name), model, loc[:-1])
            if suggestion:
                message += f" (did you mean '{suggestion}'?)"
            at_key = True
        elif kind == "string_pattern_mismatch":
            message = f"{error['input']!r} is not a valid id: use lower-case letters, digits, '_' and '-'"
        elif kind == "union_tag_invalid":
            ctx = error.get("ctx") or {}
            message = (
                f"unknown type {ctx.get('tag')!r}: this gateway has no driver for it "
                f"(bus types with a driver: {ctx.get('expected_tags')})"
            )
            loc = (*loc, "type")
        elif kind == "union_tag_not_found":
            message = f"missing required key 'type' ({', '.join(bus_drivers())})"
        elif kind == "value_error":
            message = message.removeprefix("Value error, ")
            for needle, field in _FIELD_OF_MODEL_ERROR:
                if needle in message:
                    loc = (*loc, field)
                    break
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            message = f"expected a mapping of 'key: value' entries, got {_kind(error['input'])}"
        elif kind == "list_type":
            message = f"expected a list (entries starting with '- '), got {_kind(error['input'])}"
        else:
            message = _with_input(message, error.get("input"))
        issues.append(Issue((*prefix, *loc), message, at_key))
    return issues


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return f"the text {value!r}" if len(value) <= 40 else "a text"
    return f"the value {value!r}"


def _with_input(message: str, value: Any) -> str:
    if isinstance(value, str | int | float | bool) and len(repr(value)) <= 40:
        return f"{message} (got {value!r})"
    if isinstance(value, list | dict):
        return f"{message} (got {_kind(value) if isinstance(value, list) else 'a mapping'})"
    return message


def _strip_tags(loc: Loc, data: Any) -> tuple[Loc, bool]:
    """Drop discriminator tags pydantic adds to a loc (``buses.0.modbus_tcp.host``).

    Also drops the ``[key]`` marker of an invalid mapping key, and says so: such an error
    belongs at the key, not at its value.
    """
    out: list[str | int] = []
    node = data
    at_key = False
    for step in loc:
        if step == "[key]":
            at_key = True
            continue
        is_tag = isinstance(node, Mapping) and step not in node and node.get("type") == step
        if is_tag:
            continue
        out.append(step)
        if isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            node = None
    return tuple(out), at_key


def _flatten(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        return _flatten(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [t for arg in get_args(tp) for t in _flatten(arg)]
    return [tp]


def _models_at(model: type[BaseModel], loc: Loc) -> list[type[BaseModel]]:
    """The models that may describe the mapping at ``loc`` (several for a union)."""
    current: list[Any] = [model]
    for step in loc:
        following: list[Any] = []
        for tp in current:
            for t in _flatten(tp):
                if isinstance(t, type) and issubclass(t, BaseModel):
                    if isinstance(step, str) and step in t.model_fields:
                        following.append(t.model_fields[step].annotation)
                elif get_origin(t) is list and isinstance(step, int):
                    following.append(get_args(t)[0])
        current = following
    return [t for tp in current for t in _flatten(tp) if isinstance(t, type) and issubclass(t, BaseModel)]


def _suggest(name: str, model: type[BaseModel], parent: Loc) -> str | None:
    fields = {f for m in _models_at(model, parent) for f in m.model_fields}
    close = difflib.get_close_matches(name, sorted(fields), n=1, cutoff=0.6)
    return close[0] if close else None


# --------------------------------------------------------------------------- cross-references


def check_buses(buses: Sequence[tuple[int, BusBase]]) -> list[Issue]:
    """Duplicate bus ids, and two buses holding one exclusive resource (a serial port, a UDP
    port), whatever their types: they would fight over it."""
    issues: list[Issue] = []
    seen_ids: dict[str, int] = {}
    holders: dict[str, str] = {}
    for index, bus in buses:
        if bus.id in seen_ids:
            issues.append(Issue(("buses", index, "id"), f"duplicate bus id '{bus.id}'"))
        else:
            seen_ids[bus.id] = index
        driver = bus_driver(bus.type)
        claim = driver.resource(bus) if driver is not None and driver.resource is not None else None
        if claim is None:
            continue
        field, resource = claim
        if resource in holders:
            issues.append(
                Issue(
                    ("buses", index, field),
                    f"{resource} is already used by bus '{holders[resource]}'; "
                    "put both sets of devices on one bus",
                )
            )
        else:
            holders[resource] = bus.id
    return issues


def check_devices(
    devices: Sequence[tuple[int, DeviceBase]],
    buses: Mapping[str, BusBase],
    *,
    broken_buses: Set[str] = frozenset(),
) -> list[Issue]:
    """Checks of each device against the bus list, before profiles are merged.

    ``broken_buses`` are ids of buses that are written but invalid (already reported): a device
    naming one is not told its bus is unknown.
    """
    issues: list[Issue] = []
    seen_ids: set[str] = set()
    for index, device in devices:
        where: Loc = ("devices", index)
        if device.id in seen_ids:
            issues.append(Issue((*where, "id"), f"duplicate device id '{device.id}'"))
        seen_ids.add(device.id)
        bus = buses.get(device.bus)
        if bus is None and device.bus not in broken_buses:
            known = ", ".join(sorted({*buses, *broken_buses})) or "none defined"
            issues.append(Issue((*where, "bus"), f"unknown bus '{device.bus}' (buses: {known})"))
        if device.profile is None and not device.points:
            issues.append(Issue(where, "a device needs a 'profile:' or its own 'points:'"))
        issues.extend(_duplicate_patch_ids(where, device))
    return issues


def _duplicate_patch_ids(where: Loc, device: DeviceBase) -> list[Issue]:
    issues: list[Issue] = []
    seen: set[str] = set()
    for j, patch in enumerate(device.points):
        patch_id = getattr(patch, "id", None)
        if patch_id in seen:
            issues.append(Issue((*where, "points", j, "id"), f"duplicate point id '{patch_id}'"))
        if isinstance(patch_id, str):
            seen.add(patch_id)
    return issues


@dataclass(frozen=True, slots=True)
class ResolvedEntry:
    """A resolved device with where it came from: its index in ``devices:`` and, per point,
    the index of the ``points:`` patch that shaped it (``None`` for a point taken as-is)."""

    index: int
    device: ResolvedDevice
    patch_of_point: tuple[int | None, ...]


def check_resolved(entries: Sequence[ResolvedEntry]) -> list[Issue]:
    """Checks that need effective points and the other devices of the bus: each bus type's
    own device checks (unit ids, addresses), and points that claim one place on a device."""
    issues: list[Issue] = []
    by_type: dict[str, list[ResolvedEntry]] = {}
    for entry in entries:
        by_type.setdefault(entry.device.bus.type, []).append(entry)
    for bus_type, typed in by_type.items():
        driver = bus_driver(bus_type)
        if driver is None or driver.check_devices is None:
            continue
        for k, finding in driver.check_devices([e.device for e in typed]):
            issues.append(Issue(("devices", typed[k].index, *finding.loc), finding.message, finding.at_key))
    issues.sort(key=lambda i: i.loc[1] if len(i.loc) > 1 and isinstance(i.loc[1], int) else -1)
    for entry in entries:
        issues.extend(_point_conflicts(entry))
    return issues


def _point_conflicts(entry: ResolvedEntry) -> list[Issue]:
    device = entry.device
    spec = protocol(device.profile.protocol) if device.profile is not None else None
    if spec is None:
        driver = bus_driver(device.bus.type)
        spec = driver.protocol if driver is not None else None
    if spec is None or spec.conflicts is None or spec.conflict_message is None:
        return []
    issues: list[Issue] = []
    origins = entry.patch_of_point
    for first, second in spec.conflicts(device.points):
        if origins[first] is None and origins[second] is None:
            continue  # the profile's own conflicts are reported in the profile file
        culprit = second if origins[second] is not None else first
        partner = first if culprit == second else second
        patch_index = origins[culprit]
        assert patch_index is not None
        field, message = spec.conflict_message(device.points[culprit], device.points[partner])
        issues.append(Issue(("devices", entry.index, "points", patch_index, field), message))
    return issues


def check_profile_points(points: Sequence[PointBase], protocol_name: str) -> list[Issue]:
    """Duplicate ids and points that claim one place inside one profile; located in its file."""
    issues: list[Issue] = []
    seen: set[str] = set()
    for j, point in enumerate(points):
        if point.id in seen:
            issues.append(Issue(("points", j, "id"), f"duplicate point id '{point.id}'"))
        seen.add(point.id)
    spec = protocol(protocol_name)
    if spec is not None and spec.conflicts is not None and spec.conflict_message is not None:
        for first, second in spec.conflicts(points):
            field, message = spec.conflict_message(points[second], points[first])
            issues.append(Issue(("points", second, field), message))
    return issues
