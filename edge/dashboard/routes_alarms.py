"""Duty view API: the live alarm list and its operations, history (+CSV), statistics, linkage.

Everything here goes through ``edge.alarm_api.AlarmService``; the dashboard keeps no alarm state
of its own. Each operation is audited with the user and client IP.

The history search (an unanchored text match over four columns, up to 100,000 rows for the CSV)
runs on a worker thread, never on the event loop that also polls the devices, and pages by key:
each page answers ``next``, the ``(ts, id)`` cursor of its last row, which the following request
gives as ``before``.
"""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
from collections import Counter
from collections.abc import Iterator
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from edge.dashboard.auth import ApiError, Caller, audit, require
from edge.dashboard.context import DashboardContext, get_context
from edge.dashboard.csv_cells import safe_row
from edge.dashboard.events import clean
from edge.dashboard.names import names_for

__all__ = ["alarm_rows", "device_of", "router"]

router = APIRouter(prefix="/api")
Ctx = Annotated[DashboardContext, Depends(get_context)]
_INACTIVE_STATES = frozenset({"shelved", "suppressed", "out_of_service"})
_CSV_COLUMNS = (
    "time", "key", "transition", "by", "priority", "class", "message_zh", "message_en", "zone", "zone_name",
    "device", "device_name", "building", "floor", "location", "point", "value", "comment", "drill",
)  # fmt: skip


def device_of(key: str) -> str | None:
    """``site/device/point/alarm`` → ``device``; site-level alarms (``site/_site/id``) have none."""
    parts = key.split("/")
    if len(parts) < 3 or parts[1] in ("_site", "_meta"):
        return None
    return parts[1]


def alarm_rows(ctx: DashboardContext) -> list[dict[str, Any]]:
    service = ctx.gateway.alarms
    if service is None:
        return []
    rows: list[dict[str, Any]] = clean(service.active_alarms())
    names = names_for(ctx.gateway.site)
    for row in rows:
        row["device"] = device_of(str(row.get("key", "")))
        names.enrich(row, row["device"])
    return rows


def comm_fault_rows(ctx: DashboardContext) -> list[dict[str, Any]]:
    """Devices (or whole buses) the gateway cannot reach now: faults, never silence."""
    names = names_for(ctx.gateway.site)
    rows: list[dict[str, Any]] = clean(
        names.comm_faults(ctx.gateway.live.device_online, ctx.hub.offline_since)
    )
    return rows


def drill_rows(ctx: DashboardContext) -> list[dict[str, Any]]:
    """The drills running now (a zone or the whole site in test mode)."""
    service = ctx.gateway.alarms
    drills = getattr(service, "drills", None)
    if drills is None:
        return []
    rows: list[dict[str, Any]] = clean(drills())
    names = names_for(ctx.gateway.site)
    for row in rows:
        row.update(names.zone_names(row.get("zone")))
    return rows


def _service(ctx: DashboardContext) -> Any:
    service = ctx.gateway.alarms
    if service is None:
        raise ApiError(503, "unavailable", detail="this gateway runs no alarm rules")
    return service


def _flood(service: Any, rows: list[dict[str, Any]]) -> bool:
    """The rules engine shows an alarm flood as its meta alarm ``site/_meta/flood``."""
    if any(str(r.get("key", "")).endswith("/_meta/flood") for r in rows):
        return True
    flag = getattr(service, "flood_active", False)
    return bool(flag() if callable(flag) else flag)


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str


class AckBody(KeyBody):
    comment: str = Field(default="", max_length=2000)


class AckAllBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[str] = Field(max_length=10_000)


class ShelveBody(KeyBody):
    reason: str = Field(min_length=1, max_length=2000)
    minutes: float = Field(gt=0, le=7 * 24 * 60)


class CommentBody(KeyBody):
    text: str = Field(min_length=1, max_length=4000)


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str


@router.get("/alarms")
async def alarms(ctx: Ctx, _: Annotated[Caller, Depends(require("view"))]) -> dict[str, Any]:
    rows = alarm_rows(ctx)
    by_class = Counter(str(r.get("class")) for r in rows if r.get("state") not in _INACTIVE_STATES)
    service = ctx.gateway.alarms
    return {
        "alarms": rows,
        "counts": {
            "unacked": sum(1 for r in rows if r.get("unacked")),
            "active": sum(1 for r in rows if r.get("state") not in _INACTIVE_STATES),
            "shelved": sum(1 for r in rows if r.get("state") == "shelved"),
            "by_class": dict(by_class),
        },
        "flood": service is not None and _flood(service, rows),
        # what the page resynchronises from after a lost stream: nothing here is older than this
        "comm_faults": comm_fault_rows(ctx),
        # devices not heard from yet (just started or reloaded): the page may not say "normal"
        "unverified": sorted(d for d, up in ctx.gateway.live.device_online.items() if up is None),
        "drills": drill_rows(ctx),
        "server_time": ctx.now(),
    }


async def _operate(
    ctx: DashboardContext, request: Request, caller: Caller, action: str, target: str, call: Any
) -> Any:
    """Run one alarm operation, audit it and translate an unknown key into 404."""
    user = caller.user.username
    try:
        result = await call
    except KeyError as exc:
        audit(ctx, request, user, action, target, "unknown")
        raise ApiError(404, "unknown_alarm", key=target) from exc
    except ValueError as exc:
        audit(ctx, request, user, action, target, "refused", str(exc))
        raise ApiError(409, "refused", detail=str(exc)) from exc
    audit(ctx, request, user, action, target, "ok" if result is not False else "noop")
    return result


@router.post("/alarms/ack")
async def ack(
    body: AckBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("ack"))]
) -> dict[str, Any]:
    service = _service(ctx)
    call = service.acknowledge(body.key, by=caller.user.username, comment=body.comment)
    return {"ok": bool(await _operate(ctx, request, caller, "ack", body.key, call))}


@router.post("/alarms/ack_all")
async def ack_all(
    body: AckAllBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("ack"))]
) -> dict[str, Any]:
    service = _service(ctx)
    acked = 0
    for key in body.keys:
        try:
            if await service.acknowledge(key, by=caller.user.username):
                acked += 1
        except KeyError:
            continue  # it went back to normal and was forgotten meanwhile
    audit(ctx, request, caller.user.username, "ack_all", f"{len(body.keys)} alarms", "ok", f"acked {acked}")
    return {"acked": acked}


@router.post("/alarms/shelve")
async def shelve(
    body: ShelveBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("shelve"))]
) -> dict[str, Any]:
    service = _service(ctx)
    until = ctx.now() + body.minutes * 60.0
    call = service.shelve(body.key, by=caller.user.username, until_wall=until, reason=body.reason)
    ok = await _operate(ctx, request, caller, "shelve", body.key, call)
    return {"ok": bool(ok), "shelved_until": until}


@router.post("/alarms/unshelve")
async def unshelve(
    body: KeyBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("shelve"))]
) -> dict[str, Any]:
    call = _service(ctx).unshelve(body.key, by=caller.user.username)
    return {"ok": bool(await _operate(ctx, request, caller, "unshelve", body.key, call))}


@router.post("/alarms/reset")
async def reset(
    body: KeyBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("ack"))]
) -> dict[str, Any]:
    call = _service(ctx).reset(body.key, by=caller.user.username)
    return {"ok": bool(await _operate(ctx, request, caller, "reset", body.key, call))}


@router.post("/alarms/comment")
async def comment(
    body: CommentBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("comment"))]
) -> dict[str, Any]:
    call = _service(ctx).comment(body.key, by=caller.user.username, text=body.text)
    await _operate(ctx, request, caller, "comment", body.key, call)
    return {"ok": True}


# -- history, CSV, statistics ----------------------------------------------------------------


class HistoryQuery(BaseModel):
    since: float | None = Field(default=None, allow_inf_nan=False)
    until: float | None = Field(default=None, allow_inf_nan=False)
    priority: str | None = None
    klass: str | None = Field(default=None, alias="class")
    device: str | None = None
    text: str | None = None
    limit: int = Field(default=200, ge=1, le=100_000)
    # Kept for old clients; reading past 10,000 skipped rows is what ``before`` is for.
    offset: int = Field(default=0, ge=0, le=10_000)
    before: str | None = Field(default=None, pattern=r"^-?\d+(\.\d+)?(e[-+]?\d+)?:\d+$", max_length=64)

    def cursor(self) -> tuple[float, int] | None:
        if self.before is None:
            return None
        ts, _, row_id = self.before.partition(":")
        return float(ts), int(row_id)


def next_cursor(rows: list[dict[str, Any]], limit: int) -> str | None:
    """The ``before`` of the page after ``rows`` (None: this was the last page)."""
    if len(rows) < limit or not rows or rows[-1].get("id") is None:
        return None
    return f"{rows[-1]['ts']!r}:{rows[-1]['id']}"


def _history(ctx: DashboardContext, q: HistoryQuery) -> list[dict[str, Any]]:
    """The rows (worker thread: the query can scan the whole history)."""
    service = ctx.gateway.alarms
    if service is None:
        return []
    filters: dict[str, Any] = {}
    cursor = q.cursor()
    if cursor is not None:
        filters["before"] = cursor
    rows: list[dict[str, Any]] = service.history(
        since=q.since, until=q.until, priority=q.priority or None, klass=q.klass or None,
        device=q.device or None, text=q.text or None, limit=q.limit, offset=q.offset, **filters,
    )  # fmt: skip
    cleaned: list[dict[str, Any]] = clean(rows)
    names = names_for(ctx.gateway.site)
    for row in cleaned:
        device = device_of(str(row.get("key", "")))
        row["device"] = device
        names.enrich(row, device)
    return cleaned


@router.get("/alarms/history")
async def history(
    ctx: Ctx, q: Annotated[HistoryQuery, Query()], _: Annotated[Caller, Depends(require("view"))]
) -> dict[str, Any]:
    rows = await asyncio.to_thread(_history, ctx, q)
    return {"rows": rows, "next": next_cursor(rows, q.limit)}


def _timezone(ctx: DashboardContext) -> datetime.tzinfo:
    try:
        return ZoneInfo(ctx.gateway.site.config.site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return datetime.UTC


@router.get("/alarms/history.csv")
async def history_csv(
    request: Request,
    ctx: Ctx,
    q: Annotated[HistoryQuery, Query()],
    caller: Annotated[Caller, Depends(require("view"))],
) -> Response:
    if "limit" not in request.query_params:
        q = q.model_copy(update={"limit": 100_000})
    count, data = await asyncio.to_thread(_history_csv, ctx, q)
    audit(ctx, request, caller.user.username, "export_history", None, "ok", f"{count} rows")
    stamp = datetime.datetime.fromtimestamp(ctx.now(), _timezone(ctx)).strftime("%Y%m%d-%H%M")
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="alarm-history-{stamp}.csv"'},
    )


_CSV_PAGE = 5000


def _history_pages(ctx: DashboardContext, q: HistoryQuery) -> Iterator[list[dict[str, Any]]]:
    """The rows of ``q`` a page at a time, by key: a 100,000-row export never holds every row as
    dicts at once (less memory, and no long garbage-collection pause the event loop would feel)."""
    left, page = q.limit, q
    while left > 0:
        size = min(left, _CSV_PAGE)
        rows = _history(ctx, page.model_copy(update={"limit": size}))
        if rows:
            yield rows
        left -= len(rows)
        cursor = next_cursor(rows, size)
        if cursor is None:
            return
        page = page.model_copy(update={"before": cursor, "offset": 0})


def _history_csv(ctx: DashboardContext, q: HistoryQuery) -> tuple[int, bytes]:
    """(rows, the CSV file) — on a worker thread: 100,000 rows take a while to format."""
    tz = _timezone(ctx)
    out = io.StringIO()
    # The BOM makes Excel read the file as UTF-8, so Chinese text shows correctly (R2.8).
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_CSV_COLUMNS)
    count = 0
    for rows in _history_pages(ctx, q):
        count += len(rows)
        _write_csv_rows(writer, rows, tz)
    return count, out.getvalue().encode("utf-8")


def _write_csv_rows(writer: Any, rows: list[dict[str, Any]], tz: datetime.tzinfo) -> None:
    for row in rows:
        message = row.get("message") or {}
        ts = row.get("ts")
        when = datetime.datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds") if ts is not None else ""
        writer.writerow(
            safe_row(
                [
                    when,
                    row.get("key"),
                    row.get("transition"),
                    row.get("by"),
                    row.get("priority"),
                    row.get("class"),
                    message.get("zh", ""),
                    message.get("en", ""),
                    row.get("zone") or "",
                    row.get("zone_name_zh") or row.get("zone_name") or "",
                    row.get("device") or "",
                    row.get("device_name_zh") or row.get("device_name") or "",
                    row.get("building") or "",
                    row.get("floor") or "",
                    row.get("location") or "",
                    row.get("point") or "",
                    "" if row.get("value") is None else row.get("value"),
                    row.get("comment") or "",
                    "drill" if row.get("drill") else "",
                ]
            )  # fmt: skip
        )


@router.get("/alarms/stats")
async def stats(
    ctx: Ctx,
    _: Annotated[Caller, Depends(require("view"))],
    days: Annotated[float, Query(gt=0, le=3660)] = 30,
) -> dict[str, Any]:
    service = ctx.gateway.alarms
    if service is None:
        return {"per_day": [], "top": [], "counters": {}}
    now = ctx.now()
    # Worker thread: two GROUP BYs over the period's history. (The engine counters it also reads
    # are copied with C-level dict merges, which hold the GIL: no torn read.)
    stats = await asyncio.to_thread(service.statistics, since=now - days * 86400.0, until=now)
    result: dict[str, Any] = clean(stats)
    return result


# -- linkage ---------------------------------------------------------------------------------


@router.get("/linkage")
async def linkage(ctx: Ctx, _: Annotated[Caller, Depends(require("view"))]) -> dict[str, Any]:
    service = ctx.gateway.alarms
    if service is None:
        return {"rules": [], "log": []}
    from edge.dashboard.routes_panel import linkage_view  # it imports this module's helpers

    rules: list[dict[str, Any]] = clean(service.linkage_rules())
    log: list[dict[str, Any]] = clean(await asyncio.to_thread(service.linkage_log, limit=500))
    linkage_view(ctx, rules, log)
    return {"rules": rules, "log": log[:100]}


@router.post("/linkage/confirm")
async def linkage_confirm(
    body: RuleBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("confirm_linkage"))]
) -> dict[str, Any]:
    call = _service(ctx).confirm_linkage(body.rule, by=caller.user.username)
    return {"ok": bool(await _operate(ctx, request, caller, "linkage_confirm", body.rule, call))}


@router.post("/linkage/cancel")
async def linkage_cancel(
    body: RuleBody, request: Request, ctx: Ctx, caller: Annotated[Caller, Depends(require("confirm_linkage"))]
) -> dict[str, Any]:
    call = _service(ctx).cancel_linkage(body.rule, by=caller.user.username)
    return {"ok": bool(await _operate(ctx, request, caller, "linkage_cancel", body.rule, call))}
