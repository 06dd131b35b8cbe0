"""The scheduler of one serial port (or RTU-over-TCP endpoint): every device on the line goes
through it, and it puts exactly one request on the wire at a time.

``SerialScheduler`` is the ``ModbusLink`` of every ``ModbusDevice`` on its line. A request is
queued, and a single worker task takes them one by one:

- **Order.** Writes, and reads of a block holding a ``poll_first: true`` point, go before
  telemetry; within each class the units take turns (round robin), so one chatty device cannot
  starve the others.
- **Silence.** Before a request the line must have been quiet (nothing sent, nothing received)
  for t3.5: 3.5 character times at the port's baud and character size, 1.75 ms above 19,200
  baud (Modbus over Serial Line v1.02 §2.5.1.1). Whatever arrived meanwhile (a late answer,
  noise) is flushed, so it can never be taken for the next answer.
- **Timeout.** The unit's ``timeout_ms`` counts from the moment the request has left the wire
  (its bytes at the baud) plus the time the full answer takes on the wire, so a long read at
  9,600 baud is not cut short. Retries (the unit's ``retries``) only while the unit is believed
  alive: once a unit has let a whole request time out, it gets one attempt per request until it
  answers again, so a dead device costs one timeout per probe, and the coordinator already
  probes a dead device only once per backoff period. The live devices keep their rate.
- **Answers.** The framing scans for the answer to the request in flight: noise, bad CRCs and
  frames from another unit or for another request are counted and skipped, never taken.
- **Broadcast** (unit 0) writes get no answer: the line is left quiet for ``turnaround_ms``.
- **Port state.** open -> lost (read/write error, EIO, end of file, the tty gone, the
  TCP connection dropped) -> reopened with capped, jittered backoff. Each change is one bus
  event, ``bus.port_lost`` / ``bus.port_open`` (source: the bus id). While lost, requests fail
  at once with ``ConnectionLost`` and the coordinators take their devices offline.

``drivers.modbus.serial_bus.open_serial_bus`` builds one per ``modbus_rtu``, ``modbus_ascii``
and ``modbus_rtu_tcp`` bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import structlog

from core.errors import ConnectionLost, DeviceError, DeviceTimeout, FramingError, TransportError
from core.model import Event
from drivers.modbus import ascii_framing, rtu_framing
from drivers.modbus.serial_pdu import (
    Request,
    decode_response,
    read_request,
    write_coil_request,
    write_register_request,
    write_registers_request,
)
from drivers.modbus.serial_port import ByteTransport
from drivers.modbus.types import Table

__all__ = [
    "ASCII",
    "RTU",
    "Framing",
    "LineTiming",
    "PortStats",
    "SerialScheduler",
    "UnitPolicy",
]

_LOG = structlog.get_logger(__name__)

_FIXED_SILENCE_S = 0.00175  # t3.5 above 19,200 baud


@dataclass(frozen=True, slots=True)
class LineTiming:
    """Character time and the inter-frame silence of a line."""

    char_s: float
    silence_s: float

    @classmethod
    def of(cls, baudrate: int, *, bytesize: int = 8, parity: str = "N", stopbits: int = 1) -> LineTiming:
        bits = 1 + bytesize + (0 if parity == "N" else 1) + stopbits
        char_s = bits / baudrate
        return cls(char_s, 3.5 * char_s if baudrate <= 19200 else _FIXED_SILENCE_S)


class _Scan:
    pdu: bytes | None
    consumed: int
    crc_errors: int
    foreign: int


@dataclass(frozen=True, slots=True)
class Framing:
    """How requests and answers look on the line: RTU or ASCII."""

    name: str
    encode: Callable[[Request], bytes]
    scan: Callable[[bytearray, Request], _Scan]
    frame_bytes: Callable[[int], int]  # bytes on the wire of a frame with an n-byte PDU


RTU = Framing("rtu", rtu_framing.encode_request, rtu_framing.scan_response, lambda n: n + 3)  # type: ignore[arg-type]
ASCII = Framing(
    "ascii",
    ascii_framing.encode_request,
    ascii_framing.scan_response,  # type: ignore[arg-type]
    lambda n: 2 * (n + 2) + 3,
)


@dataclass(frozen=True, slots=True)
class UnitPolicy:
    """Per-unit settings: the device's timeout and retries, and the address ranges of its
    priority points as (table, start, end) with ``end`` exclusive."""

    timeout_s: float = 1.0
    retries: int = 1
    priority_ranges: tuple[tuple[Table, int, int], ...] = ()

    def is_priority(self, table: Table, start: int, count: int) -> bool:
        end = start + count
        return any(t is table and s < end and e > start for t, s, e in self.priority_ranges)


@dataclass(slots=True)
class PortStats:
    """Counters of one port for health views and benchmarks; they only ever grow."""

    requests: int = 0
    attempts: int = 0
    answers: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    foreign_frames: int = 0
    exceptions: int = 0
    broadcasts: int = 0
    priority_requests: int = 0
    fast_failures: int = 0
    bytes_tx: int = 0
    bytes_rx: int = 0
    flushed_bytes: int = 0
    port_losses: int = 0
    reopens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _Job:
    request: Request
    future: asyncio.Future[list[int]]
    priority: bool = False


@dataclass(slots=True)
class _Queues:
    """Pending jobs per unit, and the order in which units take their turn."""

    by_unit: dict[int, deque[_Job]] = field(default_factory=dict)
    turns: deque[int] = field(default_factory=deque)

    def push(self, job: _Job) -> None:
        queue = self.by_unit.setdefault(job.request.unit, deque())
        if not queue:
            self.turns.append(job.request.unit)
        queue.append(job)

    def pop(self) -> _Job | None:
        if not self.turns:
            return None
        unit = self.turns.popleft()
        queue = self.by_unit[unit]
        job = queue.popleft()
        if queue:
            self.turns.append(unit)  # back of the line: round robin
        return job

    def drain(self) -> list[_Job]:
        jobs = [job for queue in self.by_unit.values() for job in queue]
        self.by_unit.clear()
        self.turns.clear()
        return jobs


EventSink = Callable[[Event], Awaitable[None]]


class SerialScheduler:
    """The ``ModbusLink`` of every device on one port; see the module docstring."""

    def __init__(
        self,
        transport: ByteTransport,
        framing: Framing,
        timing: LineTiming,
        *,
        bus_id: str,
        events: EventSink,
        wall: Callable[[], float],
        policies: Mapping[int, UnitPolicy] | None = None,
        default_policy: UnitPolicy | None = None,
        turnaround_s: float = 0.1,
        reopen_initial_s: float = 0.5,
        reopen_max_s: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.framing = framing
        self.timing = timing
        self.bus_id = bus_id
        self.name = f"{bus_id}@{transport.name}"
        self.policies = dict(policies or {})
        self.default_policy = default_policy or UnitPolicy()
        self.turnaround_s = turnaround_s
        self.reopen_initial_s = reopen_initial_s
        self.reopen_max_s = max(reopen_max_s, reopen_initial_s)
        self.stats = PortStats()
        self.state = "closed"  # "open", "lost", "closed"
        self._events = events
        self._wall = wall
        self._rng = rng or random.Random()
        self._queues = (_Queues(), _Queues())  # priority, then telemetry
        self._work = asyncio.Event()
        self._silent_units: set[int] = set()
        self._line_busy_until = 0.0
        self._event_queue: asyncio.Queue[Event] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._reopen_task: asyncio.Task[None] | None = None
        transport.on_lost = self._on_lost

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the port (a port that cannot be opened is lost, and retried) and start work."""
        self._tasks.append(asyncio.create_task(self._worker(), name=f"serial-bus:{self.name}"))
        self._tasks.append(asyncio.create_task(self._event_pump(), name=f"serial-events:{self.name}"))
        try:
            await self.transport.open()
        except ConnectionLost as exc:
            self._set_lost(str(exc))
        else:
            self._set_open(reopened=False)

    async def aclose(self) -> None:
        self.state = "closed"
        tasks = [*self._tasks, *([self._reopen_task] if self._reopen_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._event_queue.empty():  # deliver what changed before the close
            await self._events(self._event_queue.get_nowait())
        self.transport.close()
        self._fail_pending(ConnectionLost(f"{self.name}: closed"))

    # --- ModbusLink -----------------------------------------------------------------------------

    async def read(self, unit: int, table: Table, start: int, count: int) -> list[int]:
        priority = self._policy(unit).is_priority(table, start, count)
        return await self._submit(read_request(unit, table, start, count), priority)

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        await self._submit(write_coil_request(unit, address, value), True)

    async def write_register(self, unit: int, address: int, value: int) -> None:
        await self._submit(write_register_request(unit, address, value), True)

    async def write_registers(self, unit: int, address: int, values: Sequence[int]) -> None:
        await self._submit(write_registers_request(unit, address, values), True)

    def _policy(self, unit: int) -> UnitPolicy:
        return self.policies.get(unit, self.default_policy)

    async def _submit(self, request: Request, priority: bool) -> list[int]:
        self.stats.requests += 1
        if self.state != "open":
            self.stats.fast_failures += 1
            raise ConnectionLost(f"{self.name}: port is {self.state} ({self.transport.lost_reason})")
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        if priority:
            self.stats.priority_requests += 1
        self._queues[0 if priority else 1].push(_Job(request, future, priority))
        self._work.set()
        return await future

    # --- the worker -----------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            job = self._queues[0].pop() or self._queues[1].pop()
            if job is None:
                self._work.clear()
                await self._work.wait()
                continue
            if job.future.done():
                continue  # the caller gave up (cancelled) before its turn
            try:
                if self.state != "open":
                    raise ConnectionLost(f"{self.name}: port is {self.state}")
                result = await self._execute(job.request)
            except (TransportError, DeviceError) as exc:
                if not job.future.done():
                    job.future.set_exception(exc)
            else:
                if not job.future.done():
                    job.future.set_result(result)

    async def _execute(self, request: Request) -> list[int]:
        unit = request.unit
        policy = self._policy(unit)
        frame = self.framing.encode(request)
        char_s = self.timing.char_s
        answer_s = self.framing.frame_bytes(request.response_pdu_size) * char_s
        attempts = 1 if unit in self._silent_units else policy.retries + 1
        mismatched = False
        loop = asyncio.get_running_loop()
        for attempt in range(attempts):
            self.stats.attempts += 1
            await self._quiet_line()
            self.stats.flushed_bytes += self.transport.flush_input()
            await self._send(frame)
            sent_at = loop.time() + len(frame) * char_s  # when the last byte has left the wire
            self._line_busy_until = sent_at
            if request.broadcast:
                self.stats.broadcasts += 1
                self._line_busy_until = sent_at + self.turnaround_s
                return []
            pdu, saw_foreign = await self._await_answer(request, sent_at + policy.timeout_s + answer_s)
            mismatched = mismatched or saw_foreign
            if pdu is None:
                self.stats.timeouts += 1
                _LOG.debug("serial.timeout", port=self.name, unit=unit, request=request.what, attempt=attempt)
                continue
            self.stats.answers += 1
            self._silent_units.discard(unit)
            try:
                return decode_response(request, pdu)
            except DeviceError:
                self.stats.exceptions += 1
                raise
        self._silent_units.add(unit)
        if mismatched:
            raise FramingError(
                f"{self.name} unit {unit} {request.what}: only answers that do not fit the request "
                f"within {policy.timeout_s * 1000:.0f} ms"
            )
        raise DeviceTimeout(
            f"{self.name} unit {unit} {request.what}: no answer within {policy.timeout_s * 1000:.0f} ms "
            f"after {attempts} attempt(s)"
        )

    async def _send(self, frame: bytes) -> None:
        try:
            await self.transport.send(frame)
        except ConnectionLost as exc:
            self._set_lost(str(exc))
            raise
        self.stats.bytes_tx += len(frame)

    async def _quiet_line(self) -> None:
        """Wait until nothing has been on the line for t3.5 (and a broadcast's turnaround)."""
        loop = asyncio.get_running_loop()
        silence = self.timing.silence_s
        while True:
            ready = max(self._line_busy_until, self.transport.last_rx + silence)
            delay = ready - loop.time()
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    async def _await_answer(self, request: Request, deadline: float) -> tuple[bytes | None, bool]:
        """The answer's PDU, or None at ``deadline``; and whether a foreign frame was seen."""
        transport = self.transport
        buffer = transport.buffer
        foreign = False
        scanned_rx = transport.bytes_rx
        while True:
            if buffer:
                scan = self.framing.scan(buffer, request)
                self.stats.crc_errors += scan.crc_errors
                self.stats.foreign_frames += scan.foreign
                foreign = foreign or scan.foreign > 0
                self.stats.bytes_rx += transport.bytes_rx - scanned_rx
                scanned_rx = transport.bytes_rx
                del buffer[: scan.consumed]
                if scan.pdu is not None:
                    return scan.pdu, foreign
            try:
                arrived = await transport.wait_data(deadline)
            except ConnectionLost as exc:
                self._set_lost(str(exc))
                raise
            if not arrived:
                return None, foreign

    # --- port state -----------------------------------------------------------------------------

    def _on_lost(self, reason: str) -> None:
        self._set_lost(reason)

    def _set_open(self, *, reopened: bool) -> None:
        self.state = "open"
        self._silent_units.clear()
        self._line_busy_until = 0.0
        if reopened:
            self.stats.reopens += 1
        _LOG.info("serial.port_open", port=self.name, reopened=reopened)
        data: dict[str, object] = {"port": self.transport.name, "reopened": reopened}
        self._event_queue.put_nowait(Event("bus.port_open", self.bus_id, self._wall(), data))

    def _set_lost(self, reason: str) -> None:
        if self.state in ("lost", "closed"):
            return
        self.state = "lost"
        self.stats.port_losses += 1
        self.transport.close()
        _LOG.warning("serial.port_lost", port=self.name, error=reason)
        data: dict[str, object] = {"port": self.transport.name, "error": reason}
        self._event_queue.put_nowait(Event("bus.port_lost", self.bus_id, self._wall(), data))
        self._fail_pending(ConnectionLost(f"{self.name}: port lost: {reason}"))
        if self._reopen_task is None or self._reopen_task.done():
            self._reopen_task = asyncio.get_running_loop().create_task(
                self._reopen(), name=f"serial-reopen:{self.name}"
            )

    def _fail_pending(self, error: ConnectionLost) -> None:
        for queues in self._queues:
            for job in queues.drain():
                if not job.future.done():
                    job.future.set_exception(error)

    async def _reopen(self) -> None:
        failures = 0
        while self.state == "lost":
            delay = min(self.reopen_max_s, self.reopen_initial_s * 2.0 ** min(failures, 16))
            await asyncio.sleep(delay * self._rng.uniform(0.5, 1.0))
            if self.state != "lost":
                return
            try:
                await self.transport.open()
            except ConnectionLost as exc:
                failures += 1
                _LOG.debug("serial.reopen_failed", port=self.name, error=str(exc), failures=failures)
                continue
            self._set_open(reopened=True)

    async def _event_pump(self) -> None:
        while True:
            event = await self._event_queue.get()
            await self._events(event)
