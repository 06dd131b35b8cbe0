"""A simulated GB/T 26875.3 user information transmission device (用户信息传输装置).

It connects to the gateway (TCP client, or a serial port / pty) and reports one fire panel
(system type 1, address 1 by default) like a real device does: every report is a *send data*
frame that it resends, same serial number, until the centre confirms it; a heartbeat
(transmission-device status, type 21) when it has nothing else to say; and it takes the
centre's clock synchronisation (command 1, type 90 or 8) and confirms it.

Programmatic API (tests, the demo): ``inject_fire(zone=...)`` or ``inject_fire(component=...)``,
``inject_fault``, ``clear``, ``reset``, ``silence``, ``analog``, ``power_fault``; faults:
``bad_checksums(n)``, ``garbage(n)``, ``partial_frame()``, ``slow_confirm_s``, ``silent``.
Observations: ``confirmed`` (serials the centre confirmed), ``denied``, ``clock_syncs``.

Zones: zone N is smoke detectors (type 42) at addresses (N-1)*64+1 .. N*64 and one manual
call point (type 23) at 1000+N, unless a layout is given.

CLI: ``python -m simulators.gb26875_scenarios --connect 127.0.0.1:PORT --scenario fire:5``
(``--serial /dev/pts/N`` instead of ``--connect``); that module holds the scenarios and the
command line, so this one stays the device alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import structlog

from core.model import Clock, SystemClock
from drivers.gb26875.frame import Command, Frame, Framing, Rejected, StandardFraming, TimeTag
from drivers.gb26875.objects import (
    AnalogValue,
    ComponentStatus,
    InfoObject,
    OperationRecord,
    SystemStatus,
    TimeObject,
    TypeFlag,
    UitdStatus,
    decode_adu,
    encode_adu,
)

__all__ = ["Component", "TransmissionDevice", "default_layout"]

_LOG = structlog.get_logger(__name__)

Component = tuple[int, int]  # (component type, component address)
SMOKE, MANUAL_CALL_POINT = 42, 23
NORMAL, FIRE_BIT, FAULT_BIT = 0x0001, 0x0002, 0x0004


def default_layout(zones: int = 8) -> dict[str, list[Component]]:
    return {
        str(z): [(SMOKE, (z - 1) * 64 + a) for a in range(1, 65)] + [(MANUAL_CALL_POINT, 1000 + z)]
        for z in range(1, zones + 1)
    }


@dataclass(slots=True)
class _Outgoing:
    data: bytes
    serial: int = -1
    sends: int = 0


@dataclass(slots=True)
class _Faults:
    bad_checksums: int = 0
    garbage_bytes: int = 0
    partial: bool = False


@dataclass(slots=True)
class _Link:
    send: Callable[[bytes], Awaitable[None]]
    chunks: AsyncIterator[bytes]
    close: Callable[[], None]


class TransmissionDevice:
    """See the module docstring."""

    def __init__(
        self,
        *,
        address: bytes = bytes.fromhex("2c312c320000"),
        centre: bytes = bytes(6),
        sys_type: int = 1,
        sys_addr: int = 1,
        layout: dict[str, list[Component]] | None = None,
        framing: Framing | None = None,
        utc_offset_s: float = 8 * 3600.0,
        resend_timeout_s: float = 3.0,
        heartbeat_s: float = 30.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.address = address
        self.centre = centre
        self.sys_type = sys_type
        self.sys_addr = sys_addr
        self.layout = layout or default_layout()
        self.framing: Framing = framing or StandardFraming()
        self.utc_offset_s = utc_offset_s
        self.resend_timeout_s = resend_timeout_s
        self.heartbeat_s = heartbeat_s
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.clock_offset_s = 0.0  # set by the centre's clock sync
        self.slow_confirm_s = 0.0
        self.silent = False
        self.faults = _Faults()
        self.status: dict[Component, int] = {}
        self.confirmed: list[int] = []
        self.denied: list[int] = []
        self.clock_syncs: list[TimeTag] = []
        self.connected = asyncio.Event()
        self.connections = 0
        self._outbox: deque[_Outgoing] = deque()
        self._wake = asyncio.Event()
        self._answer: dict[int, asyncio.Event] = {}
        self._serial = 0
        self._link: _Link | None = None

    # -- scenarios -----------------------------------------------------------------------

    def components(
        self, zone: str | int | None = None, component: Component | None = None
    ) -> list[Component]:
        if component is not None:
            return [component]
        if zone is None:
            raise ValueError("name a zone or a component")
        return [self.layout[str(zone)][0]]

    def inject_fire(
        self, zone: str | int | None = None, component: Component | None = None, *, count: int = 1
    ) -> None:
        """Fire at the first ``count`` detectors of ``zone`` (or at ``component``)."""
        targets = [component] if component is not None else self.layout[str(zone)][:count]
        self._component_status(targets, NORMAL | FIRE_BIT, "火警")

    def inject_fault(self, zone: str | int | None = None, component: Component | None = None) -> None:
        self._component_status(self.components(zone, component), NORMAL | FAULT_BIT, "故障")

    def clear(self, zone: str | int | None = None, component: Component | None = None) -> None:
        targets = [component] if component is not None else list(self.layout[str(zone)])
        self._component_status([c for c in targets if self.status.get(c, NORMAL) != NORMAL], NORMAL, "正常")

    def reset(self, operator: int = 1) -> None:
        """The panel's reset: an operation record, then the system status with the reset bit;
        every component back to normal (nothing is re-reported: nothing is active)."""
        self.status.clear()
        self.send_objects(
            TypeFlag.OPERATION, [OperationRecord(self.sys_type, self.sys_addr, 0b01, operator, self.now())]
        )
        self.send_objects(
            TypeFlag.SYSTEM_STATUS, [SystemStatus(self.sys_type, self.sys_addr, NORMAL | 1 << 13, self.now())]
        )

    def silence(self, operator: int = 1) -> None:
        self.send_objects(
            TypeFlag.OPERATION, [OperationRecord(self.sys_type, self.sys_addr, 0b10, operator, self.now())]
        )

    def power_fault(self, main: bool = True, backup: bool = False) -> None:
        status = NORMAL | (1 << 8 if main else 0) | (1 << 9 if backup else 0)
        self.send_objects(
            TypeFlag.SYSTEM_STATUS, [SystemStatus(self.sys_type, self.sys_addr, status, self.now())]
        )

    def analog(self, component: Component, analog_type: int, raw: int) -> None:
        obj = AnalogValue(
            self.sys_type, self.sys_addr, component[0], component[1], analog_type, raw, self.now()
        )
        self.send_objects(TypeFlag.ANALOG_VALUE, [obj])

    def send_objects(self, type_flag: int, objects: list[InfoObject]) -> None:
        for i in range(0, len(objects), 20):  # 20 component objects: 922 bytes, under 1024
            self._outbox.append(_Outgoing(encode_adu(type_flag, objects[i : i + 20])))
        self._wake.set()

    def _component_status(self, targets: list[Component], status: int, what: str) -> None:
        objs: list[InfoObject] = []
        for comp_type, comp_addr in targets:
            self.status[(comp_type, comp_addr)] = status
            text = f"{comp_addr}号{'手报' if comp_type == MANUAL_CALL_POINT else '烟感'}{what}"
            objs.append(
                ComponentStatus(self.sys_type, self.sys_addr, comp_type, comp_addr, status, text, self.now())
            )
        if objs:
            self.send_objects(TypeFlag.COMPONENT_STATUS, objs)

    # -- faults --------------------------------------------------------------------------

    def bad_checksums(self, n: int) -> None:
        """The next ``n`` transmissions go out with a wrong checksum (then resent right)."""
        self.faults.bad_checksums += n

    def garbage(self, n: int) -> None:
        """``n`` random bytes before the next transmission."""
        self.faults.garbage_bytes += n

    def partial_frame(self) -> None:
        """The next transmission is broken off halfway, then sent again whole."""
        self.faults.partial = True

    @property
    def pending(self) -> int:
        """Reports not yet confirmed by the centre."""
        return len(self._outbox)

    def now(self) -> TimeTag:
        return TimeTag.from_epoch(self.clock.wall() + self.clock_offset_s, self.utc_offset_s)

    # -- links ---------------------------------------------------------------------------

    async def run_tcp(self, host: str, port: int, *, reconnect_s: float = 0.5) -> None:
        """Connect, report, reconnect when dropped; until cancelled."""
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(reconnect_s)
                continue
            await self.run_stream(reader, writer)
            await asyncio.sleep(reconnect_s)

    async def run_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Report over one TCP connection until it closes (a gateway in client mode reaches
        the device through a server that hands its connections here)."""

        async def send(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        async def chunks() -> AsyncIterator[bytes]:
            while data := await reader.read(4096):
                yield data

        with contextlib.suppress(ConnectionError, OSError):
            await self._session(_Link(send, chunks(), writer.close))
        writer.close()

    async def run_fd(self, fd: int) -> None:
        """Report over an open file descriptor (a pty master, a serial port); until cancelled
        or the other end is gone."""
        loop = asyncio.get_running_loop()
        os.set_blocking(fd, False)
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(fd)
            queue.put_nowait(data)

        async def send(data: bytes) -> None:
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    await asyncio.sleep(0.005)

        async def chunks() -> AsyncIterator[bytes]:
            while data := await queue.get():
                yield data

        loop.add_reader(fd, readable)
        try:
            await self._session(_Link(send, chunks(), lambda: None))
        finally:
            loop.remove_reader(fd)

    def drop(self) -> None:
        """Close the current connection (the device reconnects)."""
        if self._link is not None:
            self._link.close()

    async def _session(self, link: _Link) -> None:
        self._link = link
        self.connections += 1
        self.connected.set()
        self.send_objects(TypeFlag.UITD_STATUS, [UitdStatus(0x01, self.now())])
        try:
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(self._sender(link), name="gb26875-sim-sender")
                beat = tg.create_task(self._heartbeat(), name="gb26875-sim-heartbeat")
                try:
                    await self._receiver(link)
                finally:
                    sender.cancel()
                    beat.cancel()
        finally:
            self.connected.clear()
            self._link = None

    async def _receiver(self, link: _Link) -> None:
        decoder = self.framing.decoder()
        async for chunk in link.chunks:
            for item in decoder.feed(chunk):
                if isinstance(item, Rejected):
                    continue
                await self._on_frame(link, item)

    async def _on_frame(self, link: _Link, frame: Frame) -> None:
        if frame.command in (Command.CONFIRM, Command.DENY):
            (self.confirmed if frame.command == Command.CONFIRM else self.denied).append(frame.serial)
            waiter = self._answer.get(frame.serial)
            if waiter is not None:
                waiter.set()
            return
        if frame.command == Command.CONTROL and not self.silent:
            adu = decode_adu(frame.data)
            if adu is not None and adu.type_flag in (TypeFlag.SYNC_CLOCK, TypeFlag.SYSTEM_TIME):
                obj = adu.objects[0]
                if isinstance(obj, TimeObject):
                    self.clock_syncs.append(obj.time)
                    target = obj.time.to_epoch(self.utc_offset_s)
                    if target is not None:
                        self.clock_offset_s = target - self.clock.wall()
                if self.slow_confirm_s:
                    await asyncio.sleep(self.slow_confirm_s)
                reply = Frame(frame.serial, Command.CONFIRM, self.address, frame.source, self.now())
                await link.send(self.framing.encode(reply))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            if not self._outbox:
                self.send_objects(TypeFlag.UITD_STATUS, [UitdStatus(0x01, self.now())])

    async def _sender(self, link: _Link) -> None:
        while True:
            while not self._outbox or self.silent:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await self._wake.wait()
            item = self._outbox[0]
            if item.serial < 0:
                self._serial = (self._serial + 1) & 0xFFFF
                item.serial = self._serial
            waiter = self._answer.setdefault(item.serial, asyncio.Event())
            await self._transmit(link, item)
            try:
                async with asyncio.timeout(self.resend_timeout_s):
                    await waiter.wait()
            except TimeoutError:
                continue  # resent with the same serial number, like a real device
            self._answer.pop(item.serial, None)
            if self._outbox and self._outbox[0] is item:
                self._outbox.popleft()

    async def _transmit(self, link: _Link, item: _Outgoing) -> None:
        item.sends += 1
        frame = Frame(item.serial, Command.SEND, self.address, self.centre, self.now(), item.data)
        raw = self.framing.encode(frame)
        if self.faults.garbage_bytes:
            await link.send(self.rng.randbytes(self.faults.garbage_bytes))
            self.faults.garbage_bytes = 0
        if self.faults.partial:
            self.faults.partial = False
            await link.send(raw[: len(raw) // 2])
        if self.faults.bad_checksums:
            self.faults.bad_checksums -= 1
            raw = raw[:-3] + bytes(((raw[-3] + 1) & 0xFF,)) + raw[-2:]
        await link.send(raw)
