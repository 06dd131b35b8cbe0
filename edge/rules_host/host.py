"""What the rules runtime needs from the gateway that hosts it, as a protocol.

The gateway (``edge.app.Gateway``) starts the rules runtime; naming the few things the runtime
uses here, instead of importing the gateway class, keeps the arrow one way: the app knows the
rules host, the rules host knows only this contract.
"""

from __future__ import annotations

from typing import Any, Protocol

from core.model import Clock
from edge.config.site import Site
from edge.outbox import Outbox

__all__ = ["RulesGateway"]


class RulesGateway(Protocol):
    @property
    def clock(self) -> Clock: ...

    @property
    def site(self) -> Site: ...

    @property
    def outbox(self) -> Outbox: ...

    async def devices_running(self) -> None:
        """Return once the devices are running."""

    async def write(
        self,
        device_id: str,
        key: str,
        value: Any,
        *,
        verify: bool = True,
        by: str | None = None,
        priority: int | None = None,
    ) -> Any:
        """Write a point through its device's coordinator; returns the read-back value."""
