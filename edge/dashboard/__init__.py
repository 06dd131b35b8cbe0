"""The LAN dashboard served by the gateway itself (issue 6; docs/dashboard.md).

``edge.app.Gateway`` calls :func:`enter_dashboard` when the site file has a ``dashboard:``
mapping; the returned :class:`DashboardServer` runs until the gateway's exit stack closes and
has ``host``, ``port`` and ``url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

import structlog

from edge.dashboard.config import DashboardConfig, check_dashboard, dashboard_config
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

_LOG = structlog.get_logger(__name__)


async def enter_dashboard(
    stack: AsyncExitStack, raw: Mapping[str, Any], *, gateway: GatewayView
) -> DashboardServer:
    """Start the dashboard for ``gateway``; it stops when ``stack`` closes."""
    config = dashboard_config(raw, gateway.site)
    return await stack.enter_async_context(DashboardServer(gateway, config))
