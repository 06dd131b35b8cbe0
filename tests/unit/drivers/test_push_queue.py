"""The bounded hand-over between library callbacks and ``pushed()``: batches, order, shedding."""

from __future__ import annotations

import asyncio

from drivers.base import LinkState, Reading
from drivers.push_queue import PushQueue


async def _take(queue: PushQueue, n: int) -> list[object]:
    out: list[object] = []
    batches = queue.batches()
    for _ in range(n):
        out.append(await asyncio.wait_for(anext(batches), timeout=5))
    return out


async def test_readings_come_as_one_batch_and_link_states_alone_in_order() -> None:
    q = PushQueue()
    q.put(Reading("a", 1))
    q.put(Reading("b", 2))
    q.put(LinkState(False, "gone"))
    q.put(Reading("a", 3))
    first, state, last = await _take(q, 3)
    assert first == [Reading("a", 1), Reading("b", 2)]
    assert state == LinkState(False, "gone")
    assert last == [Reading("a", 3)]
    assert len(q) == 0


async def test_a_full_queue_sheds_the_oldest_reading_never_a_link_state() -> None:
    q = PushQueue(max_items=3)
    q.put(LinkState(True))
    q.put(Reading("a", 1))
    q.put(Reading("a", 2))
    q.put(Reading("a", 3))  # full: the oldest reading (a=1) goes
    assert q.shed == 1 and len(q) == 3
    state, batch = await _take(q, 2)
    assert state == LinkState(True)
    assert batch == [Reading("a", 2), Reading("a", 3)]


async def test_the_consumer_waits_for_the_next_item() -> None:
    q = PushQueue()
    batches = q.batches()
    waiting = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0)
    assert not waiting.done()
    q.put(Reading("x", 7))
    assert await asyncio.wait_for(waiting, timeout=5) == [Reading("x", 7)]
