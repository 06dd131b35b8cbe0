"""The dashboard server: uvicorn inside the gateway's event loop, as named tasks.

``DashboardServer`` is an async context manager. Entering opens the dashboard database and the
trend file beside it, binds the listening socket (so a port in use fails here, as an error,
rather than inside uvicorn, which would call ``sys.exit``), and starts the HTTP server and, under
a ``Supervisor`` (restarted after a crash and shown on ``/healthz`` and the health page), the
event hub's flusher, the trend writer and the session/audit housekeeping. Leaving ends every
event stream, asks uvicorn to shut down (bounded by a grace period) and closes the stores.

uvicorn's ``Server.serve`` installs SIGINT/SIGTERM handlers when run in the main thread, which
would take the gateway's own signal handling (SIGTERM flush, SIGHUP reload) away; the subclass
below makes ``capture_signals`` a no-op, so the gateway stays in charge of its process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Generator
from types import TracebackType
from typing import Any

import structlog
import uvicorn

from core.errors import GatehouseError
from edge.dashboard.accounts import AccountStore
from edge.dashboard.app import build_app
from edge.dashboard.config import DashboardConfig, is_loopback
from edge.dashboard.context import DashboardContext, GatewayView
from edge.dashboard.events import EventHub
from edge.dashboard.history import TrendStore, trends_path
from edge.dashboard.setup_code import new_setup_code, remove_setup_code

__all__ = ["DashboardError", "DashboardServer"]

_LOG = structlog.get_logger(__name__)

_START_TIMEOUT_S = 30.0
_GRACE_S = 3.0
_SESSION_PURGE_S = 600.0


class DashboardError(GatehouseError):
    """The dashboard could not start (e.g. its port is taken)."""


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The gateway owns the process's signals; it stops us by leaving the context.
        yield


class DashboardServer:
    def __init__(self, gateway: GatewayView, config: DashboardConfig) -> None:
        self.gateway = gateway
        self.config = config
        self.host = config.host
        self.port = config.port
        self.ctx: DashboardContext | None = None
        self._server: _EmbeddedServer | None = None
        self._socket: socket.socket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe_trend: Any = None
        # The one-time code for creating the first administrator; None once an account exists.
        self.setup_code: str | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.config.https else "http"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    async def __aenter__(self) -> DashboardServer:
        cfg, gw = self.config, self.gateway
        db_path = gw.site.data_dir / cfg.db
        accounts = AccountStore(
            db_path,
            default_timeout_min=cfg.session_timeout_min,
            default_max_attempts=cfg.max_login_attempts,
            lockout_min=cfg.lockout_min,
        )
        trends = TrendStore(
            trends_path(db_path),
            interval_s=cfg.history_interval_s,
            history_days=cfg.history_days,
            clock=gw.clock,
            legacy=db_path,
        )
        hub = EventHub(
            gw.live,
            gw.alarms,
            queue_size=cfg.client_queue,
            values_interval_s=cfg.values_interval_s,
            wall=gw.clock.wall,
        )
        http = None
        if cfg.simulator_api:
            # Only a commissioning setup talks to a simulator: httpx (with click) is 3 MB that
            # a gateway in service never loads.
            import httpx  # noqa: PLC0415

            http = httpx.AsyncClient(timeout=10.0)
        self.ctx = DashboardContext(gw, cfg, accounts, trends, hub, time.monotonic(), http)
        if accounts.user_count() == 0:
            self.ctx.setup_code = self.setup_code = new_setup_code(gw.site.data_dir)
        else:
            remove_setup_code(gw.site.data_dir)
        try:
            self._socket = self._bind()
            config = uvicorn.Config(
                build_app(self.ctx),
                lifespan="off",
                log_config=None,
                access_log=False,
                proxy_headers=False,  # the client IP in the audit log is the peer's, never a header's
                server_header=False,
                timeout_graceful_shutdown=int(_GRACE_S),
                ssl_certfile=cfg.tls_cert if cfg.https else None,
                ssl_keyfile=cfg.tls_key if cfg.https else None,
            )
            self._server = _EmbeddedServer(config)
            hub.start()
            self._unsubscribe_trend = gw.live.subscribe(trends.add)
            self._tasks = [
                asyncio.create_task(self._server.serve(sockets=[self._socket]), name="dashboard:http")
            ]
            tasks = self.ctx.tasks
            tasks.wall = gw.clock.wall
            tasks.start("events", hub.run)
            tasks.start("trend", trends.run)
            tasks.start("sessions", lambda: self._housekeeping(accounts))
            await self._started()
        except BaseException:
            await self._close()
            raise
        _LOG.info("dashboard started", url=self.url, db=str(db_path), setup_needed=accounts.user_count() == 0)
        if self.setup_code is not None:
            # the journal is where an installer finds it (gatehouse run prints it as well)
            _LOG.warning(
                "dashboard setup code: give it on the setup page to create the first administrator",
                setup_code=self.setup_code,
                file=str(gw.site.data_dir / "dashboard-setup-code"),
            )
        if not cfg.https and not is_loopback(self.host):
            # only when the site file says tls: off (check_dashboard refuses it otherwise)
            _LOG.warning(
                "dashboard serves plain HTTP on the network (dashboard.tls: off): passwords and session"
                " cookies cross the LAN readable; see docs/dashboard.md for HTTPS from the site CA",
                listen=cfg.listen,
            )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()
        _LOG.info("dashboard stopped")

    # -- internals ---------------------------------------------------------------------------

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise DashboardError(
                f"dashboard: cannot listen on {self.config.listen}: {exc.strerror or exc}"
            ) from exc
        self.port = int(sock.getsockname()[1])  # listen: host:0 picks a free port
        return sock

    async def _started(self) -> None:
        server, serve = self._server, self._tasks[0]
        assert server is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if serve.done():
                error = serve.exception() if not serve.cancelled() else None
                raise DashboardError(f"dashboard: the HTTP server stopped while starting: {error!r}")
            if time.monotonic() > deadline:
                raise DashboardError("dashboard: the HTTP server did not start in time")
            await asyncio.sleep(0.01)

    async def _housekeeping(self, accounts: AccountStore) -> None:
        """Drop dead sessions and audit rows past ``audit_days``, so the database stays bounded."""
        keep_s = self.config.audit_days * 86400.0
        while True:
            now = self.gateway.clock.wall()
            accounts.purge_sessions(now)
            accounts.purge_failures(now)
            accounts.purge_audit(now - keep_s)
            await asyncio.sleep(_SESSION_PURGE_S)

    async def _close(self) -> None:
        ctx, server = self.ctx, self._server
        if ctx is not None:
            ctx.hub.close()  # ends every event stream, so uvicorn can finish its connections
        if server is not None:
            server.should_exit = True
        serve = self._tasks[0] if self._tasks else None
        if serve is not None:
            try:
                async with asyncio.timeout(_GRACE_S + 5.0):
                    await asyncio.shield(serve)
            except TimeoutError:
                _LOG.warning("dashboard: HTTP server did not stop in time; cancelling")
            except Exception:  # noqa: BLE001 - the server already failed; log it and go on closing
                _LOG.exception("dashboard: HTTP server failed")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if ctx is not None:
            await ctx.tasks.stop()
        if self._unsubscribe_trend is not None:
            self._unsubscribe_trend()
            self._unsubscribe_trend = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if ctx is not None:
            if ctx.http is not None:
                await ctx.http.aclose()
            ctx.trends.close()
            ctx.accounts.close()
