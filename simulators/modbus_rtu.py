"""Modbus RTU over a pseudo-terminal: the simulator holds the master side, the gateway opens the
slave path as if it were a USB-RS485 adapter.

Frames are found by their function code's length (a pty carries no inter-frame silence to go
by); a frame with a bad CRC is skipped one byte at a time until the stream resynchronises, as a
real device does on a noisy line. Devices that are not addressed stay silent, as on a bus.
"""

from __future__ import annotations

import asyncio
import os
import random
import tty
from collections.abc import Mapping
from types import TracebackType

import structlog

from simulators.device import SimulatedDevice, exception_pdu
from simulators.faults import noise, plan

__all__ = ["ModbusRtuServer", "crc16", "open_pty"]

_LOG = structlog.get_logger(__name__)

_FIXED_REQUEST = {1: 8, 2: 8, 3: 8, 4: 8, 5: 8, 6: 8}


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _with_crc(body: bytes) -> bytes:
    crc = crc16(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def open_pty() -> tuple[int, int, str]:
    """A raw pseudo-terminal pair: (master fd, slave fd, slave path)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


def _request_length(buffer: bytearray) -> int | None:
    """Length of the request frame at the start of ``buffer``; None if more bytes are needed."""
    if len(buffer) < 2:
        return None
    function = buffer[1]
    if function in _FIXED_REQUEST:
        return _FIXED_REQUEST[function]
    if function in (15, 16):
        if len(buffer) < 7:
            return None
        return 9 + buffer[6]
    return 4  # unknown function: assume address + function + CRC so that we answer ILLEGAL_FUNCTION


class ModbusRtuServer:
    """Serves ``units`` on the master side of a pty; ``slave_path`` is what the gateway opens.

    A symlink at ``link_path`` (e.g. the ``/dev/ttyUSB0``-like path a site file names) is made
    when given and removed on exit.
    """

    def __init__(
        self, units: Mapping[int, SimulatedDevice], *, link_path: str | None = None, seed: int = 0
    ) -> None:
        self.units = dict(units)
        self.link_path = link_path
        self.rng = random.Random(seed)
        self.slave_path = ""
        self._master = -1
        self._slave = -1
        self._buffer = bytearray()
        self._linked = False

    async def __aenter__(self) -> ModbusRtuServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        self._master, self._slave, self.slave_path = open_pty()
        asyncio.get_running_loop().add_reader(self._master, self._readable)
        if self.link_path:
            try:
                os.symlink(self.slave_path, self.link_path)
                self._linked = True
            except OSError as exc:
                _LOG.warning("could not link the simulated serial port", path=self.link_path, error=str(exc))
        _LOG.debug(
            "rtu simulator on pty", path=self.slave_path, link=self.link_path, units=sorted(self.units)
        )

    async def close(self) -> None:
        if self._master < 0:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        for fd in (self._master, self._slave):
            os.close(fd)
        self._master = self._slave = -1
        if self._linked and self.link_path:
            os.unlink(self.link_path)
            self._linked = False

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            # EIO when no process has the slave side open; the next open starts afresh.
            _LOG.debug("pty read failed", error=str(exc))
            return
        self._buffer += data
        self._drain()

    def _drain(self) -> None:
        while True:
            length = _request_length(self._buffer)
            if length is None or len(self._buffer) < length:
                return
            frame = bytes(self._buffer[:length])
            if crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
                del self._buffer[0]  # resynchronise: the frame started somewhere later
                continue
            del self._buffer[:length]
            self._answer(frame[0], frame[1:-2])

    def _answer(self, unit: int, pdu: bytes) -> None:
        device = self.units.get(unit)
        if device is None:
            return  # not ours: on a bus only the addressed device answers
        answer = plan(device.faults)
        if not answer.send or device.faults.comm_loss:
            return  # on a serial line a lost device is simply silent (no bridge to speak for it)
        if answer.exception_code is not None:
            response = exception_pdu(pdu[0], answer.exception_code)
        else:
            response = device.handle_pdu(pdu)
        frame = _with_crc(bytes((unit,)) + response)
        if answer.corrupt:
            frame = frame[:-2] + bytes(((frame[-2] ^ 0xFF), frame[-1])) + noise(self.rng, 3)
        if answer.delay_s > 0:
            asyncio.get_running_loop().call_later(answer.delay_s, self._write, frame)
        else:
            self._write(frame)

    def _write(self, frame: bytes) -> None:
        if self._master < 0:
            return
        try:
            os.write(self._master, frame)
        except OSError as exc:
            _LOG.debug("pty write failed", error=str(exc))
