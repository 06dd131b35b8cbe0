"""Modbus RTU (or ASCII) over a pseudo-terminal: the simulator holds the master side, the
gateway opens the slave path as if it were a USB-RS485 adapter.

The line itself (devices, wire time at the baud, frame log, faults) is ``simulators.rs485_line``;
this module only moves bytes between the pty and the line. ``unplug()`` and ``replug()`` act
out a USB adapter pulled and plugged back: the pty is closed (the gateway's reads end) and a
new one is opened behind the same ``link_path`` symlink.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import tty
from collections.abc import Mapping
from types import TracebackType

import structlog

from simulators.device import SimulatedDevice
from simulators.rs485_line import Rs485Line, crc16

__all__ = ["ModbusRtuServer", "crc16", "open_pty"]

_LOG = structlog.get_logger(__name__)


def open_pty() -> tuple[int, int, str]:
    """A raw pseudo-terminal pair: (master fd, slave fd, slave path)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


class ModbusRtuServer:
    """Serves ``units`` on the master side of a pty; ``slave_path`` is what the gateway opens.

    A symlink at ``link_path`` (e.g. the ``/dev/ttyUSB0``-like path a site file names) is made
    when given and removed on exit. ``mode`` is ``"rtu"`` or ``"ascii"``; the line settings set
    its wire time (``simulators.rs485_line``).
    """

    def __init__(
        self,
        units: Mapping[int, SimulatedDevice],
        *,
        link_path: str | None = None,
        seed: int = 0,
        mode: str = "rtu",
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
        turnaround_ms: float = 2.0,
    ) -> None:
        self.line = Rs485Line(
            units,
            mode=mode,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            turnaround_ms=turnaround_ms,
            seed=seed,
        )
        self.line.send = self._write
        self.units = self.line.units
        self.link_path = link_path
        self.slave_path = ""
        self._master = -1
        self._slave = -1
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
                with contextlib.suppress(FileNotFoundError):
                    if stat.S_ISLNK(os.lstat(self.link_path).st_mode):  # ours, left by a crash
                        os.unlink(self.link_path)
                os.makedirs(os.path.dirname(self.link_path) or ".", exist_ok=True)
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
        self.line.reset()
        for fd in (self._master, self._slave):
            os.close(fd)
        self._master = self._slave = -1
        if self._linked and self.link_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link_path)
            self._linked = False

    async def unplug(self) -> None:
        """The USB adapter is pulled: the pty goes away, and so does the symlink."""
        await self.close()

    async def replug(self) -> None:
        """Plugged back: a new pty (a new slave path) behind the same symlink."""
        await self.close()
        await self.start()

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            # EIO when no process has the slave side open; the next open starts afresh.
            _LOG.debug("pty read failed", error=str(exc))
            return
        self.line.feed(data)

    def _write(self, frame: bytes) -> None:
        if self._master < 0:
            return
        try:
            os.write(self._master, frame)
        except OSError as exc:
            _LOG.debug("pty write failed", error=str(exc))
