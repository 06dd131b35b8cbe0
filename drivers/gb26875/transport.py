"""The link of one ``gb26875`` bus: TCP server, TCP client or serial port, and the replies.

Every connection (or the serial port) is a :class:`Session`: bytes in, frames out of the
framing's streaming decoder, each frame handled by :meth:`Session.handle`:

- a *send data* frame (command 2) from a known device is confirmed (command 3, echoing its
  serial number) and its objects go to the device's driver; a unit of an unknown type is
  confirmed, logged and skipped (the device would only resend it);
- a frame from an unknown source address, a unit too short to read, or a command the gateway
  does not serve (control, request, response from a device) is denied (command 6);
- a confirm or deny of the gateway's own clock synchronisation settles it.

Corrupt candidates (checksum, end marker) get no reply: the device resends what is not
confirmed. The gateway synchronises a device's clock (command 1) when it is first heard on a
connection and then every ``time_sync_interval_s``.

Several devices may share one listening port, told apart by the source address in their
frames. A device is online once a valid frame from it arrives; it is offline when the last
connection carrying it closes, or when nothing arrives within ``heartbeat_timeout_s`` (then
its connection is closed too, so that it reconnects). Errors from sockets and the serial port
are translated into ``core.errors`` types at this boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import structlog

from core.errors import ConnectionLost
from core.model import Clock, Event
from drivers.gb26875.config import Gb26875Bus, parse_address
from drivers.gb26875.device import Gb26875Device
from drivers.gb26875.frame import Command, Frame, Framing, Rejected, StandardFraming, TimeTag
from drivers.gb26875.objects import (
    AduError,
    OperationRecord,
    TimeObject,
    UitdOperation,
    UnknownObjects,
    decode_adu,
    encode_adu,
)

__all__ = ["Gb26875Link", "Session"]

_LOG = structlog.get_logger(__name__)
_READ_SIZE = 4096

Send = Callable[[bytes], Awaitable[None]]
EventSink = Callable[[Event], Awaitable[None]]


class Gb26875Link:
    """One bus's listening socket, outgoing connection or serial port, and its devices."""

    def __init__(
        self,
        bus: Gb26875Bus,
        devices: Mapping[str, Gb26875Device],
        *,
        clock: Clock,
        events: EventSink | None = None,
        framing: Framing | None = None,
    ) -> None:
        self.bus = bus
        self.devices = dict(devices)
        self.clock = clock
        self.events = events
        self.framing: Framing = framing or StandardFraming(bus.time_format)
        self.utc_offset_s = bus.utc_offset_h * 3600.0
        self.local_address = None if bus.local_address is None else parse_address(bus.local_address)
        self.bound_port: int | None = None  # the listening port, once open (server mode)
        self.sessions: set[Session] = set()
        self.frames_in = 0
        self.rejects = 0
        self._by_address = {d.address: d for d in devices.values() if d.address is not None}
        self._anonymous = next(iter(devices.values())) if len(devices) == 1 else None
        self._tasks: set[asyncio.Task[None]] = set()
        for device in devices.values():
            device.link = self

    # -- lifetime ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Gb26875Link]:
        async with asyncio.TaskGroup() as tg:
            server: asyncio.Server | None = None
            loops: list[asyncio.Task[None]] = []
            if self.bus.mode == "server":
                server = await self._start_server()
            elif self.bus.mode == "client":
                loops.append(tg.create_task(self._client_loop(), name=f"gb26875-client:{self.bus.id}"))
            else:
                loops.append(tg.create_task(self._serial_loop(), name=f"gb26875-serial:{self.bus.id}"))
            loops.append(tg.create_task(self._watchdog(), name=f"gb26875-watchdog:{self.bus.id}"))
            try:
                yield self
            finally:
                for task in loops:
                    task.cancel()
                if server is not None:
                    server.close()
                for session in list(self.sessions):
                    session.close()
                for task in list(self._tasks):
                    task.cancel()

    async def _start_server(self) -> asyncio.Server:
        port = self.bus.port
        assert isinstance(port, int)
        try:
            server = await asyncio.start_server(self._serve, self.bus.host, port)
        except OSError as exc:
            raise ConnectionLost(f"cannot listen on {self.bus.host}:{port}: {exc}") from exc
        self.bound_port = server.sockets[0].getsockname()[1]
        _LOG.info("gb26875 listening", bus=self.bus.id, host=self.bus.host, port=self.bound_port)
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        try:
            await self._run_stream(reader, writer, f"{self.bus.id}<-{peer}")
        except asyncio.CancelledError:
            # This task is the root of a connection that asyncio's server started, and only our
            # own shutdown cancels it. Ending it quietly spares the "Exception in callback"
            # traceback Python 3.11's stream server logs for a cancelled handler.
            return
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _client_loop(self) -> None:
        failures = 0
        port = self.bus.port
        assert isinstance(port, int)
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.bus.host, port)
            except OSError as exc:
                failures += 1
                delay = min(self.bus.backoff_max_s, 2.0 ** min(failures - 1, 10)) * random.uniform(0.8, 1.0)  # noqa: S311
                _LOG.debug("gb26875 connect failed", bus=self.bus.id, error=str(exc), retry_s=delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            await self._run_stream(reader, writer, f"{self.bus.id}->{self.bus.host}:{port}")
            await asyncio.sleep(1.0)  # the device closed us: do not hammer it

    async def _run_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str
    ) -> None:
        async def send(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        session = Session(self, send, name, close=writer.close)
        self.sessions.add(session)
        try:
            while True:
                try:
                    data = await reader.read(_READ_SIZE)
                except OSError as exc:
                    _LOG.info("gb26875 connection error", session=name, error=str(exc))
                    break
                if not data:
                    break
                await session.feed(data)
        except (ConnectionLost, ConnectionError, OSError) as exc:
            _LOG.info("gb26875 connection lost while replying", session=name, error=str(exc))
        finally:
            self.sessions.discard(session)
            writer.close()
            await session.ended("connection closed")

    async def _serial_loop(self) -> None:
        from drivers.serial_open import open_serial  # noqa: PLC0415 - only serial buses load pyserial

        port = self.bus.port
        assert isinstance(port, str)
        failures = 0
        while True:
            try:
                # The shared opener: exclusive, and line settings a pty or adapter refuses
                # (termios.error, not an OSError) are a port to retry, not a crash.
                ser = open_serial(
                    port,
                    baudrate=self.bus.baudrate,
                    parity=self.bus.parity,
                    stopbits=self.bus.stopbits,
                    bytesize=self.bus.bytesize,
                )
            except ConnectionLost as exc:
                failures += 1
                delay = min(self.bus.backoff_max_s, 2.0 ** min(failures - 1, 10))
                _LOG.warning(
                    "gb26875 serial port cannot open", bus=self.bus.id, error=str(exc), retry_s=delay
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            try:
                await self._run_serial(ser, port)
            finally:
                ser.close()
            await asyncio.sleep(1.0)

    async def _run_serial(self, ser: Any, port: str) -> None:
        loop = asyncio.get_running_loop()
        fd: int = ser.fileno()
        chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)

        def readable() -> None:
            try:
                data = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(fd)
            with contextlib.suppress(asyncio.QueueFull):
                chunks.put_nowait(data)

        async def send(data: bytes) -> None:
            try:
                await asyncio.to_thread(ser.write, data)
            except (OSError, ValueError) as exc:
                raise ConnectionLost(f"serial port {port}: {exc}") from exc

        session = Session(self, send, f"{self.bus.id}@{port}", close=lambda: None)
        self.sessions.add(session)
        loop.add_reader(fd, readable)
        try:
            while data := await chunks.get():
                await session.feed(data)
        except ConnectionLost as exc:
            _LOG.warning("gb26875 serial write failed", bus=self.bus.id, error=str(exc))
        finally:
            loop.remove_reader(fd)
            self.sessions.discard(session)
            await session.ended(f"serial port {port} lost")

    async def _watchdog(self) -> None:
        timeout_s = self.bus.heartbeat_timeout_s
        while True:
            await asyncio.sleep(min(1.0, timeout_s / 4))
            now = self.clock.monotonic()
            for device in self.devices.values():
                if device.online and now - device.last_heard_mono > timeout_s:
                    await device.lost(f"nothing heard for {timeout_s:g} s")
                    for session in list(self.sessions):
                        if session.device is device and self.bus.mode != "serial":
                            session.close()

    # -- device lookup -------------------------------------------------------------------

    def device_for(self, source: bytes) -> Gb26875Device | None:
        return self._by_address.get(source) or (
            self._anonymous if self._anonymous is not None and self._anonymous.address is None else None
        )

    async def event(self, kind: str, data: dict[str, Any]) -> None:
        if self.events is not None:
            await self.events(Event(kind, self.bus.id, self.clock.wall(), data))


class Session:
    """One byte stream from transmission devices: decode, reply, deliver."""

    def __init__(self, link: Gb26875Link, send: Send, name: str, *, close: Callable[[], None]) -> None:
        self.link = link
        self.name = name
        self.device: Gb26875Device | None = None
        self._send = send
        self._close = close
        self._decoder = link.framing.decoder()
        self._serial = 0
        self._pending: dict[int, asyncio.Event] = {}
        self._unknown_sources: set[bytes] = set()
        self._sync_task: asyncio.Task[None] | None = None
        self._target = bytes(6)  # the bound device's address
        self._local = bytes(6)  # ours, as the device addresses us

    def close(self) -> None:
        self._close()

    async def feed(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, Rejected):
                self.link.rejects += 1
                _LOG.debug("gb26875 frame rejected", session=self.name, error=str(item.error))
                continue
            self.link.frames_in += 1
            await self.handle(item)

    async def ended(self, reason: str) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
        device = self.device
        if device is not None and not any(s.device is device for s in self.link.sessions):
            await device.lost(reason)

    async def handle(self, frame: Frame) -> None:
        if frame.command == Command.CONFIRM or frame.command == Command.DENY:
            waiter = self._pending.get(frame.serial)
            if waiter is not None:
                waiter.set()
            if frame.command == Command.DENY:
                _LOG.warning("gb26875 device denied a command", session=self.name, serial=frame.serial)
            return
        device = self.link.device_for(frame.source)
        if device is None:
            if frame.source not in self._unknown_sources:
                self._unknown_sources.add(frame.source)
                _LOG.warning(
                    "gb26875 frame from an unknown address", session=self.name, source=frame.source.hex()
                )
            await self._reply(frame, Command.DENY)
            return
        if frame.command != Command.SEND:
            _LOG.info("gb26875 command not served", session=self.name, command=frame.command)
            await self._reply(frame, Command.DENY)
            return
        try:
            adu = decode_adu(frame.data, self.link.bus.time_format)
        except AduError as exc:
            _LOG.warning("gb26875 unreadable data unit", session=self.name, error=str(exc))
            await self._reply(frame, Command.DENY)
            return
        await self._reply(frame, Command.CONFIRM)
        await self._bind(device, frame)
        await device.heard(self.link.clock.monotonic())
        if adu is None:
            return  # a heartbeat
        for obj in adu.objects:
            if isinstance(obj, UnknownObjects):
                _LOG.warning(
                    "gb26875 data unit not decoded, skipped",
                    device=device.device_id,
                    type_flag=adu.type_flag,
                    reason=obj.reason,
                    raw=obj.raw[:64].hex(),
                )
            elif isinstance(obj, OperationRecord | UitdOperation):
                await self._operation_event(device, obj)
        await device.deliver(adu.objects)

    async def _bind(self, device: Gb26875Device, frame: Frame) -> None:
        if self.device is device:
            return
        self.device = device
        self._target = frame.source
        self._local = self.link.local_address or frame.destination
        # A device can hold one connection: an older one is stale (the device reconnected).
        for other in list(self.link.sessions):
            if other is not self and other.device is device and self.link.bus.mode != "serial":
                other.device = None
                other.close()
        bus = self.link.bus
        if bus.reply and (bus.time_sync_on_connect or bus.time_sync_interval_s):
            self._sync_task = asyncio.create_task(self._sync_loop(), name=f"gb26875-sync:{self.name}")

    async def _sync_loop(self) -> None:
        bus = self.link.bus
        if not bus.time_sync_on_connect:
            assert bus.time_sync_interval_s is not None
            await asyncio.sleep(bus.time_sync_interval_s)
        while True:
            try:
                await self.sync_clock()
            except ConnectionLost:
                return  # the session ends on its own
            if not bus.time_sync_interval_s:
                return
            await asyncio.sleep(bus.time_sync_interval_s)

    async def sync_clock(self) -> bool:
        """Set the device's clock (command 1); True once it confirmed."""
        bus = self.link.bus
        now = self._now_tag()
        data = encode_adu(bus.time_sync_type, [TimeObject(now)], bus.time_format)
        self._serial = (self._serial + 1) & 0xFFFF
        serial = self._serial
        waiter = asyncio.Event()
        self._pending[serial] = waiter
        try:
            for _ in range(bus.retries + 1):
                frame = Frame(serial, Command.CONTROL, self._local, self._target, now, data)
                await self._write(frame)
                try:
                    async with asyncio.timeout(bus.resend_timeout_ms / 1000):
                        await waiter.wait()
                except TimeoutError:
                    continue
                return True
        finally:
            self._pending.pop(serial, None)
        _LOG.info("gb26875 clock sync not confirmed", session=self.name)
        return False

    async def _reply(self, frame: Frame, command: Command) -> None:
        if not self.link.bus.reply:
            return
        local = self.link.local_address or frame.destination
        reply = Frame(frame.serial, command, local, frame.source, self._now_tag(), b"", frame.version)
        await self._write(reply)

    async def _write(self, frame: Frame) -> None:
        try:
            await self._send(self.link.framing.encode(frame))
        except (ConnectionError, OSError) as exc:
            raise ConnectionLost(f"{self.name}: {exc}") from exc

    async def _operation_event(self, device: Gb26875Device, obj: OperationRecord | UitdOperation) -> None:
        data: dict[str, Any] = {
            "device": device.device_id,
            "flags": obj.flags,
            "operator": obj.operator,
            "source_ts": obj.time.to_epoch(self.link.utc_offset_s),
        }
        if isinstance(obj, OperationRecord):
            data |= {"sys_type": obj.sys_type, "sys_addr": obj.sys_addr}
        await self.link.event("bus.gb26875.operation", data)

    def _now_tag(self) -> TimeTag:
        return TimeTag.from_epoch(self.link.clock.wall(), self.link.utc_offset_s)
