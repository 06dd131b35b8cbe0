"""RTU over TCP: a serial device server in transparent mode, with the emulated RS-485 line
(``simulators.rs485_line``) behind it. RTU frames, no MBAP header; answers go to the client
that is connected (a device server serves one master at a time; a new one takes over)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType

import structlog

from simulators.device import SimulatedDevice
from simulators.rs485_line import Rs485Line

__all__ = ["RtuOverTcpServer"]

_LOG = structlog.get_logger(__name__)


class _Connection(asyncio.Protocol):
    def __init__(self, server: RtuOverTcpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections += 1
        self.server._current = self

    def data_received(self, data: bytes) -> None:
        if self.server._current is self:
            self.server.line.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.server._current is self:
            self.server._current = None


class RtuOverTcpServer:
    """``async with RtuOverTcpServer(units, port=0) as server:`` serves on ``server.port``."""

    def __init__(
        self,
        units: Mapping[int, SimulatedDevice],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        baudrate: int = 9600,
        turnaround_ms: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.line = Rs485Line(units, baudrate=baudrate, parity="E", turnaround_ms=turnaround_ms, seed=seed)
        self.line.send = self._write
        self.host = host
        self.port = port
        self.connections = 0
        self._current: _Connection | None = None
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RtuOverTcpServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        _LOG.debug("rtu-over-tcp simulator", host=self.host, port=self.port, units=sorted(self.line.units))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.drop_clients()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def drop_clients(self) -> None:
        """Close the connection to the master (a device server rebooting)."""
        current, self._current = self._current, None
        self.line.reset()
        if current is not None and current.transport is not None:
            current.transport.close()

    def _write(self, data: bytes) -> None:
        current = self._current
        if current is not None and current.transport is not None and not current.transport.is_closing():
            current.transport.write(data)
