"""What every dashboard route needs: the gateway it shows, its stores and the event hub."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Request

from core.model import Clock
from edge.config.site import Site
from edge.dashboard.accounts import AccountStore
from edge.dashboard.config import DashboardConfig
from edge.dashboard.events import EventHub
from edge.dashboard.history import TrendStore
from edge.dashboard.supervise import Supervisor
from edge.dashboard.throttle import LoginThrottle
from edge.live import LiveState

if TYPE_CHECKING:
    import httpx

__all__ = ["DashboardContext", "GatewayView", "context_of", "get_context"]


class GatewayView(Protocol):
    """The part of ``edge.app.Gateway`` the dashboard reads (a fake fits in unit tests)."""

    site: Site
    live: LiveState
    alarms: Any

    @property
    def clock(self) -> Clock: ...  # read-only here, so a fake may hold a ManualClock

    @property
    def outbox(self) -> Any: ...

    @property
    def uplink(self) -> Any: ...

    @property
    def devices(self) -> Any: ...

    async def write(
        self, device_id: str, key: str, value: Any, *, verify: bool = True, by: str | None = None
    ) -> Any: ...


@dataclass
class DashboardContext:
    gateway: GatewayView
    config: DashboardConfig
    accounts: AccountStore
    trends: TrendStore
    hub: EventHub
    started_mono: float
    http: httpx.AsyncClient | None = None  # for the simulator control API
    extra: dict[str, Any] = field(default_factory=dict)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)  # sign-in and setup, per address
    setup_code: str | None = None  # the one-time code of the first administrator (None: no setup)
    tasks: Supervisor = field(default_factory=Supervisor)  # background loops, restarted on a crash

    @property
    def clock(self) -> Clock:
        return self.gateway.clock

    def now(self) -> float:
        return self.gateway.clock.wall()


def context_of(request: Request) -> DashboardContext:
    ctx: DashboardContext = request.app.state.ctx
    return ctx


async def get_context(request: Request) -> DashboardContext:
    """The dependency (async, so FastAPI does not send it to a worker thread)."""
    return context_of(request)
