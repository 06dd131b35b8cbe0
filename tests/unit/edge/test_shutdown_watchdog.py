"""The daemon's stop path: the first signal stops cleanly, a second one (or the deadline) exits."""

from __future__ import annotations

import asyncio

import pytest

from edge.cli import run


async def test_first_signal_stops_cleanly_second_forces_exit() -> None:
    stops: list[int] = []
    exits: list[int] = []
    watchdog = run._ShutdownWatchdog(asyncio.get_running_loop(), lambda: stops.append(1), exits.append)

    watchdog.on_signal()
    assert (stops, exits) == ([1], [])

    watchdog.on_signal()
    assert exits == [1]
    assert stops == [1], "the second signal does not ask for a clean stop again"


async def test_deadline_forces_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "SHUTDOWN_TIMEOUT_S", 0.01)
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()
    run._ShutdownWatchdog(loop, lambda: None, exited.set_result).on_signal()
    assert await asyncio.wait_for(exited, timeout=30) == 1
