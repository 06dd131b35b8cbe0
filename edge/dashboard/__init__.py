"""The LAN dashboard served by the gateway itself (issue 6; docs/dashboard.md).

``edge.app.Gateway`` calls :func:`enter_dashboard` when the site file has a ``dashboard:``
mapping; the returned :class:`DashboardServer` runs until the gateway's exit stack closes and
has ``host``, ``port`` and ``url``.

The server (uvicorn, FastAPI) is imported only when a dashboard starts: the site loader imports
this package to check the ``dashboard:`` section, and ``gatehouse check`` should stay quick.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from edge.dashboard.config import DashboardConfig, check_dashboard, dashboard_config

if TYPE_CHECKING:
    from edge.dashboard.context import GatewayView
    from edge.dashboard.server import DashboardError, DashboardServer

__all__ = [
    "DashboardConfig",
    "DashboardError",
    "DashboardServer",
    "check_dashboard",
    "dashboard_config",
    "enter_dashboard",
]


async def enter_dashboard(
    stack: AsyncExitStack, raw: Mapping[str, Any], *, gateway: GatewayView
) -> DashboardServer:
    """Start the dashboard for ``gateway``; it stops when ``stack`` closes."""
    from edge.dashboard.server import DashboardServer

    config = dashboard_config(raw, gateway.site)
    return await stack.enter_async_context(DashboardServer(gateway, config))


def __getattr__(name: str) -> Any:
    if name in ("DashboardServer", "DashboardError"):
        from edge.dashboard import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
