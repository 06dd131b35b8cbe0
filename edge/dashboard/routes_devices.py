"""Batch device management for administrators (R5.3): disable, enable or delete devices.

``POST /api/admin/devices/batch`` with ``{"action": "disable" | "enable" | "delete", "devices":
[ids]}``. The change is made to the site file itself (ruamel round trip: comments and order
stay), checked by the same loader as ``gatehouse check`` before anything is written, audited,
and applied by the gateway's validated reload (``Gateway.reload``). A deleted device's history
(trends, alarm history) stays; ``edge.retention`` removes it after
``dashboard.deleted_history_days``, counted from the deletion recorded here.
``GET /api/admin/devices`` lists the site's devices with their enabled state;
``GET /api/admin/devices/export.csv`` is the site's sheet of buses, devices and points, as
``gatehouse export devices`` writes it (``edge.site_io``).

The batch answer comes after the reload has happened (or after ``_RELOAD_WAIT_S``): the screen
can then say what runs now, not only that a reload was asked for.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from ruamel.yaml import YAML

from core.errors import ConfigError
from edge.dashboard.auth import ApiError, Caller, audit, require
from edge.dashboard.context import DashboardContext, get_context
from edge.deleted_devices import deleted_devices, record_deleted
from edge.site_io import export_site_file

__all__ = ["router"]

_LOG = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/admin/devices")
Ctx = Annotated[DashboardContext, Depends(get_context)]
_LOCK = asyncio.Lock()
# How long the batch answer waits for the gateway to run the new site; a reload of a large site
# rebuilds every bus. After that the answer says the reload is still under way.
_RELOAD_WAIT_S = 30.0
_RELOAD_POLL_S = 0.1


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["disable", "enable", "delete"]
    devices: list[str] = Field(min_length=1, max_length=10_000)


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _edit(path: Path, action: str, ids: set[str]) -> tuple[Any, list[str]]:
    """Apply the batch to the site file's text; returns (the new site, problems). Writes only if valid."""
    from edge.config.loader import load_site

    yaml = _yaml()
    with path.open(encoding="utf-8") as fh:
        doc = yaml.load(fh)
    devices = doc.get("devices") or []
    if action == "delete":
        doc["devices"] = type(devices)(d for d in devices if str(d.get("id")) not in ids)
        if hasattr(devices, "ca"):
            doc["devices"].ca.items.update(devices.ca.items)  # keep the comments we can
    else:
        for device in devices:
            if str(device.get("id")) in ids:
                if action == "disable":
                    device["enabled"] = False
                elif "enabled" in device:
                    del device["enabled"]  # enabled is the default
    fd, name = tempfile.mkstemp(prefix=".batch-", suffix=".yaml", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.dump(doc, fh)
        try:
            load_site(tmp)
        except ConfigError as exc:
            return None, [f"{p.path}: {p.message}" for p in exc.problems]
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return load_site(path), []


@router.get("")
async def list_devices(ctx: Ctx, _: Annotated[Caller, Depends(require("config"))]) -> dict[str, Any]:
    site = ctx.gateway.site
    online = ctx.gateway.live.device_online
    return {
        "devices": [
            {
                "id": d.id,
                "name": d.config.name,
                "name_zh": d.config.name_zh,
                "bus": d.bus.id,
                "bus_type": d.bus.type,
                "profile": d.config.profile,
                "zone": d.config.zone,
                "building": d.config.building,
                "floor": d.config.floor,
                "location": d.config.location,
                "enabled": d.config.enabled,
                # A disabled device is not polled: what it last said is no state of it now.
                "online": online.get(d.id) if d.config.enabled else None,
            }
            for d in site.devices
        ],
        "deleted": deleted_devices(site.data_dir),
        "deleted_history_days": ctx.config.deleted_history_days,
    }


@router.post("/batch")
async def batch(
    body: Batch, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("config"))]
) -> dict[str, Any]:
    gateway = ctx.gateway
    known = {d.id for d in gateway.site.devices}
    unknown = sorted(set(body.devices) - known)
    if unknown:
        raise ApiError(404, "unknown_device", devices=unknown)
    ids = set(body.devices)
    async with _LOCK:  # one edit of the site file at a time
        site, problems = await asyncio.to_thread(_edit, gateway.site.path, body.action, ids)
        target = ",".join(sorted(ids))
        if problems:
            audit(ctx, request, caller.user.username, f"device_{body.action}", target, "refused", problems[0])
            raise ApiError(409, "invalid_site", problems=problems)
        if body.action == "delete":
            await asyncio.to_thread(record_deleted, site.data_dir, sorted(ids), time.time())
        audit(
            ctx, request, caller.user.username, f"device_{body.action}", target, "ok", f"{len(ids)} devices"
        )
        reload = getattr(gateway, "reload", None)
        applied = False
        if reload is not None:
            reload(site)
            applied = await _reloaded(gateway, site)
    _LOG.info(
        "batch device change",
        action=body.action,
        devices=sorted(ids),
        by=caller.user.username,
        applied=applied,
    )
    running = gateway.devices
    return {
        "action": body.action,
        "devices": sorted(ids),
        "reloaded": reload is not None,
        "applied": applied,
        "running": len(running.coordinators) if applied and running is not None else None,
        "disabled": sorted(running.skipped) if applied and running is not None else None,
        "total": len(site.devices),
    }


async def _reloaded(gateway: Any, site: Any, timeout_s: float = _RELOAD_WAIT_S) -> bool:
    """Wait until the gateway runs ``site`` (its devices built again); False after ``timeout_s``.

    ``Gateway`` has no event for "reload done"; its ``site`` is swapped and its device set is
    rebuilt in its run loop, so this looks at both, at a short interval, for a bounded time.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while gateway.site is not site or gateway.devices is None:
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(_RELOAD_POLL_S)
    return True


@router.get("/export.csv")
async def export_csv(
    request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("config"))]
) -> Response:
    """The buses, devices and points of the running site file as one CSV sheet (R5.2)."""
    path = ctx.gateway.site.path
    try:
        data = await asyncio.to_thread(export_site_file, path)
    except (OSError, ConfigError) as exc:
        audit(ctx, request, caller.user.username, "export_devices", path.name, "failed", str(exc)[:200])
        raise ApiError(503, "site_unreadable", detail=str(exc)[:500]) from exc
    audit(ctx, request, caller.user.username, "export_devices", path.name, "ok", f"{len(data)} bytes")
    stamp = time.strftime("%Y%m%d-%H%M", time.localtime(ctx.now()))
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="devices-{ctx.gateway.site.id}-{stamp}.csv"'},
    )
