"""The coordinator against a scripted in-memory driver (a pure unit test of its logic; the
integration tests run it against real pymodbus servers)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from core.errors import DeviceError, DeviceTimeout
from core.model import Event, Quality, Reason, Sample, SystemClock, Value
from drivers.base import Reading
from edge.coordinator import DeviceCoordinator
from tests.support import wait_until


@dataclass(frozen=True)
class Group:
    interval_s: float
    keys: tuple[str, ...]


class ScriptedDriver:
    device_id = "dev"

    def __init__(self, groups: list[Group]) -> None:
        self.groups = groups
        self.values: dict[str, Value] = {k: 0 for g in groups for k in g.keys}
        self.dead = False
        self.refuse: set[tuple[str, ...]] = set()
        self.reads: list[tuple[float, tuple[str, ...]]] = []
        self.writes: list[tuple[str, Value]] = []

    def poll_groups(self) -> list[Group]:
        return self.groups

    async def read(self, group: Group) -> list[Reading]:  # type: ignore[override]
        self.reads.append((asyncio.get_running_loop().time(), group.keys))
        if self.dead:
            raise DeviceTimeout("no answer")
        if group.keys in self.refuse:
            raise DeviceError("illegal data address", code=2)
        return [Reading(k, self.values[k]) for k in group.keys]

    async def write(self, key: str, value: Value, *, verify: bool = True) -> Value | None:
        if self.dead:
            raise DeviceTimeout("no answer")
        self.writes.append((key, value))
        self.values[key] = value
        return value if verify else None

    def pushed(self) -> AsyncIterator[Reading] | None:
        return None


class Recorder:
    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.events: list[Event] = []

    async def sink(self, samples: list[Sample]) -> None:
        self.samples.extend(samples)

    async def event(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def make(driver: ScriptedDriver, rec: Recorder, backoff_max_s: float = 60.0) -> DeviceCoordinator:
    ids = {k: f"site/dev/{k}" for g in driver.groups for k in g.keys}
    return DeviceCoordinator(
        device_id="dev",
        driver=driver,  # type: ignore[arg-type]
        point_ids=ids,
        sink=rec.sink,
        events=rec.event,
        clock=SystemClock(),
        backoff_max_s=backoff_max_s,
        rng=random.Random(1),
    )


async def test_polls_each_group_at_its_own_interval() -> None:
    driver = ScriptedDriver([Group(0.02, ("fast",)), Group(0.5, ("slow",))])
    rec = Recorder()
    coord = make(driver, rec)
    task = asyncio.create_task(coord.run())
    try:
        await wait_until(
            lambda: sum(1 for _, k in driver.reads if k == ("fast",)) >= 20, message="fast polls"
        )
        slow = sum(1 for _, k in driver.reads if k == ("slow",))
        fast = sum(1 for _, k in driver.reads if k == ("fast",))
        assert fast > 4 * max(slow, 1)
        assert {s.point_id for s in rec.samples} >= {"site/dev/fast"}
        assert rec.kinds() == ["device.online"]
    finally:
        task.cancel()


async def test_dead_device_goes_offline_once_and_backs_off() -> None:
    driver = ScriptedDriver([Group(0.01, ("a", "b"))])
    driver.dead = True
    rec = Recorder()
    coord = make(driver, rec, backoff_max_s=60)
    task = asyncio.create_task(coord.run())
    try:
        await wait_until(lambda: coord.online is False, message="offline")
        await wait_until(lambda: len(driver.reads) >= 2, message="a second probe")
        # Backoff doubles from 1 s: the 2nd probe is ~1 s after the 1st although the interval is 10 ms.
        gap = driver.reads[1][0] - driver.reads[0][0]
        assert gap >= 0.7
        assert rec.kinds() == ["device.offline"]
        bad = [s for s in rec.samples if s.quality is Quality.BAD]
        assert {s.point_id for s in bad} == {"site/dev/a", "site/dev/b"}
        assert all(s.reason is Reason.COMM_FAILURE for s in bad)
        assert len(bad) == 2  # marked bad once, not on every failed probe

        driver.dead = False
        await wait_until(lambda: coord.online is True, message="back online")
        assert rec.kinds() == ["device.offline", "device.online"]
    finally:
        task.cancel()


async def test_refused_block_marks_only_its_points_bad() -> None:
    driver = ScriptedDriver([Group(0.02, ("a",)), Group(0.02, ("b",))])
    driver.refuse.add(("b",))
    rec = Recorder()
    coord = make(driver, rec)
    task = asyncio.create_task(coord.run())
    try:
        await wait_until(lambda: coord.stats.device_errors >= 2, message="refusals")
        assert coord.online is True
        b = [s for s in rec.samples if s.point_id == "site/dev/b"]
        assert b and all(s.quality is Quality.BAD and s.reason is Reason.DEVICE_ERROR for s in b)
        assert any(s.point_id == "site/dev/a" and s.good for s in rec.samples)
    finally:
        task.cancel()


async def test_write_runs_between_polls_and_publishes_the_read_back() -> None:
    driver = ScriptedDriver([Group(3600, ("sp",))])  # polls once, then sleeps for an hour
    rec = Recorder()
    coord = make(driver, rec)
    task = asyncio.create_task(coord.run())
    try:
        await wait_until(lambda: coord.online is True, message="first poll")
        result = await asyncio.wait_for(coord.write("sp", 42), 10)
        assert result == 42
        assert driver.writes == [("sp", 42)]
        assert rec.samples[-1].point_id == "site/dev/sp" and rec.samples[-1].value == 42
    finally:
        task.cancel()


async def test_write_to_dead_device_raises_transport_error() -> None:
    driver = ScriptedDriver([Group(3600, ("sp",))])
    rec = Recorder()
    coord = make(driver, rec)
    task = asyncio.create_task(coord.run())
    try:
        await wait_until(lambda: coord.online is True, message="first poll")
        driver.dead = True
        with pytest.raises(DeviceTimeout):
            await asyncio.wait_for(coord.write("sp", 1), 10)
    finally:
        task.cancel()


async def test_a_device_with_nothing_to_poll_still_runs_every_write() -> None:
    driver = ScriptedDriver([])
    driver.values["relay"] = 0
    rec = Recorder()
    coord = DeviceCoordinator(
        device_id="dev",
        driver=driver,  # type: ignore[arg-type]
        point_ids={"relay": "site/dev/relay"},
        sink=rec.sink,
        events=rec.event,
        clock=SystemClock(),
    )
    task = asyncio.create_task(coord.run())
    try:
        for value in (1, 0, 1):  # each write wakes the idle loop again
            assert await asyncio.wait_for(coord.write("relay", value), 10) == value
        assert driver.writes == [("relay", 1), ("relay", 0), ("relay", 1)]
        assert driver.reads == []
    finally:
        task.cancel()
