"""Panel operations of the duty view: linkage summaries with manual start/restore, and drills.

``GET /api/linkage`` (in routes_alarms) lists the rules; here each rule also gets what it holds
now, by device and in words the client renders ("门禁 2/2 已释放"), and the operator in charge
can start a rule by hand or restore it by hand. A zone or the whole site can be put in drill
mode with an end time. Every operation is audited with the user and the client IP; the client
asks for a second click before it sends any of them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from edge.dashboard.auth import ApiError, Caller, audit, require
from edge.dashboard.context import DashboardContext, get_context
from edge.dashboard.events import clean
from edge.dashboard.names import names_for
from edge.rules_host.views import holding_summary

__all__ = ["linkage_view", "router"]

router = APIRouter(prefix="/api")
Ctx = Annotated[DashboardContext, Depends(get_context)]


def _service(ctx: DashboardContext, method: str) -> Any:
    service = ctx.gateway.alarms
    if service is None or not hasattr(service, method):
        raise ApiError(503, "unavailable", detail="this gateway runs no linkage rules")
    return service


def linkage_view(ctx: DashboardContext, rules: list[dict[str, Any]], log: list[dict[str, Any]]) -> None:
    """Add ``holding`` (per device group, in order) and zone names to each rule row, in place."""
    names = names_for(ctx.gateway.site)
    profiles = {d.id: d.config.profile or "" for d in ctx.gateway.site.devices}
    for rule in rules:
        rule["zone_names"] = [{"id": z, **names.zone_names(z)} for z in rule.get("zones", [])]
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for item in holding_summary(rule, log):
            point_key = item["point"].rsplit("/", 1)[-1]
            groups[(profiles.get(item["device"], ""), point_key, repr(item["value"]))].append(item)
        holding = []
        for (profile, point_key, _), items in groups.items():
            failed = [i for i in items if i["status"] == "failed"]
            holding.append(
                {
                    "profile": profile,
                    "point": point_key,
                    "value": items[0]["value"],
                    "total": len(items),
                    "ok": sum(1 for i in items if i["status"] == "ok"),
                    "pending": sum(1 for i in items if i["status"] == "pending"),
                    "skipped": sum(1 for i in items if i["status"] == "skipped"),
                    "failed": [
                        {"device": i["device"], **names.device_names(i["device"]), "reason": i["reason"]}
                        for i in failed
                    ],
                }
            )
        rule["holding"] = holding
        rule.pop("writes", None)


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str


class DrillBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zone: str | None = Field(default=None, description="None: the whole site")
    minutes: float = Field(gt=0, le=24 * 60)
    linkage: bool = False
    reason: str = Field(default="", max_length=500)


class DrillEndBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zone: str | None = None


async def _linkage_op(
    ctx: DashboardContext, request: Request, caller: Caller, action: str, rule: str, method: str
) -> dict[str, Any]:
    service = _service(ctx, method)
    user = caller.user.username
    try:
        done = bool(await getattr(service, method)(rule, by=user))
    except KeyError as exc:
        audit(ctx, request, user, action, rule, "unknown")
        raise ApiError(404, "unknown_rule", rule=rule) from exc
    audit(ctx, request, user, action, rule, "ok" if done else "noop")
    if not done:
        raise ApiError(409, "refused", detail=f"{action}: not possible in the rule's present state")
    return {"ok": True}


@router.post("/linkage/start")
async def linkage_start(
    body: RuleBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("confirm_linkage"))]
) -> dict[str, Any]:
    return await _linkage_op(ctx, request, caller, "linkage_manual_start", body.rule, "manual_start_linkage")


@router.post("/linkage/restore")
async def linkage_restore(
    body: RuleBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("confirm_linkage"))]
) -> dict[str, Any]:
    return await _linkage_op(
        ctx, request, caller, "linkage_manual_restore", body.rule, "manual_restore_linkage"
    )


@router.get("/drills")
async def drills(ctx: Ctx, _: Annotated[Caller, Depends(require("view"))]) -> dict[str, Any]:
    service = ctx.gateway.alarms
    rows: list[dict[str, Any]] = (
        [] if service is None or not hasattr(service, "drills") else clean(service.drills())
    )
    names = names_for(ctx.gateway.site)
    for row in rows:
        row.update(names.zone_names(row.get("zone")))
    return {"drills": rows, "zones": [names.zone_json(z) for z in names.shown_zone_ids()]}


@router.post("/drills/start")
async def drill_start(
    body: DrillBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("drill"))]
) -> dict[str, Any]:
    service = _service(ctx, "start_drill")
    until = ctx.now() + body.minutes * 60.0
    user = caller.user.username
    target = body.zone or "site"
    await service.start_drill(body.zone, by=user, until_wall=until, linkage=body.linkage, reason=body.reason)
    detail = f"until {until:.0f}, linkage {'on' if body.linkage else 'off'}; {body.reason}".strip("; ")
    audit(ctx, request, user, "drill_start", target, "ok", detail)
    return {"ok": True, "until": until}


@router.post("/drills/end")
async def drill_end(
    body: DrillEndBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("drill"))]
) -> dict[str, Any]:
    service = _service(ctx, "end_drill")
    user = caller.user.username
    done = bool(await service.end_drill(body.zone, by=user))
    audit(ctx, request, user, "drill_end", body.zone or "site", "ok" if done else "noop")
    return {"ok": done}
