"""The dashboard's FastAPI application: the JSON API, the event stream and the static client.

The contract with the browser client is /work/notes/dashboard-api.md (docs/dashboard.md for
administrators). Every asset is served from ``edge/dashboard/static``: the control room has no
internet, so there is no CDN and no build step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.dashboard import (
    auth,
    routes_admin,
    routes_alarms,
    routes_devices,
    routes_ops,
    routes_panel,
    routes_site,
    routes_tech,
    routes_trust,
)
from edge.dashboard.auth import ApiError, Caller, session_caller, still_valid
from edge.dashboard.context import DashboardContext, get_context
from edge.dashboard.events import dumps
from edge.dashboard.limits import BodyLimit, BodyTooLarge

__all__ = ["STATIC_DIR", "build_app"]

_LOG = structlog.get_logger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# How often a stream checks that its session is still alive (idle timeout, logout, disabled).
_SESSION_CHECK_S = 15.0
# Only our own scripts and styles; the client draws charts as inline SVG.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", _CSP),
)
_PLACEHOLDER = (
    "<!doctype html><meta charset=utf-8><title>Gatehouse</title><p>The dashboard client is not installed."
)


class SecurityHeaders:
    """ASGI middleware: the security headers on every answer, ``no-store`` on the API's.

    Pure ASGI rather than ``@app.middleware("http")``: that wraps the request in a task group,
    which turns an exception raised while reading the body (a 413 from ``BodyLimit``) into an
    ``ExceptionGroup`` that FastAPI answers as a 400.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/api/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS:
                    if name not in headers:
                        headers[name] = value
                if api and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


def build_app(ctx: DashboardContext) -> FastAPI:
    app = FastAPI(title="Gatehouse dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg"))} for e in exc.errors()]
        return JSONResponse({"error": "invalid", "detail": detail}, status_code=422)

    @app.exception_handler(BodyTooLarge)
    async def too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        body = {"error": "too_large", "max_bytes": exc.max_bytes}
        return JSONResponse(body, status_code=413, headers={"Connection": "close"})

    app.add_middleware(SecurityHeaders)
    # Outermost: a body over its limit is refused before any other middleware or route sees it.
    app.add_middleware(BodyLimit, max_bytes=ctx.config.max_body_bytes)

    for module in (
        auth,
        routes_alarms,
        routes_panel,
        routes_site,
        routes_tech,
        routes_admin,
        routes_devices,
        routes_ops,
        routes_trust,
    ):
        app.include_router(module.router)

    @app.get("/api/events", response_class=EventSourceResponse)
    async def events(
        ctx: Annotated[DashboardContext, Depends(get_context)],
        caller: Annotated[Caller, Depends(session_caller)],
    ) -> AsyncIterator[ServerSentEvent]:
        client = ctx.hub.connect(caller.user.username)
        beat_s = ctx.config.heartbeat_s
        try:
            hello = {"server_time": ctx.now(), "heartbeat_s": beat_s}
            yield ServerSentEvent(event="hello", raw_data=dumps(hello), retry=3000)
            last_check = time.monotonic()
            while True:
                if time.monotonic() - last_check >= _SESSION_CHECK_S:
                    last_check = time.monotonic()
                    if not still_valid(ctx, caller):
                        return
                try:
                    async with asyncio.timeout(beat_s):
                        item = await client.queue.get()
                except TimeoutError:
                    # The heartbeat: a browser that misses three knows the stream is dead or
                    # stalled (a cable pulled, a hung gateway) even though nothing closed it.
                    # Any other event is a sign of life too, so a busy stream needs none.
                    yield ServerSentEvent(event="heartbeat", raw_data=dumps({"server_time": ctx.now()}))
                    continue
                if item is None:
                    return  # dropped as too slow, or the server is stopping
                event, data = item
                yield ServerSentEvent(event=event, raw_data=data)
        finally:
            ctx.hub.disconnect(client)

    @app.api_route(
        "/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    async def unknown_api(rest: str) -> JSONResponse:
        return JSONResponse({"error": "not_found", "path": f"/api/{rest}"}, status_code=404)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = STATIC_DIR / "index.html"
        if not page.is_file():
            return HTMLResponse(_PLACEHOLDER)
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    return app
