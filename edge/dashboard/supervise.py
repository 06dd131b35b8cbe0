"""Background tasks that come back: a crashed housekeeping task is restarted, and shown.

The dashboard runs a few loops beside its HTTP server (the event hub's flusher, the trend
writer, session and audit housekeeping). One that raises would otherwise die silently: the
trend chart would stop filling, or sessions would never be purged, with nothing on the health
page. :class:`Supervisor` runs each as a named task that, on an exception, logs the traceback,
counts the restart, waits (1 s doubling to a minute, so a loop that fails at once does not spin)
and runs the factory again. ``status()`` is what ``/healthz`` and the health page show.
Cancellation (the server stopping) is never caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

__all__ = ["Supervisor", "TaskState"]

_LOG = structlog.get_logger(__name__)

_FIRST_PAUSE_S = 1.0
_MAX_PAUSE_S = 60.0
# A run that lasted this long was healthy: the next failure starts the pauses afresh.
_HEALTHY_RUN_S = 300.0


@dataclass
class TaskState:
    name: str
    restarts: int = 0
    last_error: str | None = None
    last_failed_at: float | None = None  # wall time
    running: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "running": self.running,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_failed_at": self.last_failed_at,
        }


@dataclass
class Supervisor:
    prefix: str = "dashboard"
    wall: Callable[[], float] = time.time
    first_pause_s: float = _FIRST_PAUSE_S
    states: dict[str, TaskState] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, name: str, factory: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Run ``factory()`` as task ``prefix:name``, again after each crash, until cancelled."""
        state = self.states[name] = TaskState(name)
        task = asyncio.create_task(self._keep(state, factory), name=f"{self.prefix}:{name}")
        self._tasks.append(task)
        return task

    async def _keep(self, state: TaskState, factory: Callable[[], Awaitable[None]]) -> None:
        pause = self.first_pause_s
        while True:
            started = time.monotonic()
            state.running = True
            try:
                await factory()
            except Exception as exc:  # noqa: BLE001 - any bug in a loop: log, show, restart
                state.running = False
                state.restarts += 1
                state.last_error = f"{type(exc).__name__}: {exc}"[:300]
                state.last_failed_at = self.wall()
                if time.monotonic() - started >= _HEALTHY_RUN_S:
                    pause = self.first_pause_s
                _LOG.exception(
                    "dashboard task crashed; restarting",
                    task=state.name,
                    restarts=state.restarts,
                    pause_s=pause,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, _MAX_PAUSE_S)
            else:
                state.running = False
                return  # a loop that ends by itself is done (none of ours does)

    def status(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.states.values()]

    def failing(self) -> list[TaskState]:
        """Tasks that crashed and are waiting to run again."""
        return [s for s in self.states.values() if not s.running and s.restarts > 0]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
