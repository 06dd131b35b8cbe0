"""The names people use: devices and zones as the site file names them, and communication faults.

Alarm rows carry ids (``site/device/point/alarm``, zone ``"5"``); duty staff read names and
places ("B座1-3层 · 1号烟感 · B座 3F 302"). :class:`SiteNames` is built from a loaded site and
adds those names to alarm and history rows (the rules engine knows nothing of them). It also
turns the gateway's device online map into communication-fault rows — a whole bus when every
device on it is offline — because a device the gateway cannot reach must never read as normal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edge.config.site import Site
from edge.site_zones import ZoneConfig, site_zones

__all__ = ["SiteNames", "names_for"]


@dataclass(frozen=True, slots=True)
class _Device:
    id: str
    name: str | None
    name_zh: str | None
    building: str | None
    floor: str | None
    location: str | None
    zone: str | None
    bus: str


class SiteNames:
    """Names and places of one loaded site (rebuilt when the site is reloaded)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.declared: list[ZoneConfig] | None = site_zones(site)
        self.zones: dict[str, ZoneConfig] = {z.id: z for z in self.declared or []}
        self.devices: dict[str, _Device] = {}
        for resolved in site.devices:
            cfg = resolved.config
            self.devices[cfg.id] = _Device(
                cfg.id, cfg.name, cfg.name_zh, cfg.building, cfg.floor, cfg.location, cfg.zone, cfg.bus
            )
        self.point_zone: dict[str, str] = {}
        for resolved in site.devices:
            for point in resolved.points:
                if point.zone:
                    self.point_zone[site.point_id(resolved.id, point.id)] = point.zone

    # -- zones -------------------------------------------------------------------------------

    def zone_names(self, zone_id: str | None) -> dict[str, str | None]:
        zone = self.zones.get(zone_id or "")
        if zone is None:
            return {"zone_name": None, "zone_name_zh": None}
        return {"zone_name": zone.name, "zone_name_zh": zone.name_zh}

    def shown_zone_ids(self) -> list[str]:
        """The zones the zone view shows: the declared ones, or else those the site file uses.

        A profile's own zone numbering (a panel's zones 6-8 that nothing is wired to) is left
        out; a zone with a standing alarm is always shown (see ``zones`` in routes_site).
        """
        if self.declared is not None:
            return [z.id for z in self.declared]
        used: list[str] = []
        for device in self.site.config.devices:
            for zone in (device.zone, *(p.zone for p in device.points)):
                if zone and zone not in used:
                    used.append(zone)
        return used

    def zone_json(self, zone_id: str) -> dict[str, Any]:
        zone = self.zones.get(zone_id)
        if zone is None:
            return {"id": zone_id, "name": None, "name_zh": None, "building": None, "floor": None,
                    "plan": False, "positions": {}}  # fmt: skip
        return {
            "id": zone.id,
            "name": zone.name,
            "name_zh": zone.name_zh,
            "building": zone.building,
            "floor": zone.floor,
            "plan": zone.plan is not None,
            "positions": {k: list(v) for k, v in zone.devices.items()},
        }

    # -- rows --------------------------------------------------------------------------------

    def device_names(self, device_id: str | None) -> dict[str, Any]:
        device = self.devices.get(device_id or "")
        if device is None:
            return {"device_name": None, "device_name_zh": None, "building": None, "floor": None,
                    "location": None}  # fmt: skip
        return {
            "device_name": device.name,
            "device_name_zh": device.name_zh,
            "building": device.building,
            "floor": device.floor,
            "location": device.location,
        }

    def enrich(self, row: dict[str, Any], device_id: str | None) -> dict[str, Any]:
        """``row`` with the device's name and place and the zone's name (in place, returned)."""
        row.update(self.device_names(device_id))
        zone = row.get("zone")
        if not zone:
            point = row.get("point")
            zone = self.point_zone.get(str(point)) if point else None
            if not zone and device_id in self.devices:
                zone = self.devices[device_id].zone
            row["zone"] = zone
        row.update(self.zone_names(zone))
        return row

    def place(self, row: Mapping[str, Any], lang: str = "zh") -> str:
        """One line for CSV and notifications: zone name · device name · building floor location."""
        zone = (
            row.get("zone_name_zh" if lang == "zh" else "zone_name")
            or row.get("zone_name")
            or row.get("zone")
        )
        name = (row.get("device_name_zh") if lang == "zh" else None) or row.get("device_name")
        where = " ".join(str(x) for x in (row.get("building"), row.get("floor"), row.get("location")) if x)
        return " · ".join(str(x) for x in (zone, name, where) if x)

    # -- communication faults ----------------------------------------------------------------

    def comm_faults(
        self, online: Mapping[str, bool | None], since: Mapping[str, float]
    ) -> list[dict[str, Any]]:
        """Offline devices as fault rows; a bus whose every polled device is offline is one row.

        ``online`` is ``LiveState.device_online`` (None: not yet polled, not a fault);
        ``since`` the wall time each device went offline, when known.
        """
        by_bus: dict[str, list[_Device]] = {}
        for device in self.devices.values():
            by_bus.setdefault(device.bus, []).append(device)
        rows: list[dict[str, Any]] = []
        for bus, devices in by_bus.items():
            polled = [d for d in devices if d.id in online]
            down = [d for d in polled if online.get(d.id) is False]
            if not down:
                continue
            if len(down) == len(polled) and len(polled) > 1:
                rows.append(self._fault_row("bus", bus, bus, down, since))
                continue
            for device in down:
                rows.append(self._fault_row("device", device.id, bus, [device], since))
        return rows

    def _fault_row(
        self, kind: str, ident: str, bus: str, devices: Iterable[_Device], since: Mapping[str, float]
    ) -> dict[str, Any]:
        devs = list(devices)
        stamps = [since[d.id] for d in devs if d.id in since]
        row: dict[str, Any] = {
            "key": f"{self.site.id}/_comm/{kind}/{ident}",
            "kind": kind,
            "id": ident,
            "bus": bus,
            "devices": [d.id for d in devs],
            "count": len(devs),
            "since": min(stamps) if stamps else None,
        }
        first = devs[0]
        if kind == "device":
            self.enrich(row, first.id)
        else:
            row.update({"building": first.building, "zone": None, "zone_name": None, "zone_name_zh": None})
        return row


_CACHE: dict[int, SiteNames] = {}


def names_for(site: Site) -> SiteNames:
    """The names of ``site``, built once per loaded site (a reload brings a new ``Site``)."""
    names = _CACHE.get(id(site))
    if names is None or names.site is not site:
        _CACHE.clear()  # one site at a time; the old one is gone after a reload
        names = _CACHE[id(site)] = SiteNames(site)
    return names
