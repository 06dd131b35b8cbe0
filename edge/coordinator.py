"""One coordinator per device: the poll loop, the device's online state and its command queue.

The coordinator is the only thing that talks to a device's driver. It reads every poll group at
the group's interval (phase-locked to a jittered start, so 500 devices do not all fire in the
same millisecond), turns readings into samples and hands them to the sink. When the device stops
answering it goes offline once (one event, one log line), marks every point bad, and then tries
at most once per backoff period, so a dead device costs little. Writes queue behind the current
read and run before the next one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from core.errors import ConnectionLost, DeviceError, TransportError
from core.model import Clock, Event, Quality, Reason, Sample, Value
from drivers.base import Driver, LinkState, PollGroup, PriorityWriter, Reading, raise_if_cancelling
from edge.recent import RecentFloats

__all__ = ["CoordinatorStats", "DeviceCoordinator", "EventSink", "SampleSink"]

_LOG = structlog.get_logger(__name__)

SampleSink = Callable[[list[Sample]], Awaitable[None]]
EventSink = Callable[[Event], Awaitable[None]]

# Recent poll lateness per device, for percentiles in health views and benchmarks. Kept small:
# each entry costs ~32 bytes, and 2,048 of them on each of 500 devices were 32 MB of RSS that
# filled up over the first half hour, which looked like a leak on a small gateway.
_LATENESS_KEPT = 128
# One generator for every coordinator's jitter: a Random is 2.5 KB of Mersenne state, 5 MB at
# 2,000 devices, and jitter needs no stream of its own (tests pass their own seeded one).
_JITTER = random.Random()


@dataclass(slots=True)
class CoordinatorStats:
    polls_ok: int = 0
    polls_failed: int = 0
    reads_ok: int = 0
    reads_failed: int = 0
    device_errors: int = 0
    skipped_ticks: int = 0
    last_latency_s: float | None = None
    last_ok_wall: float | None = None
    # Seconds between when a poll was due and when it started; recent ones only.
    lateness_s: RecentFloats = field(default_factory=lambda: RecentFloats(_LATENESS_KEPT))

    def as_dict(self) -> dict[str, object]:
        total = self.polls_ok + self.polls_failed
        return {
            "polls_ok": self.polls_ok,
            "polls_failed": self.polls_failed,
            "success_rate": (self.polls_ok / total) if total else None,
            "reads_ok": self.reads_ok,
            "reads_failed": self.reads_failed,
            "device_errors": self.device_errors,
            "skipped_ticks": self.skipped_ticks,
            "last_latency_ms": None if self.last_latency_s is None else self.last_latency_s * 1000,
            "last_ok_wall": self.last_ok_wall,
        }


@dataclass(slots=True)
class _Command:
    key: str
    value: Value
    verify: bool
    done: asyncio.Future[Value | None]
    priority: int | None = None


class DeviceCoordinator:
    def __init__(
        self,
        *,
        device_id: str,
        driver: Driver,
        point_ids: Mapping[str, str],
        sink: SampleSink,
        events: EventSink,
        clock: Clock,
        backoff_max_s: float = 60.0,
        command_queue_size: int = 32,
        rng: random.Random | None = None,
    ) -> None:
        self.device_id = device_id
        self._driver = driver
        # Kept as given, not copied: the caller builds it for this device alone, and a copy was
        # 2.5 KB a device (issue 19's memory breakdown).
        self._point_ids = point_ids
        self._sink = sink
        self._events = events
        self._clock = clock
        self._backoff_max_s = backoff_max_s
        self._rng = rng or _JITTER
        # Made on the first write: most devices are never written, and 1,000 idle queues cost
        # about 2.5 MB (issue 19's memory breakdown).
        self._commands: asyncio.Queue[_Command] | None = None
        self._command_queue_size = command_queue_size
        # Set while the device sleeps: a queued write resolves it early. An Event was 1.1 KB a
        # device (its dict and waiter deque) and ``asyncio.timeout`` cancelled a task on every
        # poll's sleep; a future and a timer cost neither (issue 19).
        self._waiter: asyncio.Future[bool] | None = None
        self._groups: dict[float, list[PollGroup]] = {}
        for group in driver.poll_groups():
            self._groups.setdefault(group.interval_s, []).append(group)
        self.online: bool | None = None  # None until the first poll settles it
        self.stats = CoordinatorStats()
        self._failures = 0
        self._next_probe = 0.0

    # -- public ------------------------------------------------------------------------------

    async def write(
        self, key: str, value: Value, *, verify: bool = True, priority: int | None = None
    ) -> Value | None:
        """Queue a write; returns the read-back value (or None without verification).

        ``priority`` is for drivers with priority arrays (BACnet): the write's priority instead
        of the point's own. Raises ``TransportError``/``DeviceError`` from the driver,
        ``KeyError`` for an unknown point, ``ValueError`` for a priority the driver cannot use.
        """
        if key not in self._point_ids:
            raise KeyError(f"device {self.device_id} has no point {key!r}")
        done: asyncio.Future[Value | None] = asyncio.get_running_loop().create_future()
        if self._commands is None:
            self._commands = asyncio.Queue(maxsize=self._command_queue_size)
        await self._commands.put(_Command(key, value, verify, done, priority))
        self._wake_up()
        return await done

    async def run(self) -> None:
        """Poll until cancelled."""
        pushed = self._driver.pushed()
        if pushed is None:
            # A polled device (nearly all of them) needs one loop and no task group: the group
            # and its two extra tasks were about 1.5 KB a device, held for the device's life.
            await (self._poll_loop() if self._groups else self._command_loop_when_idle())
            return
        async with asyncio.TaskGroup() as tg:
            if pushed is not None:
                tg.create_task(self._consume_pushed(pushed), name=f"pushed:{self.device_id}")
            if self._groups:
                tg.create_task(self._poll_loop(), name=f"poll:{self.device_id}")
            tg.create_task(self._command_loop_when_idle(), name=f"commands:{self.device_id}")

    # -- loops -------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        now = self._clock.monotonic()
        # Jitter the first poll over up to one interval (at most 5 s) to spread the load.
        next_due = {iv: now + self._rng.uniform(0, min(iv, 5.0)) for iv in self._groups}
        while True:
            raise_if_cancelling()
            await self._run_pending_commands()
            interval, due = min(next_due.items(), key=lambda item: item[1])
            if self.online is False:
                due = max(due, self._next_probe)
            delay = due - self._clock.monotonic()
            if delay > 0 and await self._sleep_or_wake(delay):
                continue  # a command arrived; run it before polling
            start = self._clock.monotonic()
            self.stats.lateness_s.append(max(0.0, start - due))
            await self._poll(self._groups[interval], start)
            after = self._clock.monotonic()
            nd = next_due[interval] + interval
            if nd <= after:
                skipped = int((after - nd) // interval) + 1
                self.stats.skipped_ticks += skipped
                nd += skipped * interval
            next_due[interval] = nd
            if self.online is False:
                # Coming back from a probe: every interval waits for the next probe slot.
                for iv in next_due:
                    next_due[iv] = max(next_due[iv], self._next_probe)

    async def _command_loop_when_idle(self) -> None:
        """Run writes for a device that has nothing to poll (the poll loop runs them otherwise)."""
        if self._groups:
            return
        while True:
            await self._sleep_or_wake(None)
            await self._run_pending_commands()
            raise_if_cancelling()

    async def _sleep_or_wake(self, delay_s: float | None) -> bool:
        """Sleep ``delay_s`` (None: until woken); True if woken early by a queued command."""
        if self._commands is not None and not self._commands.empty():
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = None if delay_s is None else loop.call_later(delay_s, _resolve, waiter, False)
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None

    def _wake_up(self) -> None:
        if self._waiter is not None:
            _resolve(self._waiter, True)

    async def _consume_pushed(self, readings: AsyncIterator[Reading | list[Reading] | LinkState]) -> None:
        async for item in readings:
            if isinstance(item, LinkState):
                if item.online:
                    await self._mark_online()
                else:
                    await self._mark_offline(ConnectionLost(item.error or "link lost"))
                continue
            wall = self._clock.wall()
            if isinstance(item, Reading):
                await self._sink([self._sample(item, wall)])
                continue
            samples = [self._sample(r, wall) for r in item if r.key in self._point_ids]
            if samples:
                await self._sink(samples)

    # -- one poll ----------------------------------------------------------------------------

    async def _poll(self, groups: Sequence[PollGroup], start_mono: float) -> None:
        samples: list[Sample] = []
        failure: TransportError | None = None
        for group in groups:
            try:
                readings = await self._driver.read(group)
            except TransportError as exc:
                failure = exc
                self.stats.reads_failed += 1
                break
            except DeviceError as exc:
                # The device is alive but refuses this block: its points are bad, the rest go on.
                self.stats.device_errors += 1
                wall = self._clock.wall()
                samples.extend(
                    self._bad(key, wall, Reason.DEVICE_ERROR) for key in group.keys if key in self._point_ids
                )
                _LOG.debug("device refused read", device=self.device_id, code=exc.code, error=str(exc))
                continue
            self.stats.reads_ok += 1
            wall = self._clock.wall()
            samples.extend(self._sample(r, wall) for r in readings if r.key in self._point_ids)
        if failure is None:
            self.stats.polls_ok += 1
            self.stats.last_latency_s = self._clock.monotonic() - start_mono
            self.stats.last_ok_wall = self._clock.wall()
            if samples:
                await self._sink(samples)
            await self._mark_online()
        else:
            self.stats.polls_failed += 1
            if samples:
                await self._sink(samples)
            await self._mark_offline(failure)

    async def _mark_online(self) -> None:
        self._failures = 0
        if self.online is True:
            return
        was = self.online
        self.online = True
        if was is False:
            _LOG.info("device recovered", device=self.device_id)
        await self._events(Event("device.online", self.device_id, self._clock.wall(), {}))

    async def _mark_offline(self, exc: TransportError) -> None:
        self._failures += 1
        backoff = min(self._backoff_max_s, 2.0 ** min(self._failures - 1, 16))
        self._next_probe = self._clock.monotonic() + backoff * self._rng.uniform(0.8, 1.0)
        if self.online is False:
            return
        self.online = False
        _LOG.warning(
            "device stopped answering", device=self.device_id, error=str(exc), kind=type(exc).__name__
        )
        wall = self._clock.wall()
        await self._sink([self._bad(key, wall, Reason.COMM_FAILURE) for key in self._point_ids])
        await self._events(
            Event("device.offline", self.device_id, wall, {"error": str(exc), "kind": type(exc).__name__})
        )

    # -- commands ----------------------------------------------------------------------------

    async def _run_pending_commands(self) -> None:
        commands = self._commands
        while commands is not None and not commands.empty():
            command = commands.get_nowait()
            if command.done.cancelled():
                continue
            try:
                if command.priority is None:
                    result = await self._driver.write(command.key, command.value, verify=command.verify)
                elif isinstance(self._driver, PriorityWriter):
                    result = await self._driver.write(
                        command.key, command.value, verify=command.verify, priority=command.priority
                    )
                else:
                    raise ValueError(f"device {self.device_id}: its protocol has no write priority")  # noqa: TRY301
            except (TransportError, DeviceError, ValueError) as exc:
                command.done.set_exception(exc)
                continue
            command.done.set_result(result)
            if command.verify and result is not None:
                wall = self._clock.wall()
                await self._sink([Sample(self._point_ids[command.key], result, Quality.GOOD, wall)])

    # -- helpers -----------------------------------------------------------------------------

    def _sample(self, reading: Reading, wall: float) -> Sample:
        return Sample(
            self._point_ids[reading.key],
            reading.value,
            reading.quality,
            wall,
            reading.reason,
            reading.source_ts,
        )

    def _bad(self, key: str, wall: float, reason: Reason) -> Sample:
        return Sample(self._point_ids[key], None, Quality.BAD, wall, reason)


def _resolve(waiter: asyncio.Future[bool], woken: bool) -> None:
    if not waiter.done():
        waiter.set_result(woken)


async def supervise(coord: DeviceCoordinator) -> None:
    """Run a coordinator, restarting it when it dies of a bug, so one device can never stop the
    others (the gateway's devices and a poll worker's alike)."""
    pause_s = 1.0
    while True:
        try:
            await coord.run()
            return
        except Exception:  # noqa: BLE001 - logged with its traceback, then the device restarts
            _LOG.exception("device coordinator crashed; restarting", device=coord.device_id)
        await asyncio.sleep(pause_s)
        pause_s = min(pause_s * 2, 60.0)
