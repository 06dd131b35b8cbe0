"""Site and health views: buildings → devices → points with live values, trends, zones, health."""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from typing import Annotated, Any

import psutil
import structlog
from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from core.errors import StorageError
from drivers.config_base import PointBase
from edge.config.site import ResolvedDevice
from edge.dashboard.auth import ApiError, Caller, require, site_info
from edge.dashboard.context import DashboardContext, get_context
from edge.dashboard.events import clean, json_value
from edge.dashboard.names import names_for
from edge.dashboard.routes_alarms import alarm_rows
from edge.dashboard.routes_trust import trust_status

__all__ = ["router"]

_LOG = structlog.get_logger(__name__)

router = APIRouter(prefix="/api")
Ctx = Annotated[DashboardContext, Depends(get_context)]
# Worst first: the zone view colours a zone by the worst class in it.
_CLASS_RANK = {"fire": 0, "fault": 1, "supervisory": 2}
_WRITABLE = frozenset({"rw", "w"})
_PROCESS = psutil.Process()


def _enum_zh(point: PointBase) -> dict[str, str] | None:
    """English label -> Chinese label: the client turns a code into its English label first
    (``enum``), so this translates what it already shows. Codes without a Chinese label are left
    out and stay English."""
    if not point.enum or not point.enum_zh:
        return None
    return {point.enum[code]: label for code, label in point.enum_zh.items() if code in point.enum}


def _device_json(ctx: DashboardContext, device: ResolvedDevice, alarm_count: int) -> dict[str, Any]:
    site, live = ctx.gateway.site, ctx.gateway.live
    cfg = device.config
    points = []
    for point in device.points:
        full = site.point_id(device.id, point.id)
        sample = live.latest.get(full)
        points.append(
            {
                "id": full,
                "point_id": point.id,
                "name": point.name,
                "name_zh": point.name_zh,
                "unit": point.unit,
                "writable": str(point.access) in _WRITABLE,
                "enum": {str(k): v for k, v in point.enum.items()} if point.enum else None,
                "enum_zh": _enum_zh(point),
                "value": None if sample is None else json_value(sample.value),
                "quality": "uncertain" if sample is None else sample.quality.name.lower(),
                "reason": "not_yet_read" if sample is None else str(sample.reason),
                "ts": None if sample is None else sample.receipt_ts,
            }
        )
    return {
        "id": device.id,
        "name": cfg.name,
        "name_zh": cfg.name_zh,
        "profile": cfg.profile,
        "building": cfg.building,
        "floor": cfg.floor,
        "zone": cfg.zone,
        "location": cfg.location,
        "bus": cfg.bus,
        "enabled": cfg.enabled,
        "online": live.device_online.get(device.id),
        "alarm_count": alarm_count,
        "points": points,
    }


def _alarm_counts(ctx: DashboardContext) -> Counter[str]:
    return Counter(str(row["device"]) for row in alarm_rows(ctx) if row.get("device"))


@router.get("/site")
async def site(ctx: Ctx, _: Annotated[Caller, Depends(require("view"))]) -> dict[str, Any]:
    counts = _alarm_counts(ctx)
    buildings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for device in ctx.gateway.site.devices:
        buildings[device.config.building or ""].append(_device_json(ctx, device, counts[device.id]))
    return {
        "site": site_info(ctx),
        "buildings": [{"id": b, "devices": devices} for b, devices in buildings.items()],
    }


def _find_device(ctx: DashboardContext, device_id: str) -> ResolvedDevice:
    for device in ctx.gateway.site.devices:
        if device.id == device_id:
            return device
    raise ApiError(404, "unknown_device", device=device_id)


@router.get("/devices/{device_id}")
async def device(device_id: str, ctx: Ctx, _: Annotated[Caller, Depends(require("view"))]) -> dict[str, Any]:
    resolved = _find_device(ctx, device_id)
    alarms = [row for row in alarm_rows(ctx) if row.get("device") == device_id]
    body = _device_json(ctx, resolved, len(alarms))
    running = ctx.gateway.devices
    coordinator = None if running is None else running.coordinators.get(device_id)
    body["stats"] = None if coordinator is None else clean(coordinator.stats.as_dict())
    body["skipped"] = None if running is None else running.skipped.get(device_id)
    body["alarms"] = alarms
    service = ctx.gateway.alarms
    body["linkage"] = [] if service is None else clean(service.linkage_log(device=device_id, limit=100))
    return body


@router.get("/trend")
async def trend(
    ctx: Ctx,
    _: Annotated[Caller, Depends(require("view"))],
    point: str,
    since: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    until: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    max_points: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    now = ctx.now()
    until = now if until is None else until
    since = until - 86400.0 if since is None else since
    if since >= until:
        raise ApiError(400, "invalid", detail="since must be before until")
    try:
        rows = await ctx.trends.query(point, since=since, until=until, max_points=max_points)
    except StorageError as exc:
        raise ApiError(503, "storage", detail=str(exc)) from exc
    return {"point": point, "since": since, "until": until, "rows": rows}


@router.get("/zones")
async def zones(ctx: Ctx, _: Annotated[Caller, Depends(require("view"))]) -> dict[str, Any]:
    """The zones the site uses (declared in ``zones:``, or else set in the site file), by name.

    A zone outside that list still appears while it has an alarm: an alarm is never hidden.
    """
    names = names_for(ctx.gateway.site)
    by_zone: dict[str, dict[str, Any]] = {}

    def entry(zone_id: str) -> dict[str, Any]:
        if zone_id not in by_zone:
            by_zone[zone_id] = {
                **names.zone_json(zone_id), "devices": [], "alarm_count": 0, "fire_count": 0,
                "worst_class": None, "offline": 0,
            }  # fmt: skip
        return by_zone[zone_id]

    for zone_id in names.shown_zone_ids():
        entry(zone_id)
    online = ctx.gateway.live.device_online
    for device in ctx.gateway.site.devices:
        zone_ids = {device.config.zone} | {p.zone for p in device.points}
        zone_ids |= {z for z, zone in names.zones.items() if device.id in zone.devices}
        for zone_id in sorted(z for z in zone_ids if z and z in by_zone):
            by_zone[zone_id]["devices"].append(device.id)
            if online.get(device.id) is False:
                by_zone[zone_id]["offline"] += 1
    for row in alarm_rows(ctx):
        zone_id = str(row.get("zone") or "")
        if not zone_id or row.get("state") in ("shelved", "suppressed", "out_of_service"):
            continue
        item = entry(zone_id)
        item["alarm_count"] += 1
        klass, worst = row.get("class"), item["worst_class"]
        if klass == "fire":
            item["fire_count"] += 1
        if worst is None or _CLASS_RANK.get(str(klass), 9) < _CLASS_RANK.get(str(worst), 9):
            item["worst_class"] = klass
    return {"zones": list(by_zone.values()), "declared": names.declared is not None}


@router.get("/zones/{zone_id}/plan")
async def zone_plan(zone_id: str, ctx: Ctx, _: Annotated[Caller, Depends(require("view"))]) -> FileResponse:
    """The zone's floor-plan image, as declared in ``zones:`` (only that file is served)."""
    zone = names_for(ctx.gateway.site).zones.get(zone_id)
    if zone is None or zone.plan is None:
        raise ApiError(404, "no_plan", zone=zone_id)
    return FileResponse(zone.plan, headers={"Cache-Control": "private, max-age=300"})


def _system(ctx: DashboardContext) -> dict[str, Any]:
    disk = psutil.disk_usage(str(ctx.gateway.site.data_dir))
    return {
        # Since the previous call: the health view polls, so this is the load between two looks.
        "cpu_percent": psutil.cpu_percent(interval=None),
        "mem_percent": psutil.virtual_memory().percent,
        "rss_mb": _PROCESS.memory_info().rss / 2**20,
        "disk_free_bytes": disk.free,
        "disk_total_bytes": disk.total,
        "load_avg": list(os.getloadavg()),
    }


@router.get("/health")
async def health(ctx: Ctx, _: Annotated[Caller, Depends(require("view"))]) -> dict[str, Any]:
    gw = ctx.gateway
    uplink = None if gw.uplink is None else gw.uplink.status()
    last_ack: float | None = None
    if uplink is not None:
        stamps = [lane.get("last_ack_at") for lane in uplink.get("lanes", {}).values()]
        last_ack = max((s for s in stamps if s is not None), default=None)
    try:
        outbox: dict[str, Any] | None = await gw.outbox.backlog()
    except (StorageError, RuntimeError) as exc:
        _LOG.warning("dashboard.backlog_unavailable", error=str(exc))
        outbox = None
    running = gw.devices
    devices = []
    for resolved in gw.site.devices:
        coordinator = None if running is None else running.coordinators.get(resolved.id)
        stats = None if coordinator is None else coordinator.stats.as_dict()
        devices.append(
            {
                "id": resolved.id,
                "online": gw.live.device_online.get(resolved.id),
                "success_rate": None if stats is None else stats["success_rate"],
                "last_latency_ms": None if stats is None else stats["last_latency_ms"],
                "polls_ok": None if stats is None else stats["polls_ok"],
                "polls_failed": None if stats is None else stats["polls_failed"],
                "skipped": None if running is None else running.skipped.get(resolved.id),
            }
        )
    body: dict[str, Any] = clean(
        {
            "uplink": uplink,
            "trust": trust_status(gw),
            "outbox": outbox,
            "last_ack_wall": last_ack,
            "devices": devices,
            "system": _system(ctx),
            "dashboard": {
                "sse_clients": ctx.hub.clients,
                "sse_dropped": ctx.hub.dropped_clients,
                "tasks": ctx.tasks.status(),
            },
            "uptime_s": time.monotonic() - ctx.started_mono,
            "server_time": ctx.now(),
        }
    )
    return body
