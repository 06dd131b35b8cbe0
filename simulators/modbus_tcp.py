"""A lean asyncio Modbus TCP server for simulated devices: one listening port, many unit ids.

One server answering several unit ids is how a TCP-to-RTU bridge looks to the gateway. The
server is a plain ``asyncio.Protocol`` (no task per connection), so a process can hold hundreds
of them; faults (silence, delay, exception answers, garbage) are applied per unit.

Why not pymodbus' server: its datastore and request pipeline cannot answer one unit late or
with noise while its neighbours answer normally, and it costs several tasks per listener (see
``docs/simulators.md`` and ``bench/sim_scale.py`` for the measurements).
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Mapping
from types import TracebackType

import structlog

from simulators.device import SimulatedDevice, exception_pdu
from simulators.faults import GATEWAY_TARGET_FAILED, noise, plan

__all__ = ["ModbusTcpServer"]

_LOG = structlog.get_logger(__name__)

_MBAP = struct.Struct(">HHHB")
_MAX_ADU = 260


class _Connection(asyncio.Protocol):
    def __init__(self, server: ModbusTcpServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.connections.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._server.connections.discard(self._transport)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _MBAP.size:
            tid, pid, length, unit = _MBAP.unpack_from(self._buffer)
            if pid != 0 or not 2 <= length <= _MAX_ADU - 6:
                # Not Modbus: a real device closes such a connection.
                _LOG.debug("simulator dropped a connection after a bad MBAP header")
                if self._transport is not None:
                    self._transport.close()
                self._buffer.clear()
                return
            end = 6 + length
            if len(self._buffer) < end:
                return
            pdu = bytes(self._buffer[_MBAP.size : end])
            del self._buffer[:end]
            self._answer(tid, unit, pdu)

    def _answer(self, tid: int, unit: int, pdu: bytes) -> None:
        device = self._server.units.get(unit)
        if device is None:
            function = pdu[0] if pdu else 0
            self._send(0.0, _frame(tid, unit, exception_pdu(function, GATEWAY_TARGET_FAILED)))
            return
        answer = plan(device.faults)
        if not answer.send:
            return
        if answer.exception_code is not None:
            response = exception_pdu(pdu[0] if pdu else 0, answer.exception_code)
        else:
            response = device.handle_pdu(pdu)
        frame = _frame(tid, unit, response)
        if answer.corrupt:
            frame = noise(self._server.rng, len(frame))
        self._send(answer.delay_s, frame)

    def _send(self, delay_s: float, frame: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        if delay_s <= 0:
            transport.write(frame)
            return
        # A timer rather than a task: nothing to keep a reference to, and cheap at scale.
        asyncio.get_running_loop().call_later(delay_s, _write_if_open, transport, frame)


def _write_if_open(transport: asyncio.Transport, frame: bytes) -> None:
    if not transport.is_closing():
        transport.write(frame)


def _frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return _MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu


class ModbusTcpServer:
    """``async with ModbusTcpServer(host, port, {unit: device}) as server:`` serves until exit.

    ``port=0`` picks a free port; ``server.port`` tells which.
    """

    def __init__(self, host: str, port: int, units: Mapping[int, SimulatedDevice], *, seed: int = 0) -> None:
        self.host = host
        self.port = port
        self.units = dict(units)
        self.rng = random.Random(seed)
        self.connections: set[asyncio.Transport] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ModbusTcpServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, reuse_address=True
        )
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        _LOG.debug("simulator listening", host=self.host, port=self.port, units=sorted(self.units))

    def drop_connections(self) -> None:
        """Close every client connection (the gateway sees the connection lost)."""
        for transport in list(self.connections):
            transport.close()

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        self.drop_connections()
        await self._server.wait_closed()
        self._server = None
