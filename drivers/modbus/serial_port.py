"""Byte transports under the serial scheduler: a serial port (tty, USB adapter, pty) and a TCP
stream to a serial device server. Both collect what arrives into ``buffer`` from the event
loop's reader callback and note when it arrived, which the scheduler needs for line silence.

Errors are translated here: anything that says the port or connection is gone (EIO, end of
file, the device node vanished, a refused or dropped connection) is ``ConnectionLost``, and
the transport calls ``on_lost`` once, even when nobody is waiting for an answer, so that an
unplugged adapter is noticed while the line is idle.

pyserial configures the tty (baud, parity, stop bits, byte size, exclusive lock, RS-485 mode);
the reads and writes then go straight to its file descriptor, non-blocking, through the event
loop, so no thread is involved.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import structlog

from core.errors import ConnectionLost
from drivers.serial_open import open_serial

__all__ = ["ByteTransport", "SerialPortTransport", "TcpStreamTransport"]

_LOG = structlog.get_logger(__name__)


class ByteTransport:
    """What the scheduler needs of a transport; subclasses open and close the real thing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.buffer = bytearray()
        self.last_rx = 0.0  # loop time of the last bytes received
        self.bytes_rx = 0
        self.lost_reason: str | None = "not open"
        self.on_lost: Callable[[str], None] | None = None
        self._arrived = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return self.lost_reason is None

    async def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    def flush_input(self) -> int:
        """Drop what has arrived and not been read; the count of bytes dropped."""
        dropped = len(self.buffer)
        self.buffer.clear()
        return dropped

    async def wait_data(self, deadline: float) -> bool:
        """Wait until bytes arrive (True) or the loop time ``deadline`` passes (False).

        Raises ``ConnectionLost`` when the transport is or becomes lost.
        """
        self._check()
        self._arrived.clear()
        delay = deadline - asyncio.get_running_loop().time()
        if delay <= 0:
            return False
        try:
            async with asyncio.timeout(delay):
                await self._arrived.wait()
        except TimeoutError:
            self._check()
            return False
        self._check()
        return True

    def _check(self) -> None:
        if self.lost_reason is not None:
            raise ConnectionLost(f"{self.name}: {self.lost_reason}")

    def _received(self, data: bytes) -> None:
        self.buffer += data
        self.bytes_rx += len(data)
        self.last_rx = asyncio.get_running_loop().time()
        self._arrived.set()

    def _lost(self, reason: str) -> None:
        if self.lost_reason is not None:
            return
        self.lost_reason = reason
        self._arrived.set()  # wake a waiter so that it raises
        self.close()
        self.lost_reason = reason  # close() may have set its own wording
        if self.on_lost is not None:
            self.on_lost(reason)


class SerialPortTransport(ByteTransport):
    """A serial port by path, configured by pyserial; RS-485 mode only when asked for."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        bytesize: int = 8,
        rs485: bool = False,
    ) -> None:
        super().__init__(port)
        self.port = port
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.bytesize = bytesize
        self.rs485 = rs485
        self._serial: object | None = None
        self._fd = -1

    async def open(self) -> None:
        port = open_serial(
            self.port,
            baudrate=self.baudrate,
            bytesize=self.bytesize,
            parity=self.parity,
            stopbits=self.stopbits,
        )
        if self.rs485:
            self._set_rs485(port)
        self._serial = port
        self._fd = port.fileno()
        os.set_blocking(self._fd, False)
        self.buffer.clear()
        self.lost_reason = None
        asyncio.get_running_loop().add_reader(self._fd, self._readable)

    def _set_rs485(self, port: object) -> None:
        import termios

        import serial.rs485

        try:
            port.rs485_mode = serial.rs485.RS485Settings()  # type: ignore[attr-defined]
        except (ValueError, OSError, termios.error) as exc:
            # A pty or an adapter that switches direction in hardware has no RS-485 ioctl;
            # the line still works, the kernel just does not drive RTS.
            _LOG.warning("serial.rs485_unsupported", port=self.port, error=str(exc))

    def close(self) -> None:
        if self._fd >= 0:
            try:
                asyncio.get_running_loop().remove_reader(self._fd)
            except RuntimeError:
                pass  # no running loop: the process is shutting down
            self._fd = -1
        port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()  # type: ignore[attr-defined]
            except OSError as exc:
                _LOG.debug("serial.close_failed", port=self.port, error=str(exc))
        if self.lost_reason is None:
            self.lost_reason = "closed"

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(f"read failed: {exc}")
            return
        if not data:
            self._lost("the port was closed under us (end of file)")
            return
        self._received(data)

    async def send(self, data: bytes) -> None:
        self._check()
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                await asyncio.sleep(0.001)  # the driver's output buffer is full: let it drain
                self._check()
                continue
            except OSError as exc:
                self._lost(f"write failed: {exc}")
                raise ConnectionLost(f"{self.name}: write failed: {exc}") from exc
            view = view[written:]

    def flush_input(self) -> int:
        import termios  # POSIX only, like the pyserial backend that raises it

        port = self._serial
        if port is not None:
            try:
                port.reset_input_buffer()  # type: ignore[attr-defined]
            except (OSError, termios.error) as exc:
                # termios.error is not an OSError: a pty whose other end went away (an unplugged
                # adapter) answers tcflush with EIO, which must read as a lost port, not a crash.
                self._lost(f"flush failed: {exc}")
        return super().flush_input()


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, owner: TcpStreamTransport) -> None:
        self.owner = owner

    def data_received(self, data: bytes) -> None:
        self.owner._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost(f"connection closed: {exc}" if exc else "connection closed by the server")


class TcpStreamTransport(ByteTransport):
    """A TCP connection to a serial device server in transparent (raw) mode."""

    def __init__(self, host: str, port: int, *, connect_timeout_s: float = 3.0) -> None:
        super().__init__(f"{host}:{port}")
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self._transport: asyncio.Transport | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                transport, _ = await loop.create_connection(
                    lambda: _StreamProtocol(self), self.host, self.port
                )
        except (OSError, TimeoutError) as exc:
            raise ConnectionLost(f"cannot connect to {self.name}: {exc or 'timed out'}") from exc
        self._transport = transport
        self.buffer.clear()
        self.lost_reason = None

    def close(self) -> None:
        transport, self._transport = self._transport, None
        if self.lost_reason is None:
            self.lost_reason = "closed"
        if transport is not None:
            transport.close()

    async def send(self, data: bytes) -> None:
        self._check()
        assert self._transport is not None
        self._transport.write(data)
