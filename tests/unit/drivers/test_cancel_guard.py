"""A cancellation swallowed inside a library is re-raised by the driver's guard."""

from __future__ import annotations

import asyncio

import pytest

from drivers.base import raise_if_cancelling


async def _library_call_that_swallows_cancel(started: asyncio.Event) -> str:
    # What Python 3.11's wait_for does when the answer and the cancel arrive together.
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        return "answer"
    return "unreachable"


async def test_swallowed_cancel_is_raised_again() -> None:
    started = asyncio.Event()
    after: list[str] = []

    async def poll() -> None:
        answer = await _library_call_that_swallows_cancel(started)
        raise_if_cancelling()
        after.append(answer)

    task = asyncio.create_task(poll())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert after == []


async def test_no_effect_without_a_cancel() -> None:
    raise_if_cancelling()
