"""Helpers shared by the tests: wait on conditions with deadlines, never on fixed sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from core import ports

T = TypeVar("T")

# Generous enough for a loaded 2-core CI machine; a passing condition returns at once.
DEFAULT_DEADLINE_S = 30.0


def free_port() -> int:
    return ports.free_port()


async def wait_until(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout_s: float = DEFAULT_DEADLINE_S,
    interval_s: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll ``condition`` until it returns something truthy; fail with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {message}")
        await asyncio.sleep(interval_s)


def wait_until_sync(
    condition: Callable[[], T],
    *,
    timeout_s: float = DEFAULT_DEADLINE_S,
    interval_s: float = 0.02,
    message: str = "condition",
) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {message}")
        time.sleep(interval_s)
