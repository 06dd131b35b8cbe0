"""Technician view: raw registers, a confirmed test write, the configuration check, scenarios.

Raw blocks are read with the driver's own read plan through the device's link. The link lets
one request through at a time (``ModbusTcpLink`` holds a lock per connection, shared by every
device on it), so a technician's read waits its turn behind the coordinator's polls instead of
racing them on the wire; the coordinator exposes no raw-read command of its own. Writes go
through ``Gateway.write`` → the coordinator's command queue, like every command, naming the
technician (``by=``): the point is then under manual control, and no linkage step writes it
(``linkage.skipped``, reason manual override) until someone with the write right releases it
here (``POST /api/tech/release``, audited). ``GET /api/tech/overrides`` lists those points.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConfigError, DeviceError, TransportError
from edge.dashboard.auth import ApiError, Caller, audit, require
from edge.dashboard.context import DashboardContext, get_context
from edge.dashboard.events import clean, json_value

if TYPE_CHECKING:
    import httpx

__all__ = ["router"]

_LOG = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/tech")
Ctx = Annotated[DashboardContext, Depends(get_context)]
_RAW_READ_TIMEOUT_S = 10.0


@router.get("/check")
async def check(ctx: Ctx, _: Annotated[Caller, Depends(require("commission"))]) -> dict[str, Any]:
    from edge.config.loader import load_site

    path = ctx.gateway.site.path
    problems: list[str] = []
    try:
        await asyncio.to_thread(load_site, path)
    except OSError as exc:
        return {"ok": False, "problems": [f"{path}: cannot read: {exc.strerror or exc}"], "file": str(path)}
    except ConfigError as exc:
        problems = [str(p) for p in exc.problems]
    return {"ok": not problems, "problems": problems, "file": str(path)}


@router.get("/{device_id}/registers")
async def registers(
    device_id: str, ctx: Ctx, _: Annotated[Caller, Depends(require("commission"))]
) -> dict[str, Any]:
    running = ctx.gateway.devices
    driver = None if running is None else running.drivers.get(device_id)
    if driver is None:
        raise ApiError(404, "not_running", device=device_id)
    site, live = ctx.gateway.site, ctx.gateway.live
    resolved = next((d for d in site.devices if d.id == device_id), None)
    spec = {} if resolved is None else {p.id: p for p in resolved.points}
    blocks: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    for block in driver.poll_groups():
        entry: dict[str, Any] = {"table": str(block.table), "start": block.start, "count": block.count}
        try:
            async with asyncio.timeout(_RAW_READ_TIMEOUT_S):
                values = await driver.link.read(driver.unit, block.table, block.start, block.count)
        except (TransportError, DeviceError, TimeoutError) as exc:
            entry.update(values=None, error=f"{type(exc).__name__}: {exc}")
            values = None
        else:
            entry["values"] = list(values)
        blocks.append(entry)
        for bp in block.points:
            point = spec.get(bp.key)
            sample = live.latest.get(site.point_id(device_id, bp.key))
            points.append(
                {
                    "id": bp.key,
                    "table": str(block.table),
                    "address": block.start + bp.offset,
                    "type": None if point is None else str(getattr(point, "type", "")),
                    "raw": None if values is None else list(values[bp.offset : bp.offset + bp.count]),
                    "value": None if sample is None else json_value(sample.value),
                    "quality": None if sample is None else sample.quality.name.lower(),
                }
            )
    return {"device": device_id, "unit": driver.unit, "blocks": blocks, "points": points}


class WriteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    point: str
    value: bool | int | float | str
    confirm: bool = False


@router.post("/{device_id}/write")
async def write(
    device_id: str,
    body: WriteBody,
    request: Request,
    ctx: Ctx,
    caller: Annotated[Caller, Depends(require("write"))],
) -> dict[str, Any]:
    if not body.confirm:
        raise ApiError(400, "confirm", detail="a test write needs confirm: true")
    target = f"{device_id}/{body.point}"
    user = caller.user.username
    try:
        # by=: a hand-written point is overridden, so automation never undoes it (docs/rules.md)
        read_back = await ctx.gateway.write(device_id, body.point, body.value, verify=True, by=user)
    except KeyError as exc:
        audit(ctx, request, user, "write", target, "unknown", str(body.value))
        raise ApiError(404, "unknown_point", detail=str(exc)) from exc
    except ValueError as exc:
        audit(ctx, request, user, "write", target, "refused", f"{body.value}: {exc}")
        raise ApiError(400, "refused", detail=str(exc)) from exc
    except (TransportError, DeviceError) as exc:
        audit(ctx, request, user, "write", target, "failed", f"{body.value}: {exc}")
        raise ApiError(502, "device", detail=f"{type(exc).__name__}: {exc}") from exc
    audit(ctx, request, user, "write", target, "ok", f"value={body.value} read_back={read_back} overridden")
    return {"ok": True, "read_back": json_value(read_back), "overridden": True}


def _overridden(ctx: DashboardContext) -> list[dict[str, Any]]:
    service = ctx.gateway.alarms
    listing = getattr(service, "overrides", None)
    rows: list[dict[str, Any]] = [] if listing is None else clean(listing())
    return rows


@router.get("/overrides")
async def overrides(ctx: Ctx, _: Annotated[Caller, Depends(require("view"))]) -> dict[str, Any]:
    """Points under manual control: automation leaves them alone until they are released."""
    return {"overrides": _overridden(ctx)}


class ReleaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    point: str = Field(min_length=1, max_length=512, description="site/device/point")


@router.post("/release")
async def release(
    body: ReleaseBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("write"))]
) -> dict[str, Any]:
    """Hand a point back to automation (the next linkage step may write it again)."""
    user = caller.user.username
    service = ctx.gateway.alarms
    done = service is not None and bool(await service.release_override(body.point, by=user))
    audit(ctx, request, user, "override_release", body.point, "ok" if done else "not_found")
    if not done:
        raise ApiError(404, "not_overridden", point=body.point)
    return {"ok": True, "overrides": _overridden(ctx)}


# -- simulator scenarios ---------------------------------------------------------------------


class InjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: str = Field(min_length=1)
    scenario: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    stop: bool = False  # end the scenario instead of starting it


def _simulator(ctx: DashboardContext) -> tuple[httpx.AsyncClient, str]:
    if ctx.http is None or ctx.config.simulator_api is None:
        raise ApiError(404, "no_simulator", detail="dashboard.simulator_api is not configured")
    return ctx.http, ctx.config.simulator_api


@router.get("/scenarios")
async def scenarios(ctx: Ctx, _: Annotated[Caller, Depends(require("commission"))]) -> dict[str, Any]:
    if ctx.config.simulator_api is None:
        return {"available": False, "devices": {}, "scenarios": {}}
    http, base = _simulator(ctx)
    import httpx  # noqa: PLC0415 - loaded only where a simulator is configured (see server.py)

    try:
        catalogue = (await http.get(f"{base}/scenarios")).raise_for_status().json()
        devices = (await http.get(f"{base}/devices")).raise_for_status().json()
    except (httpx.HTTPError, ValueError) as exc:
        _LOG.warning("dashboard.simulator_unreachable", url=base, error=str(exc))
        return {"available": False, "devices": {}, "scenarios": {}, "error": str(exc)}
    result: dict[str, Any] = clean(
        {"available": True, "scenarios": catalogue, "devices": {d["id"]: d for d in devices}}
    )
    return result


@router.post("/scenarios/inject")
async def inject(
    body: InjectBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("simulate"))]
) -> dict[str, Any]:
    http, base = _simulator(ctx)
    import httpx  # noqa: PLC0415 - loaded only where a simulator is configured (see server.py)

    url = f"{base}/devices/{body.device}/scenarios/{body.scenario}"
    target = f"{body.device}/{body.scenario}"
    action = "scenario_stop" if body.stop else "inject"
    try:
        response = await (http.delete(url) if body.stop else http.post(url, json=body.params))
    except httpx.HTTPError as exc:
        audit(ctx, request, caller.user.username, action, target, "failed", str(exc))
        raise ApiError(502, "simulator", detail=str(exc)) from exc
    if response.is_error:
        audit(ctx, request, caller.user.username, action, target, "refused", response.text[:500])
        raise ApiError(response.status_code if response.status_code < 500 else 502, "simulator",
                       detail=response.text[:500])  # fmt: skip
    audit(ctx, request, caller.user.username, action, target, "ok", str(body.params)[:500])
    try:
        result = response.json()
    except ValueError:
        result = None
    return {"ok": True, "result": clean(result)}
