"""The gateway's side of its poll workers: start them, read what they send, restart them.

Devices are shared out by link (:mod:`edge.poll_workers.partition`): a serial bus stays whole,
Modbus TCP devices with their own host:port may go to different workers.

:func:`worker_devices` stands in for ``edge.wiring.build_devices`` when ``gateway.poll_workers``
is set: it yields the same ``DeviceSet`` shape, but each coordinator is a :class:`RemoteDevice`
whose polling runs in a worker process. Samples and events from the workers go into the
gateway's own sinks (live state, rules, reporter, outbox), so everything downstream of a
coordinator is unchanged; a write goes to the worker that owns the device and its result or
its error (the same exception class) comes back.

A worker that exits or sends garbage is restarted with a growing pause (1 s to 30 s). While it
is down its devices are not normal: each device that was online goes offline with bad
``comm_failure`` samples for its points, as when a device stops answering, and the log says
which worker stopped and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import structlog

from core.errors import ConnectionLost
from core.model import Clock, Event, Quality, Reason, Sample, Value
from drivers.registry import bus_driver
from edge.config.site import ResolvedDevice, Site
from edge.coordinator import CoordinatorStats, EventSink, SampleSink
from edge.poll_workers.frames import (
    HEADER,
    MAX_FRAME,
    FrameError,
    PointNames,
    apply_stats_row,
    decode_body,
    decode_event,
    frame,
    raise_error,
)
from edge.poll_workers.partition import partition
from edge.wiring import DeviceSet

__all__ = ["RemoteDevice", "worker_devices"]

_LOG = structlog.get_logger(__name__)
_RESTART_FIRST_S = 1.0
_RESTART_MAX_S = 30.0
_STOP_WAIT_S = 5.0


class RemoteDevice:
    """A device polled in a worker: what the gateway, the dashboard and metrics read of a
    coordinator (``device_id``, ``stats``, ``online``, ``write``, ``run``)."""

    __slots__ = ("_worker", "device_id", "online", "stats")

    def __init__(self, device_id: str, worker: _Worker) -> None:
        self.device_id = device_id
        self._worker = worker
        self.online: bool | None = None
        self.stats = CoordinatorStats()

    async def write(
        self, key: str, value: Value, *, verify: bool = True, priority: int | None = None
    ) -> Value | None:
        return await self._worker.write(self.device_id, key, value, verify=verify, priority=priority)

    async def run(self) -> None:
        # The worker polls; the gateway's per-device task only has to stay until cancelled.
        await asyncio.Event().wait()


class _Worker:
    def __init__(
        self,
        name: str,
        site: Site,
        links: list[str],
        devices: list[ResolvedDevice],
        *,
        sink: SampleSink,
        events: EventSink,
        clock: Clock,
        log_args: list[str],
    ) -> None:
        self.name = name
        self.site = site
        self.links = links  # "bus" or "bus link" keys, for the log and the tests
        self.devices = devices
        self.remote = {d.id: RemoteDevice(d.id, self) for d in devices}
        self._sink = sink
        self._events = events
        self._clock = clock
        self._log_args = log_args
        self._writer: asyncio.StreamWriter | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[Value | None]] = {}
        self._ids = itertools.count(1)
        self._names = PointNames()
        self.starts = 0
        self.ready = asyncio.Event()

    @property
    def pid(self) -> int | None:
        """The running worker's process id (None while it is being restarted)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    # -- writes ------------------------------------------------------------------------------

    async def write(
        self, device_id: str, key: str, value: Value, *, verify: bool, priority: int | None
    ) -> Value | None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise ConnectionLost(f"poll worker {self.name} for device {device_id} is restarting")
        request = next(self._ids)
        done: asyncio.Future[Value | None] = asyncio.get_running_loop().create_future()
        self._pending[request] = done
        try:
            writer.write(frame(["W", request, device_id, key, value, verify, priority]))
            await writer.drain()
            return await done
        finally:
            self._pending.pop(request, None)

    # -- life --------------------------------------------------------------------------------

    async def run(self) -> None:
        pause_s = _RESTART_FIRST_S
        while True:
            started = self._clock.monotonic()
            why = await self._run_once()
            await self._lost(why)
            if self._clock.monotonic() - started > 60.0:
                pause_s = _RESTART_FIRST_S  # it had been running well: restart at once-ish
            _LOG.error("poll worker stopped; restarting", worker=self.name, why=why, pause_s=pause_s)
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, _RESTART_MAX_S)

    async def _run_once(self) -> str:
        parent, child = socket.socketpair()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "edge.poll_workers.worker",
                "--site",
                str(self.site.path),
                "--devices",
                ",".join(d.id for d in self.devices),
                "--fd",
                str(child.fileno()),
                "--name",
                self.name,
                *self._log_args,
                pass_fds=(child.fileno(),),
            )
        except OSError as exc:
            parent.close()
            return f"cannot start: {exc}"
        finally:
            child.close()
        self.starts += 1
        reader, self._writer = await asyncio.open_connection(sock=parent)
        self._names = PointNames()  # a new process numbers its points afresh
        try:
            return await self._read(reader)
        finally:
            await self._stop_process()

    async def _read(self, reader: asyncio.StreamReader) -> str:
        while True:
            try:
                header = await reader.readexactly(HEADER.size)
                (size,) = HEADER.unpack(header)
                if size > MAX_FRAME:
                    return f"a frame of {size} bytes"
                body = decode_body(await reader.readexactly(size))
                await self._handle(body)
            except asyncio.IncompleteReadError:
                code = await self._exit_code()
                return f"exited (status {code})"
            except FrameError as exc:
                return str(exc)

    async def _handle(self, body: list[Any]) -> None:
        kind = body[0]
        if kind == "S":
            await self._sink(self._names.samples(body))
        elif kind == "E":
            event = decode_event(body)
            if event.kind in ("device.online", "device.offline") and event.source in self.remote:
                self.remote[event.source].online = event.kind == "device.online"
            await self._events(event)
        elif kind == "T":
            self._take_stats(body[1])
        elif kind == "W":
            _, request, ok, result = body
            done = self._pending.get(request)
            if done is not None and not done.done():
                if ok:
                    done.set_result(result)
                else:
                    try:
                        raise_error(result)
                    except Exception as exc:  # noqa: BLE001 - handed to the waiting writer
                        done.set_exception(exc)
        elif kind == "R":
            _LOG.info("poll worker running", worker=self.name, links=len(self.links), devices=len(body[1]))
            self.ready.set()
        else:
            raise FrameError(f"unknown frame kind {kind!r}")

    def _take_stats(self, stats: Mapping[str, Any]) -> None:
        if not isinstance(stats, Mapping):
            raise FrameError("bad statistics frame")
        for device_id, row in stats.items():
            remote = self.remote.get(device_id)
            if remote is not None:
                remote.online = apply_stats_row(remote.stats, row)

    async def _exit_code(self) -> int | None:
        if self._proc is None:
            return None
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(self._proc.wait(), _STOP_WAIT_S)
        return None

    async def _lost(self, why: str) -> None:
        """The worker is gone: its devices are not normal until it is back."""
        self.ready.clear()
        for done in self._pending.values():
            if not done.done():
                done.set_exception(ConnectionLost(f"poll worker {self.name} stopped: {why}"))
        wall = self._clock.wall()
        for device in self.devices:
            remote = self.remote[device.id]
            was_online = remote.online
            remote.online = None if was_online is None else False
            if was_online is False:
                continue
            await self._sink(
                [
                    Sample(self.site.point_id(device.id, p.id), None, Quality.BAD, wall, Reason.COMM_FAILURE)
                    for p in device.points
                ]
            )
            if was_online:
                data = {"error": f"poll worker {self.name} stopped: {why}", "kind": "WorkerStopped"}
                await self._events(Event("device.offline", device.id, wall, data))

    async def _stop_process(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                if not writer.is_closing():
                    writer.write(frame(["Q"]))
                writer.close()
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), _STOP_WAIT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def _link_key(device: ResolvedDevice) -> str:
    driver = bus_driver(device.bus.type)
    link_of = None if driver is None else driver.link_of
    return device.bus.id if link_of is None else f"{device.bus.id} {link_of(device)}"


@contextlib.asynccontextmanager
async def worker_devices(
    site: Site,
    *,
    workers: int,
    sink: SampleSink,
    events: EventSink,
    clock: Clock,
    log_args: list[str] | None = None,
) -> AsyncIterator[DeviceSet]:
    """The site's devices polled by ``workers`` processes (whole links each: see partition)."""
    ds = DeviceSet()
    by_link: dict[str, list[ResolvedDevice]] = {}
    for device in site.devices:
        if not device.config.enabled:
            ds.skipped[device.id] = "disabled"
            continue
        by_link.setdefault(_link_key(device), []).append(device)
        for point in device.points:
            ds.report_policies[site.point_id(device.id, point.id)] = device.report_policy(point)
    shares = partition(((key, sum(len(d.points) for d in devs)) for key, devs in by_link.items()), workers)
    pool = [
        _Worker(
            f"poll-{n + 1}",
            site,
            keys,
            [d for key in keys for d in by_link[key]],
            sink=sink,
            events=events,
            clock=clock,
            log_args=log_args or [],
        )
        for n, keys in enumerate(shares)
    ]
    ds.workers = list(pool)
    for worker in pool:
        ds.coordinators.update(cast("dict[str, Any]", worker.remote))
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(worker.run(), name=f"poll-worker:{worker.name}") for worker in pool]
        try:
            yield ds
        finally:
            for task in tasks:
                task.cancel()
