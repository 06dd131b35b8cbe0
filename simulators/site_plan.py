"""Which simulated devices a site file asks for, and where each one listens.

The simulator reads the site file itself (not through the gateway's loader) so that it depends
only on the file format: buses, devices, their profiles and point patches. The gateway's
``gatehouse check`` is still the place that reports mistakes in a site file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from ruamel.yaml import YAML

from simulators.profile import SimProfile, apply_patches, find_profile, load_profile_file

__all__ = ["PlannedDevice", "SitePlan", "read_site_plan"]

_LOG = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PlannedDevice:
    """One device to simulate. ``endpoint`` is (host, port) for TCP (Modbus TCP, or RTU frames
    over TCP when ``bus_type`` is ``modbus_rtu_tcp``) or the serial path for RTU/ASCII;
    ``line`` holds the serial settings of the bus (baudrate, parity, ...)."""

    id: str
    profile: SimProfile
    endpoint: tuple[str, int] | str
    unit: int
    bus: str = ""
    bus_type: str = "modbus_tcp"
    line: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_tcp(self) -> bool:
        return isinstance(self.endpoint, tuple)


@dataclass(frozen=True, slots=True)
class SitePlan:
    site_id: str
    devices: tuple[PlannedDevice, ...]
    skipped: tuple[str, ...] = ()


# Defaults that make a served site look alive: lifts answer passengers, some cars are charging.
def _lively_params(family: str, seed: int) -> dict[str, Any]:
    if family == "elevator":
        return {"auto_calls": True}
    if family == "ev_charger" and seed % 2 == 0:
        return {"plugged": True, "needs_kwh": 10.0 + seed % 7 * 4}
    return {}


_MODBUS_BUSES = frozenset({"modbus_tcp", "modbus_rtu", "modbus_ascii", "modbus_rtu_tcp"})
_LINE_KEYS = ("baudrate", "parity", "stopbits", "bytesize")


def _serial_path(site_dir: Path, port: str) -> str:
    """A serial path as the gateway opens it: a relative one is taken from the site's folder."""
    # Not resolve(): the path is (or will be) a link to a pty, which must not be followed.
    return os.path.abspath(port if os.path.isabs(port) else site_dir / port)


def read_site_plan(path: Path, *, lively: bool = True) -> SitePlan:
    yaml = YAML(typ="safe")
    with Path(path).open("r", encoding="utf-8") as fh:
        raw = yaml.load(fh)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a site file is a mapping")  # noqa: TRY004 - bad file content, not a bad argument
    site_id = str(raw.get("site", {}).get("id", "site"))
    dirs = tuple((Path(path).parent / d).resolve() for d in raw.get("profile_dirs") or ())
    buses = {str(b["id"]): b for b in raw.get("buses") or ()}
    profiles: dict[str, SimProfile] = {}
    planned: list[PlannedDevice] = []
    skipped: list[str] = []
    for index, dev in enumerate(raw.get("devices") or ()):
        device_id = str(dev["id"])
        profile_id = dev.get("profile")
        bus = buses.get(str(dev.get("bus")))
        if not dev.get("enabled", True) or profile_id is None or bus is None:
            # Without a profile there is no family, so nothing to simulate it with.
            skipped.append(device_id)
            continue
        bus_type = str(bus.get("type"))
        if bus_type not in _MODBUS_BUSES:
            skipped.append(device_id)  # served by its own protocol's simulator
            continue
        if profile_id not in profiles:
            profiles[profile_id] = load_profile_file(find_profile(str(profile_id), dirs))
        profile = apply_patches(profiles[profile_id], list(dev.get("points") or ()))
        endpoint: tuple[str, int] | str
        if bus_type == "modbus_tcp":
            endpoint = (str(dev.get("host") or bus["host"]), int(dev.get("port") or bus.get("port", 502)))
        elif bus_type == "modbus_rtu_tcp":
            endpoint = (str(bus["host"]), int(bus.get("port", 4001)))
        else:
            endpoint = _serial_path(Path(path).parent, str(bus["port"]))
        line = {k: bus[k] for k in _LINE_KEYS if k in bus}
        meta = {k: dev[k] for k in ("name", "name_zh", "building", "floor", "zone", "location") if dev.get(k)}
        planned.append(
            PlannedDevice(
                id=device_id,
                profile=profile,
                endpoint=endpoint,
                unit=int(dev.get("unit", 1)),
                bus=str(dev["bus"]),
                bus_type=bus_type,
                line=line,
                seed=index,
                params=_lively_params(profile.family, index) if lively else {},
                meta=meta,
            )
        )
    if skipped:
        _LOG.info("devices not simulated (disabled, no profile or unknown bus)", devices=skipped)
    return SitePlan(site_id, tuple(planned), tuple(skipped))
