"""Checks that need more than one node of a site at once, and pydantic errors turned into issues.

Everything here is pure: it works on validated models (or plain data) and returns ``Issue``s,
each carrying the *location path* of the offending node (``("devices", 3, "unit")``). The loader
owns the YAML and turns a path into ``file:line:col``; keeping positions out of this module means
the checks can be tested without a file.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

import structlog
from pydantic import BaseModel, ValidationError

from drivers.modbus.types import DataType, Table
from edge.config.models import Access, BusConfig, DeviceConfig, PointConfig
from edge.config.site import ResolvedDevice

__all__ = [
    "Issue",
    "Loc",
    "ResolvedEntry",
    "check_buses",
    "check_devices",
    "check_profile_points",
    "check_resolved",
    "find_overlaps",
    "issues_from_validation",
]

_LOG = structlog.get_logger(__name__)

Loc = tuple[str | int, ...]


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
            message = f"unknown type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
            loc = (*loc, "type")
        elif kind == "union_tag_not_found":
            message = "missing required key 'type' (modbus_tcp or modbus_rtu)"
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


def check_buses(buses: Sequence[tuple[int, BusConfig]]) -> list[Issue]:
    """Duplicate bus ids, and two RTU buses on one serial port (they would fight over it)."""
    issues: list[Issue] = []
    seen_ids: dict[str, int] = {}
    seen_ports: dict[str, str] = {}
    for index, bus in buses:
        if bus.id in seen_ids:
            issues.append(Issue(("buses", index, "id"), f"duplicate bus id '{bus.id}'"))
        else:
            seen_ids[bus.id] = index
        if bus.type == "modbus_rtu":
            if bus.port in seen_ports:
                issues.append(
                    Issue(
                        ("buses", index, "port"),
                        f"serial port {bus.port} is already used by bus '{seen_ports[bus.port]}'; "
                        "put both sets of devices on one bus",
                    )
                )
            else:
                seen_ports[bus.port] = bus.id
    return issues


def check_devices(
    devices: Sequence[tuple[int, DeviceConfig]],
    buses: Mapping[str, BusConfig],
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
        if bus is None:
            if device.bus not in broken_buses:
                known = ", ".join(sorted({*buses, *broken_buses})) or "none defined"
                issues.append(Issue((*where, "bus"), f"unknown bus '{device.bus}' (buses: {known})"))
        elif bus.type == "modbus_rtu":
            for field in ("host", "port"):
                if getattr(device, field) is not None:
                    issues.append(
                        Issue(
                            (*where, field),
                            f"'{field}' is for devices on a modbus_tcp bus; bus '{bus.id}' is modbus_rtu",
                            at_key=True,
                        )
                    )
        if device.profile is None and not device.points:
            issues.append(Issue(where, "a device needs a 'profile:' or its own 'points:'"))
        issues.extend(_duplicate_patch_ids(where, device))
    return issues


def _duplicate_patch_ids(where: Loc, device: DeviceConfig) -> list[Issue]:
    issues: list[Issue] = []
    seen: set[str] = set()
    for j, patch in enumerate(device.points):
        if patch.id in seen:
            issues.append(Issue((*where, "points", j, "id"), f"duplicate point id '{patch.id}'"))
        seen.add(patch.id)
    return issues


@dataclass(frozen=True, slots=True)
class ResolvedEntry:
    """A resolved device with where it came from: its index in ``devices:`` and, per point,
    the index of the ``points:`` patch that shaped it (``None`` for a point taken as-is)."""

    index: int
    device: ResolvedDevice
    patch_of_point: tuple[int | None, ...]


def check_resolved(entries: Sequence[ResolvedEntry]) -> list[Issue]:
    """Checks that need effective points and endpoints: shared addresses, overlaps, broadcast."""
    issues: list[Issue] = []
    taken: dict[tuple[object, int], str] = {}
    for entry in entries:
        device = entry.device
        where: Loc = ("devices", entry.index)
        unit_loc: Loc = (*where, "unit")
        polled = any(p.access is not Access.WRITE for p in device.points)
        if device.config.unit == 0 and polled:
            message = "unit 0 is the broadcast address: a device there never answers a poll"
            if device.bus.type == "modbus_tcp":
                message += " (a TCP device that ignores the unit id works with 1 or 255)"
            issues.append(Issue(unit_loc, message))
        if device.config.enabled:
            key = (device.endpoint, device.config.unit)
            other = taken.get(key)
            if other is not None:
                issues.append(
                    Issue(
                        unit_loc,
                        f"unit {device.config.unit} on {_endpoint_text(device.endpoint)} "
                        f"is already device '{other}'",
                    )
                )
            else:
                taken[key] = device.id

        def patched(a: int, b: int, origins: tuple[int | None, ...] = entry.patch_of_point) -> bool:
            return origins[a] is not None or origins[b] is not None

        for first, second in find_overlaps(device.points, report=patched):
            # Point at a patch (the profile's own overlaps are reported in the profile file).
            culprit = second if entry.patch_of_point[second] is not None else first
            partner = first if culprit == second else second
            patch_index = entry.patch_of_point[culprit]
            assert patch_index is not None
            issues.append(
                Issue(
                    (*where, "points", patch_index, "address"),
                    _overlap_message(device.points[culprit], device.points[partner]),
                )
            )
    return issues


def _endpoint_text(endpoint: tuple[str, int] | str) -> str:
    if isinstance(endpoint, tuple):
        return f"{endpoint[0]}:{endpoint[1]}"
    return endpoint


def _overlap_message(point: PointConfig, other: PointConfig) -> str:
    last = point.address + point.register_count - 1
    span = f"{point.address}" if last == point.address else f"{point.address}..{last}"
    what = "coil" if point.table is Table.COIL else point.table.value.replace("_", " ")
    if point.type is DataType.BIT and other.type is DataType.BIT:
        return f"point '{point.id}' uses bit {point.bit} of {what} register {span}, as does '{other.id}'"
    return f"point '{point.id}' ({what} {span}) overlaps point '{other.id}'"


def check_profile_points(points: Sequence[PointConfig]) -> list[Issue]:
    """Duplicate ids and overlapping registers inside one profile; located in the profile file."""
    issues: list[Issue] = []
    seen: set[str] = set()
    for j, point in enumerate(points):
        if point.id in seen:
            issues.append(Issue(("points", j, "id"), f"duplicate point id '{point.id}'"))
        seen.add(point.id)
    for first, second in find_overlaps(points):
        issues.append(Issue(("points", second, "address"), _overlap_message(points[second], points[first])))
    return issues


def find_overlaps(
    points: Sequence[PointConfig], report: Callable[[int, int], bool] | None = None
) -> Iterable[tuple[int, int]]:
    """Pairs ``(i, j)`` of points that claim the same register (or bit), ``j`` after ``i`` in
    address order. Bit points may share a register with each other, one bit each.

    A sweep over points sorted by address keeps only those still "open", so a normal map costs
    O(n log n) rather than comparing every pair.
    """
    by_table: dict[Table, list[int]] = {}
    for i, point in enumerate(points):
        by_table.setdefault(point.table, []).append(i)
    for indices in by_table.values():
        indices.sort(key=lambda i: (points[i].address, i))
        open_: list[int] = []
        for j in indices:
            start = points[j].address
            open_ = [i for i in open_ if points[i].address + points[i].register_count > start]
            for i in open_:
                if _compatible_bits(points[i], points[j]):
                    continue
                if report is None or report(i, j):
                    yield (i, j)
            open_.append(j)


def _compatible_bits(a: PointConfig, b: PointConfig) -> bool:
    return a.type is DataType.BIT and b.type is DataType.BIT and a.bit != b.bit
