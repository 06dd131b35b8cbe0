"""``SerialLineDevice``: one device on a serial line, behind the ``Driver`` protocol.

Poll mode: one poll group holding every point; ``read`` sends the device's command in its turn
on the port and parses the answer. A timeout or an answer with a bad checksum is tried again
up to ``retries`` times, then raised (``DeviceTimeout``/``FramingError``) so the coordinator
takes the device offline and backs off.

Unsolicited mode: no poll groups; ``pushed()`` yields the readings of each line the device
prints and ``LinkState`` changes: offline when the port goes away, or when the device has been
silent for ``silence_timeout_s`` (if set); online again with the next line it prints. Without
a silence timeout a device that only prints on events (a fire panel's printer port) counts as
online whenever its port is open.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import structlog

from core.errors import DeviceTimeout, FramingError, TransportError
from core.model import Value
from drivers.base import LinkState, PollGroup, Reading, raise_if_cancelling
from drivers.serial_line.config import LineFormat, LineMode
from drivers.serial_line.parser import LineParser, LineStatus
from drivers.serial_line.port import SerialLinePort

__all__ = ["LineGroup", "SerialLineDevice"]

_LOG = structlog.get_logger(__name__)

_INBOX_SIZE = 1024  # lines waiting for the coordinator; a printer dumping its history fits


@dataclass(frozen=True, slots=True)
class LineGroup:
    """The one poll group of a polled serial-line device: its answer carries every point."""

    interval_s: float
    keys: tuple[str, ...]


class _Inbox:
    """The port's listener for one unsolicited device: its lines and the port's state."""

    def __init__(self, parser: LineParser) -> None:
        self._parser = parser
        self.queue: asyncio.Queue[bytes | LinkState] = asyncio.Queue(maxsize=_INBOX_SIZE)
        self.overflow = 0

    def line(self, raw: bytes) -> None:
        if self._parser.belongs(raw):
            self._put(raw)

    def port_state(self, online: bool, error: str) -> None:
        self._put(LinkState(online, error))

    def _put(self, item: bytes | LinkState) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflow += 1  # the coordinator is far behind; newer lines wait for room


class SerialLineDevice:
    def __init__(
        self,
        device_id: str,
        port: SerialLinePort,
        parser: LineParser,
        line: LineFormat,
        *,
        address: str | None = None,
        encoding: str = "ascii",
        poll_interval_s: float = 5.0,
        timeout_ms: int = 1000,
        retries: int = 1,
    ) -> None:
        self._device_id = device_id
        self._port = port
        self._parser = parser
        self._mode = line.mode
        self._silence_s = line.silence_timeout_s
        command = line.command_for(address)
        self._command = b"" if command is None else command.encode(encoding)
        self._timeout_s = timeout_ms / 1000.0
        self._retries = retries
        self._groups: tuple[LineGroup, ...] = ()
        self._inbox: _Inbox | None = None
        if self._mode is LineMode.POLL:
            self._groups = (LineGroup(poll_interval_s, parser.keys),)
            port.join(device_id)
        else:
            self._inbox = _Inbox(parser)
            port.add_listener(self._inbox)

    @property
    def device_id(self) -> str:
        return self._device_id

    @property
    def parser(self) -> LineParser:
        return self._parser

    def poll_groups(self) -> Sequence[PollGroup]:
        return self._groups

    async def read(self, group: PollGroup) -> list[Reading]:
        """Send the command and parse the answer; raises ``TransportError`` after the retries."""
        failure: TransportError | None = None
        for _ in range(self._retries + 1):
            try:
                raw = await self._port.request(
                    self._device_id, self._command, self._parser.belongs, self._timeout_s
                )
            except DeviceTimeout as exc:
                raise_if_cancelling()
                failure = exc
                continue
            raise_if_cancelling()
            result = self._parser.parse(raw)
            if result.status is LineStatus.BAD_CHECKSUM:
                failure = FramingError(f"{self._device_id}: answer with a bad checksum")
                continue
            if result.problems:
                _LOG.debug("serial_line.bad_values", device=self._device_id, problems=result.problems[:5])
            keys = set(group.keys)
            return [r for r in result.readings if r.key in keys]
        assert failure is not None
        raise failure

    async def write(self, key: str, value: Value, *, verify: bool = True) -> Value | None:
        raise ValueError(f"device {self._device_id!r}: serial-line points are read-only ({key!r})")

    def pushed(self) -> AsyncIterator[Reading | LinkState] | None:
        if self._inbox is None:
            return None
        return self._pushed(self._inbox)

    async def _pushed(self, inbox: _Inbox) -> AsyncIterator[Reading | LinkState]:
        loop = asyncio.get_running_loop()
        online: bool | None = None
        silence = self._silence_s
        deadline = loop.time() + silence if (silence is not None and self._port.online) else math.inf
        while True:
            try:
                async with asyncio.timeout_at(None if deadline == math.inf else deadline):
                    item = await inbox.queue.get()
            except TimeoutError:
                deadline = math.inf
                if online is not False:
                    online = False
                    yield LinkState(False, f"no line for {silence:g} s")
                continue
            if isinstance(item, LinkState):
                if not item.online:
                    deadline = math.inf
                    if online is not False:
                        online = False
                        yield LinkState(False, item.error or "serial port lost")
                elif silence is None:
                    if online is not True:
                        online = True
                        yield LinkState(True)
                else:
                    deadline = loop.time() + silence  # online with its first line
                continue
            if silence is not None:
                deadline = loop.time() + silence
            if online is not True:
                online = True
                yield LinkState(True)
            result = self._parser.parse(item)
            if result.problems:
                _LOG.debug("serial_line.bad_values", device=self._device_id, problems=result.problems[:5])
            for reading in result.readings:
                yield reading
