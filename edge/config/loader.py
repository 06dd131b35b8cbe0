"""Read a site file (and the profiles it names) into a ``Site``, reporting every mistake at once.

Positions come from ruamel.yaml's round-trip mode, which keeps the line and column of every
node: an error can then say ``site.yaml:12:7: devices[3].unit: ...`` instead of making an
installer hunt for it. Round-trip parsing is pure Python and slow (about 0.7 s for a 500-device
site here, against 0.1 s for the libyaml-backed safe parser), so a file is first read with the
fast parser and the round-trip tree is built only when there is a problem to locate; see
``bench/config_load.py``. The work is split three ways:

* this module owns files and positions (``YamlDocument.position`` maps a location path such as
  ``("devices", 3, "unit")`` to a line and column);
* ``edge.config.checks`` turns pydantic errors and cross-reference mistakes into location paths;
* ``edge.config.profiles`` finds profiles and merges a device's point patches over them.

A problem is never raised on its own: ``load_site`` collects them all and raises one
``ConfigError`` holding every ``ConfigProblem``, sorted by file and position.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from pydantic import TypeAdapter, ValidationError

from core.errors import ConfigError, ConfigProblem
from core.yaml_doc import YamlDocument, format_loc, read_yaml
from drivers.config_base import BusBase, DeviceBase, ProfileBase
from drivers.registry import BusDriver, bus_driver, bus_drivers, protocol, protocols
from edge.config.checks import (
    Issue,
    Loc,
    ResolvedEntry,
    check_buses,
    check_devices,
    check_profile_points,
    check_resolved,
    issues_from_validation,
)
from edge.config.models import BusConfig, SiteConfig
from edge.config.profiles import BUNDLED_PROFILES, ProfileLibrary, merge_points, resolve_device
from edge.config.site import ResolvedDevice, Site

__all__ = ["BUNDLED_PROFILES", "YamlDocument", "format_loc", "load_profile", "load_site", "read_yaml"]

_LOG = structlog.get_logger(__name__)

_BUS_ADAPTER: TypeAdapter[BusBase] = TypeAdapter(BusConfig)


def load_profile(path: Path, *, expect_id: str | None = None) -> ProfileBase:
    """Read and check one profile file; every problem is located in that file.

    Its ``protocol:`` (``modbus`` when absent) picks the registered model its points follow."""
    try:
        doc = read_yaml(path)
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), 1, 1, "(file)", f"cannot read: {exc.strerror}")]) from exc
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.problem(Issue((), "a profile must be a mapping (id:, name:, points:, ...)"))])
    name = doc.data.get("protocol", "modbus")
    spec = protocol(name) if isinstance(name, str) else None
    if spec is None:
        known = ", ".join(protocols())
        issue = Issue(("protocol",), f"unknown protocol {name!r}; this gateway has drivers for: {known}")
        raise ConfigError([doc.problem(issue)])
    model = spec.profile_model
    try:
        profile = model.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError([doc.problem(i) for i in issues_from_validation(exc, doc.data, model)]) from exc
    issues = check_profile_points(profile.points, spec.name)
    if expect_id is not None and profile.id != expect_id:
        message = f"profile id '{profile.id}' differs from its file name '{expect_id}'"
        issues.insert(0, Issue(("id",), message))
    if issues:
        raise ConfigError(_sorted([doc.problem(i) for i in issues]))
    return profile


def load_site(
    path: Path, *, profile_dirs: Sequence[Path] = (), only_devices: Collection[str] | None = None
) -> Site:
    """Load a site file, its profiles, and check everything.

    Raises ``OSError`` if the site file itself cannot be read, ``ConfigError`` with every problem
    otherwise. ``profile_dirs`` (e.g. from ``gatehouse check --profiles``) take precedence over
    the site's own ``profile_dirs:``, which take precedence over the bundled profiles.

    ``only_devices`` is for a poll worker (``edge.poll_workers.worker``): the site holds only
    those devices, and the sections a worker does not run (uplink, dashboard, zones, retention,
    rules) are not checked again — the gateway that started it did, and a worker that imported
    their owners (TLS, `cryptography`, the rules engine) would carry them for nothing.
    """
    path = Path(path)
    doc = read_yaml(path)
    data = doc.data
    if not isinstance(data, dict):
        what = "empty" if data is None else "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        message = f"a site file must be a mapping with 'site:' and 'gateway:' keys; this one is {what}"
        raise ConfigError([doc.problem(Issue((), message))])

    issues: list[Issue] = []
    config: SiteConfig | None = None
    try:
        config = SiteConfig.model_validate(data)
    except ValidationError as exc:
        issues.extend(issues_from_validation(exc, data, SiteConfig))

    buses, site_dirs = _valid_parts(config, data)
    bus_by_id: dict[str, BusBase] = {}
    for _, bus in buses:
        bus_by_id.setdefault(bus.id, bus)
    bus_types = _bus_types(data.get("buses"))
    devices = _valid_devices(data.get("devices"), bus_types, issues, only_devices)
    library = ProfileLibrary(
        dirs=[*profile_dirs, *_site_profile_dirs(path, site_dirs, issues), BUNDLED_PROFILES],
        read=lambda p: load_profile(p, expect_id=p.stem),
    )
    issues.extend(check_buses(buses))
    issues.extend(check_devices(devices, bus_by_id, broken_buses=_raw_ids(data.get("buses"))))

    raw_devices = data.get("devices")
    if not isinstance(raw_devices, list):
        raw_devices = []
    entries: list[ResolvedEntry] = []
    for index, device in devices:
        entry = _resolve(index, device, bus_by_id, bus_types, library, raw_devices, issues)
        if entry is not None:
            entries.append(entry)
    issues.extend(check_resolved(entries))
    if only_devices is None:
        issues.extend(_section_issues(path, data))

    problems = _sorted([doc.problem(i) for i in issues], first=doc.file) + _sorted(library.problems)
    if problems or config is None:
        raise ConfigError(problems)
    # The site's devices as their bus types' models, in file order (model_copy: validated).
    config = config.model_copy(update={"devices": [device for _, device in devices]})
    site = Site(config, path, tuple(e.device for e in entries), library.loaded)
    if only_devices is not None:
        return site
    from edge.rules_host.site import rule_config_problems

    rule_problems = rule_config_problems(site, doc, library.find)
    if rule_problems:
        raise ConfigError(rule_problems)
    return site


def _section_issues(path: Path, data: dict[Any, Any]) -> list[Issue]:
    """The sections whose owners validate them; imported here, not at the top, so a poll
    worker's ``load_site`` never loads them."""
    from edge.retention import check_retention

    return [
        *_uplink_issues(path, data),
        *_dashboard_issues(path, data),
        *_zones_issues(path, data),
        *check_retention(data.get("retention")),
    ]


def _uplink_issues(path: Path, data: dict[Any, Any]) -> list[Issue]:
    """The ``uplink:`` section is validated by its owner (``edge.uplink.wiring``)."""
    from edge.uplink.wiring import check_uplink

    raw, gateway = data.get("uplink"), data.get("gateway")
    if not isinstance(raw, dict):
        return []  # absent, or already reported as not a mapping
    gateway_id = gateway.get("id") if isinstance(gateway, dict) else None
    return check_uplink(raw, gateway_id=str(gateway_id or ""), base_dir=path.parent)


def _dashboard_issues(path: Path, data: dict[Any, Any]) -> list[Issue]:
    """The ``dashboard:`` section is validated by its owner (``edge.dashboard.config``)."""
    from edge.dashboard.config import check_dashboard

    raw = data.get("dashboard")
    if not isinstance(raw, dict):
        return []  # absent, or already reported as not a mapping
    return check_dashboard(raw, base_dir=path.parent)


def _zones_issues(path: Path, data: dict[Any, Any]) -> list[Issue]:
    """The ``zones:`` section is validated by its owner (``edge.site_zones``)."""
    from edge.site_zones import check_zones

    raw = data.get("zones")
    if raw is None:
        return []
    return check_zones(raw, base_dir=path.parent)


def _valid_parts(
    config: SiteConfig | None, data: dict[Any, Any]
) -> tuple[list[tuple[int, BusBase]], list[str]]:
    """The buses that validate on their own, so cross-reference checks still run (and report)
    when some other part of the file is wrong."""
    if config is not None:
        return list(enumerate(config.buses)), list(config.profile_dirs)
    buses: list[tuple[int, BusBase]] = []
    raw_buses = data.get("buses")
    for i, raw in enumerate(raw_buses if isinstance(raw_buses, list) else []):
        try:
            buses.append((i, _BUS_ADAPTER.validate_python(raw)))
        except ValidationError:
            continue  # already reported by the whole-file validation
    dirs = data.get("profile_dirs")
    site_dirs = [d for d in dirs if isinstance(d, str)] if isinstance(dirs, list) else []
    return buses, site_dirs


def _bus_types(raw_buses: Any) -> dict[str, str]:
    """Bus id -> the type it says it is, as written (a bus with a wrong setting still tells
    its devices which protocol they speak)."""
    if not isinstance(raw_buses, list):
        return {}
    out: dict[str, str] = {}
    for raw in raw_buses:
        if isinstance(raw, dict) and isinstance(raw.get("id"), str) and isinstance(raw.get("type"), str):
            out.setdefault(raw["id"], raw["type"])
    return out


def _valid_devices(
    raw_devices: Any, bus_types: Mapping[str, str], issues: list[Issue], only: Collection[str] | None = None
) -> list[tuple[int, DeviceBase]]:
    """Each device validated with its bus type's device model; a device whose bus is unknown
    is held to the fields every device has. Problems go to ``issues``; devices that validate
    once their wrong optional keys are left out are kept for the cross checks. With ``only``,
    the other devices are left out (their index, and so every position, is kept)."""
    out: list[tuple[int, DeviceBase]] = []
    if not isinstance(raw_devices, list):
        return out
    for i, raw in enumerate(raw_devices):
        if only is not None and not (isinstance(raw, dict) and raw.get("id") in only):
            continue
        where: Loc = ("devices", i)
        bus_id = raw.get("bus") if isinstance(raw, dict) else None
        bus_type = bus_types.get(bus_id) if isinstance(bus_id, str) else None
        driver = bus_driver(bus_type) if bus_type is not None else None
        model: type[DeviceBase] = driver.device_model if driver is not None else DeviceBase
        data = raw
        if driver is None and isinstance(raw, dict):
            # Without the protocol, a key some protocol has cannot be judged; any other is a typo.
            known = {name for d in bus_drivers().values() for name in d.device_model.model_fields}
            data = {k: v for k, v in raw.items() if k in DeviceBase.model_fields or k not in known}
        try:
            out.append((i, model.model_validate(data)))
            continue
        except ValidationError as exc:
            issues.extend(issues_from_validation(exc, data, model, where))
            device = _lenient_device(model, data, exc)
        if device is not None:
            out.append((i, device))
    return out


def _lenient_device(model: type[DeviceBase], raw: Any, exc: ValidationError) -> DeviceBase | None:
    """The device with its wrong optional keys left out (they are reported already), so that
    one misspelled key does not hide an unknown bus or a clashing address on the same device."""
    if not isinstance(raw, dict):
        return None
    bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
    if not bad or bad & model.essential_keys:
        return None
    try:
        return model.model_validate({k: v for k, v in raw.items() if k not in bad})
    except ValidationError:
        return None


def _raw_ids(items: Any) -> set[str]:
    """Ids written in a list of mappings, whether or not the mappings validated."""
    if not isinstance(items, list):
        return set()
    return {str(item["id"]) for item in items if isinstance(item, dict) and "id" in item}


def _site_profile_dirs(path: Path, site_dirs: Sequence[str], issues: list[Issue]) -> list[Path]:
    folders: list[Path] = []
    for k, entry in enumerate(site_dirs):
        folder = path.parent / entry
        if not folder.is_dir():
            issues.append(Issue(("profile_dirs", k), f"profile folder {folder} does not exist"))
        folders.append(folder)
    return folders


def _resolve(
    index: int,
    device: DeviceBase,
    buses: Mapping[str, BusBase],
    bus_types: Mapping[str, str],
    library: ProfileLibrary,
    raw_devices: list[Any],
    issues: list[Issue],
) -> ResolvedEntry | None:
    where: Loc = ("devices", index)
    bus = buses.get(device.bus)
    # A bus with a wrong setting still says which protocol its devices speak.
    bus_type = bus.type if bus is not None else bus_types.get(device.bus)
    driver: BusDriver | None = bus_driver(bus_type) if bus_type is not None else None
    profile: ProfileBase | None = None
    if device.profile is not None:
        profile = library.get(device.profile)
        if profile is None:
            if library.find(device.profile) is None:
                issues.append(Issue((*where, "profile"), _unknown_profile(device.profile, library)))
            return None  # a broken profile is reported in its own file
    if driver is None:
        return None  # an unknown bus is reported by check_devices
    spec = driver.protocol
    if profile is not None and profile.protocol != spec.name:
        message = (
            f"profile '{profile.id}' is for {profile.protocol} devices, but bus '{device.bus}' is "
            f"{driver.bus_type} ({spec.name})"
        )
        issues.append(Issue((*where, "profile"), message))
        return None
    raw = raw_devices[index] if index < len(raw_devices) else {}
    raw_points = raw.get("points") if isinstance(raw, dict) else None
    merged = merge_points(
        profile, device.points, raw_points if isinstance(raw_points, list) else [], where, spec
    )
    issues.extend(merged.issues)
    if merged.issues or bus is None:
        return None
    resolved: ResolvedDevice = resolve_device(device, bus, profile, merged, spec)
    return ResolvedEntry(index, resolved, merged.patch_of_point)


def _unknown_profile(profile_id: str, library: ProfileLibrary) -> str:
    message = f"unknown profile '{profile_id}'"
    close = difflib.get_close_matches(profile_id, library.available(), n=1, cutoff=0.6)
    if close:
        return f"{message} (did you mean '{close[0]}'?)"
    return f"{message} (searched {', '.join(str(d) for d in library.dirs)})"


def _sorted(problems: list[ConfigProblem], first: str | None = None) -> list[ConfigProblem]:
    order: dict[str, int] = {first: 0} if first else {}
    for p in problems:
        order.setdefault(p.file, len(order))
    return sorted(problems, key=lambda p: (order[p.file], p.line, p.column))
