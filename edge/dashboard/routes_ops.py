"""``/healthz`` and ``/metrics`` on the dashboard's server (docs/operations.md, "Metrics and health").

``/healthz`` needs no login: it says only what is unhealthy (JSON; 200 healthy, 503 not), which
a load balancer, a watchdog script or a technician's phone can read. ``/metrics`` (Prometheus
text format) shows device names and traffic, so it answers only a bearer token
(``dashboard.metrics_token_file``) or an allow-listed peer address (``dashboard.metrics_allow``,
loopback by default). The peer is the TCP peer, never a forwarded header.
"""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edge.dashboard.context import DashboardContext, get_context
from edge.dashboard.routes_trust import trust_problems, trust_status
from edge.metrics import BacklogCache, build_registry, health

__all__ = ["router"]

router = APIRouter()
Ctx = Annotated[DashboardContext, Depends(get_context)]


def _backlog(ctx: DashboardContext) -> BacklogCache:
    cache = ctx.extra.get("backlog")
    if cache is None:
        cache = ctx.extra["backlog"] = BacklogCache(ctx.gateway)
    assert isinstance(cache, BacklogCache)
    return cache


def _allowed(ctx: DashboardContext, request: Request) -> bool:
    cfg = ctx.config
    token_file = cfg.metrics_token_file
    header = request.headers.get("authorization", "")
    if token_file is not None and header.lower().startswith("bearer "):
        try:
            wanted = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError:
            return False
        if wanted and hmac.compare_digest(header[7:].strip().encode(), wanted.encode()):
            return True
    peer = request.client.host if request.client is not None else ""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in cfg.metrics_allow)


@router.get("/healthz", include_in_schema=False)
async def healthz(ctx: Ctx) -> JSONResponse:
    cache = _backlog(ctx)
    await cache.refresh()
    body = health(ctx.gateway, cache)
    # The dashboard's own background loops: one that crashed is being restarted (and says why).
    body["checks"]["dashboard_tasks"] = ctx.tasks.status()
    # Revoked, refused at the broker, certificate expired: central gets nothing, say why.
    trust = trust_status(ctx.gateway)
    body["checks"]["trust"] = {k: v for k, v in trust.items() if k != "identity"}
    body["checks"]["identity"] = trust["identity"]
    for problem in trust_problems(trust):
        body["problems"].append(problem)
        body["healthy"] = False
    for state in ctx.tasks.failing():
        body["problems"].append(
            {
                "check": "dashboard",
                "detail": f"task {state.name} crashed ({state.last_error}); restarted {state.restarts}x",
            }
        )
        body["healthy"] = False
    return JSONResponse(
        body, status_code=200 if body["healthy"] else 503, headers={"Cache-Control": "no-store"}
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(ctx: Ctx, request: Request) -> Response:
    if not _allowed(ctx, request):
        return JSONResponse(
            {"error": "forbidden", "detail": "a bearer token or an allow-listed address is needed"},
            status_code=403,
            headers={"WWW-Authenticate": "Bearer"},
        )
    cache = _backlog(ctx)
    await cache.refresh()
    registry = ctx.extra.get("registry")
    if registry is None:
        registry = ctx.extra["registry"] = build_registry(ctx.gateway, cache)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
