"""``SerialLinePort``: one serial port carrying text lines, shared by every device on it.

The port is the scheduler of its line. A polled device asks for a turn (``request``); turns go
round robin over the devices waiting, so exactly one command is on the wire at a time and a
device that times out costs only its own timeout. Between commands the line stays quiet for
``inter_command_gap_ms``. A line arriving while a command is outstanding answers it when the
asking device accepts it (its prefix); otherwise it goes to the port's unsolicited listeners,
and a line nobody wants (an answer arriving after its timeout) is dropped and counted.

The port opens the device with pyserial (which sets baud, parity and the rest through termios)
and then reads the file descriptor from the event loop (``loop.add_reader``), so a pty works
like a USB adapter. When the port goes away (adapter unplugged: the read fails with EIO, or
returns end of file on a pty) it is closed and reopened with capped, jittered backoff. Each
change is one bus event, ``bus.port_open`` or ``bus.port_lost`` (the kinds every serial bus
sends), and listeners hear of it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import serial
import structlog

from core.errors import ConnectionLost, DeviceTimeout
from core.model import Clock, Event, SystemClock
from drivers.serial_line.config import SerialLineBus
from drivers.serial_line.parser import LineSplitter
from drivers.serial_open import open_serial

__all__ = ["PortListener", "PortStats", "SerialLinePort"]

_LOG = structlog.get_logger(__name__)

_READ_CHUNK = 4096
_FIRST_BACKOFF_S = 0.5
_STABLE_S = 5.0  # open this long, a loss starts the backoff afresh


class PortListener(Protocol):
    """What an unsolicited device gives the port: it hears every line nobody asked for and every
    change of the port's state."""

    def line(self, raw: bytes) -> None: ...

    def port_state(self, online: bool, error: str) -> None: ...


@dataclass(slots=True)
class PortStats:
    opens: int = 0
    losses: int = 0
    requests: int = 0
    timeouts: int = 0
    lines: int = 0
    dropped_lines: int = 0  # no request accepted them and nobody listens (late answers)
    max_outstanding: int = 0  # commands ever on the wire at once (1 is the design)


@dataclass(slots=True)
class _Outstanding:
    accept: Callable[[bytes], bool]
    answer: asyncio.Future[bytes]


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class SerialLinePort:
    """Async context manager; ``request`` and ``add_listener`` work while it is entered."""

    def __init__(
        self,
        bus: SerialLineBus,
        *,
        events: Callable[[Event], Awaitable[None]] | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.bus = bus
        self._events = events
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._splitter = LineSplitter(bus.terminator_bytes, bus.max_line_bytes)
        self._serial: Any = None  # serial.Serial while open
        self._fd: int | None = None
        self._online: bool | None = None
        self._error = "not opened yet"
        self._lost = asyncio.Event()
        self._opened_once = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[PortListener] = []
        self._outstanding: _Outstanding | None = None
        self._last_quiet = 0.0  # monotonic time the line last fell quiet after a command
        # Round-robin turns: device ids in the order they joined, and who waits.
        self._devices: list[str] = []
        self._waiting: dict[str, collections.deque[asyncio.Future[None]]] = {}
        self._busy = False
        self._last_served: str | None = None
        self._in_flight = 0
        self.stats = PortStats()

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> SerialLinePort:
        self._task = asyncio.create_task(self._supervise(), name=f"serial_line:{self.bus.id}")
        # The first attempt settles whether the port is there, so the first poll does not fail
        # for a port that is merely not opened yet.
        await self._opened_once.wait()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._close()

    @property
    def online(self) -> bool:
        return bool(self._online)

    @property
    def name(self) -> str:
        return f"{self.bus.id}@{self.bus.port}"

    def join(self, device_id: str) -> None:
        """Make a polled device part of the round robin (in order of joining)."""
        if device_id not in self._devices:
            self._devices.append(device_id)
            self._waiting[device_id] = collections.deque()

    def add_listener(self, listener: PortListener) -> None:
        self._listeners.append(listener)
        if self._online is not None:
            listener.port_state(self._online, "" if self._online else self._error)

    # -- requests -----------------------------------------------------------------------------

    async def request(
        self, device_id: str, command: bytes, accept: Callable[[bytes], bool], timeout_s: float
    ) -> bytes:
        """Send ``command`` in ``device_id``'s turn and return the first line it accepts.

        Raises ``ConnectionLost`` when the port is not open or goes away, ``DeviceTimeout`` when
        no accepted line arrives within ``timeout_s``.
        """
        self.join(device_id)
        await self._turn(device_id)
        try:
            if not self._online or self._fd is None:
                raise ConnectionLost(f"serial port {self.bus.port} is not open: {self._error}")
            gap_s = self._last_quiet + self.bus.inter_command_gap_ms / 1000.0 - self._clock.monotonic()
            if gap_s > 0:
                await asyncio.sleep(gap_s)
            if not self._listeners:
                # A fragment left by an earlier answer must not prefix this one.
                self._splitter.reset()
            answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._outstanding = _Outstanding(accept, answer)
            self.stats.requests += 1
            self._in_flight += 1
            self.stats.max_outstanding = max(self.stats.max_outstanding, self._in_flight)
            await self._write(command)
            try:
                async with asyncio.timeout(timeout_s):
                    return await answer
            except TimeoutError:
                self.stats.timeouts += 1
                raise DeviceTimeout(
                    f"{device_id}: no answer on {self.bus.port} within {timeout_s * 1000:.0f} ms"
                ) from None
        finally:
            if self._outstanding is not None:
                self._in_flight -= 1
            self._outstanding = None
            self._last_quiet = self._clock.monotonic()
            self._release()

    async def _turn(self, device_id: str) -> None:
        if not self._busy:
            self._busy = True
            self._last_served = device_id
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[device_id].append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # the turn was ours already: pass it on
            raise

    def _release(self) -> None:
        """Give the line to the next waiting device after the one served last."""
        ids = self._devices
        start = ids.index(self._last_served) + 1 if self._last_served in ids else 0
        for k in range(len(ids)):
            device_id = ids[(start + k) % len(ids)]
            queue = self._waiting[device_id]
            while queue:
                granted = queue.popleft()
                if not granted.done():
                    granted.set_result(None)
                    self._last_served = device_id
                    return
        self._busy = False

    async def _write(self, data: bytes) -> None:
        fd = self._fd
        assert fd is not None
        view = memoryview(data)
        loop = asyncio.get_running_loop()
        while view:
            try:
                sent = os.write(fd, view)
            except BlockingIOError:
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(fd, _settle, writable)
                try:
                    await writable
                finally:
                    loop.remove_writer(fd)
                continue
            except OSError as exc:
                self._lose(f"write failed: {exc}")
                raise ConnectionLost(f"serial port {self.bus.port}: write failed: {exc}") from exc
            view = view[sent:]

    # -- reading ------------------------------------------------------------------------------

    def _readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: the adapter (or the pty's other side) is gone
            self._lose(f"read failed: {exc}")
            return
        if not data:
            self._lose("end of file")
            return
        for line in self._splitter.feed(data):
            self._dispatch(line)

    def _dispatch(self, line: bytes) -> None:
        self.stats.lines += 1
        pending = self._outstanding
        if pending is not None and not pending.answer.done() and pending.accept(line):
            pending.answer.set_result(line)
            return
        if not self._listeners:
            self.stats.dropped_lines += 1
            return
        for listener in self._listeners:
            listener.line(line)

    # -- open, lose, reopen -------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while True:
            try:
                self._open()
            except ConnectionLost as exc:
                self._opened_once.set()
                failures += 1
                await self._set_state(False, str(exc))
                cap = self.bus.backoff_max_s
                delay = min(cap, _FIRST_BACKOFF_S * 2 ** min(failures - 1, 16))
                await asyncio.sleep(delay * self._rng.uniform(0.8, 1.0))
                continue
            self._opened_once.set()
            opened_at = self._clock.monotonic()
            await self._set_state(True, "")
            await self._lost.wait()
            self._close()
            await self._set_state(False, self._error)
            # A port that was up for a while is retried at once (the adapter may be back
            # already); one that fails right after opening backs off like a failed open, so a
            # flapping adapter cannot spin the loop.
            if self._clock.monotonic() - opened_at >= _STABLE_S:
                failures = 0
                continue
            failures += 1
            delay = min(self.bus.backoff_max_s, _FIRST_BACKOFF_S * 2 ** min(failures - 1, 16))
            await asyncio.sleep(delay * self._rng.uniform(0.8, 1.0))

    def _open(self) -> None:
        self._lost.clear()
        bus = self.bus
        try:
            port = open_serial(
                bus.port,
                baudrate=bus.baudrate,
                bytesize=bus.bytesize,
                parity=bus.parity,
                stopbits=bus.stopbits,
            )
        except ConnectionLost as exc:
            self._error = str(exc)
            raise
        fd = port.fileno()
        os.set_blocking(fd, False)
        self._serial = port
        self._fd = fd
        self._splitter.reset()
        asyncio.get_running_loop().add_reader(fd, self._readable)
        self.stats.opens += 1

    def _lose(self, error: str) -> None:
        if self._fd is None or self._lost.is_set():
            return
        self._error = error
        self.stats.losses += 1
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self._fd)
        pending = self._outstanding
        if pending is not None and not pending.answer.done():
            pending.answer.set_exception(ConnectionLost(f"serial port {self.bus.port} lost: {error}"))
        self._lost.set()

    def _close(self) -> None:
        fd, port = self._fd, self._serial
        self._fd = None
        self._serial = None
        if fd is not None:
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                asyncio.get_running_loop().remove_reader(fd)
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    async def _set_state(self, online: bool, error: str) -> None:
        if self._online is online:
            return
        self._online = online
        if online:
            _LOG.info("serial_line.port_open", port=self.bus.port, bus=self.bus.id)
        else:
            _LOG.warning("serial_line.port_down", port=self.bus.port, bus=self.bus.id, error=error)
        for listener in self._listeners:
            listener.port_state(online, error)
        if self._events is not None:
            data: dict[str, Any] = {"port": self.bus.port}
            if not online:
                data["error"] = error
            await self._events(
                Event("bus.port_open" if online else "bus.port_lost", self.bus.id, self._clock.wall(), data)
            )
