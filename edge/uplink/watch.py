"""The daemon's side of ``edge.uplink.behind``: read the backlog, raise and clear the alarm.

Every ``behind_check_s`` the watcher reads the outbox's ``backlog()`` (two indexed queries on its
database thread), feeds :class:`~edge.uplink.behind.BacklogTrend` and the alarm, and on a change:

* logs a warning (raised) or an info line (cleared) with the message, e.g. ``uplink behind by
  95 s / backlog growing at 0.61 MB/s, quota full in 53 min``;
* stores a ``system.alarm`` event with ``code: uplink_behind`` (``active: true`` / ``false``, the
  figures and the message) in the outbox's event lane, which central receives ahead of any
  telemetry (``docs/protocol.md``), as it does the outbox's own ``outbox_full`` alarm;
* hands the point ``SITE/_uplink/behind`` (true while raised) to the gateway's sample path, like
  a serial port's ``SITE/_bus/BUS``: the LAN dashboard's live view, the rules and central see it.

The latest figures are kept for ``/metrics`` (``edge.metrics``): behind seconds, growth rate,
quota-full time and whether the alarm is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import structlog

from core.errors import StorageError
from core.model import Event
from edge.uplink.behind import BacklogTrend, BehindAlarm, BehindChange, Observation, Trend

__all__ = ["BacklogSource", "UplinkWatch", "behind_from_backlog", "watching"]

_LOG = structlog.get_logger(__name__)


class BacklogSource(Protocol):
    async def backlog(self) -> dict[str, Any]: ...

    async def put_event(self, event: Event) -> None: ...


def behind_from_backlog(backlog: dict[str, Any], now_wall: float) -> float:
    """Age of the oldest unacknowledged record over every lane (0 when nothing waits)."""
    stamps = [info["oldest_ts"] for info in backlog["lanes"].values() if info.get("oldest_ts") is not None]
    return max(0.0, now_wall - min(stamps)) if stamps else 0.0


class UplinkWatch:
    def __init__(
        self,
        outbox: BacklogSource,
        *,
        on_change: Callable[[BehindChange], Awaitable[None]] | None = None,
        raise_s: float = 60.0,
        clear_s: float = 10.0,
        window_s: float = 60.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._outbox = outbox
        self._on_change = on_change
        self._trend = BacklogTrend(window_s=window_s)
        self.alarm = BehindAlarm(raise_s=raise_s, clear_s=clear_s)
        self._wall = wall
        self._monotonic = monotonic
        self.latest: Trend | None = None

    @property
    def active(self) -> bool:
        return self.alarm.active

    async def check(self) -> BehindChange | None:
        """One observation; reports and returns the change, if any."""
        backlog = await self._outbox.backlog()
        obs = Observation(
            at_s=self._monotonic(),
            behind_s=behind_from_backlog(backlog, self._wall()),
            used_bytes=int(backlog["used_bytes"]),
            quota_bytes=int(backlog["quota_bytes"]),
        )
        self.latest = trend = self._trend.add(obs)
        change = self.alarm.update(trend)
        if change is not None:
            await self._report(change)
        return change

    async def _report(self, change: BehindChange) -> None:
        data = change.as_data()
        if change.active:
            _LOG.warning("uplink behind", **data)
        else:
            _LOG.info("uplink caught up", **data)
        await self._outbox.put_event(Event("system.alarm", "uplink", self._wall(), data))
        if self._on_change is not None:
            await self._on_change(change)

    async def run(self, every_s: float) -> None:
        while True:
            try:
                await self.check()
            except (StorageError, RuntimeError) as exc:
                # An outbox that cannot answer shows up in /healthz; try again next time.
                _LOG.warning("uplink watch: backlog not readable", error=str(exc))
            await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def watching(watch: UplinkWatch, *, every_s: float) -> AsyncIterator[UplinkWatch]:
    """Run ``watch`` in a named task for the duration of the block."""
    task = asyncio.create_task(watch.run(every_s), name="uplink-watch")
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
