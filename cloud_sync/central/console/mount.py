"""``mount_console``: the console's accounts, routes, session principal and static client on
central's FastAPI app (``cloud_sync.central.app`` calls it once)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import structlog
from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_sync.central.console import auth, routes_admin
from cloud_sync.central.console.context import SETUP_CODE_FILE, ConsoleContext
from cloud_sync.central.console.errors import ConsoleError, console_error_handler
from cloud_sync.central.console.grants import EstateGrants
from cloud_sync.central.console.roles import CONSOLE_ROLES
from cloud_sync.central.console.session import SessionPrincipal, session_principal
from cloud_sync.webauth.accounts import AccountStore
from cloud_sync.webauth.setup_code import new_setup_code, remove_setup_code

__all__ = ["CONSOLE_DB", "STATIC_DIR", "console_data_dir", "mount_console"]

_LOG = structlog.get_logger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"
CONSOLE_DB: Final = "console.db"
LOCKOUT_MIN: Final = 15.0
MAX_ATTEMPTS: Final = 3
# Only the console's own scripts and styles; charts are inline SVG; the alarm stream is same-origin.
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS: Final = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", _CSP),
)


class ConsoleHeaders:
    """ASGI middleware: security headers on the console's pages, ``no-store`` on its API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith("/console"):
            await self.app(scope, receive, send)
            return
        api = path.startswith("/console/api/")

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


def console_data_dir(database: Path | str, signing_key: Path) -> Path:
    """Where ``console.db`` and the setup code live on this central node: beside a SQLite
    database; with PostgreSQL, systemd's ``STATE_DIRECTORY`` (``/var/lib/gatehouse-central``
    under the shipped unit), else the folder of central's signing key."""
    if isinstance(database, Path):
        return database.parent
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state else signing_key.parent


def mount_console(
    app: FastAPI,
    *,
    data_dir: Path,
    db_path: Path | None = None,
    secure_cookies: bool = False,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> ConsoleContext:
    """Serve the console at ``/console/`` with its accounts in ``db_path`` (default
    ``data_dir/console.db``, one per central node). Without accounts, a one-time setup code is
    written to ``data_dir/console-setup-code`` and logged."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = db_path or data_dir / CONSOLE_DB
    accounts = AccountStore(
        path, default_max_attempts=MAX_ATTEMPTS, lockout_min=LOCKOUT_MIN, roles=frozenset(CONSOLE_ROLES)
    )
    grants = EstateGrants(path)
    code: str | None = None
    if accounts.user_count() == 0:
        code = new_setup_code(data_dir, file_name=SETUP_CODE_FILE)
        _LOG.warning(
            "central console: no administrator yet; open /console/ and enter the setup code",
            setup_code=code,
            file=str(data_dir / SETUP_CODE_FILE),
        )
    else:
        remove_setup_code(data_dir, file_name=SETUP_CODE_FILE)
    ctx = ConsoleContext(
        accounts=accounts, grants=grants, data_dir=data_dir, setup_code=code, secure_cookies=secure_cookies,
        clock=clock, monotonic=monotonic,
    )  # fmt: skip
    app.state.console = ctx
    app.state.session_principal = session_principal
    app.add_middleware(SessionPrincipal, console=ctx)
    app.add_middleware(ConsoleHeaders)
    app.add_exception_handler(ConsoleError, console_error_handler)
    app.include_router(auth.router, include_in_schema=False)
    app.include_router(routes_admin.router, include_in_schema=False)

    index = STATIC_DIR / "index.html"

    @app.get("/console/", include_in_schema=False)
    async def console_page() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    @app.get("/console", include_in_schema=False)
    async def console_slash() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=308)

    if not any(getattr(r, "path", None) == "/" for r in app.router.routes):

        @app.get("/", include_in_schema=False)
        async def root() -> RedirectResponse:
            return RedirectResponse("/console/", status_code=307)

    app.mount("/console/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="console-static")
    return ctx
