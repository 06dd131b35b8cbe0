"""Real Modbus TCP servers for driver tests: a pymodbus server that counts requests, and small
raw asyncio servers that misbehave on purpose (silent, late, garbled, hanging up)."""

from __future__ import annotations

import asyncio
import collections
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from tests.support import free_port

# Function codes, to make assertions read well.
FC_READ_COILS = 1
FC_READ_DISCRETE_INPUTS = 2
FC_READ_HOLDING = 3
FC_READ_INPUT = 4
FC_WRITE_COIL = 5
FC_WRITE_REGISTER = 6
FC_WRITE_COILS = 15
FC_WRITE_REGISTERS = 16
READ_CODES = (FC_READ_COILS, FC_READ_DISCRETE_INPUTS, FC_READ_HOLDING, FC_READ_INPUT)

REGISTERS_PER_TABLE = 1000
BITS_PER_TABLE = 1024  # 64 registers of 16 bits


@dataclass
class CountingServer:
    """A pymodbus TCP server on 127.0.0.1 with one simulated device per unit id.

    Every table of every unit holds zeros at addresses 0..999 (bits 0..1023); anything beyond
    answers with exception 2 (illegal data address). ``requests`` counts the requests received
    per (unit, function code); ``max_in_flight`` is the most requests ever awaiting an answer
    at once, across all connections.
    """

    port: int
    units: tuple[int, ...]
    requests: collections.Counter[tuple[int, int]] = field(default_factory=collections.Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    _server: ModbusTcpServer | None = None

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if sending:
            self.in_flight -= 1
        else:
            self.requests[(pdu.dev_id, pdu.function_code)] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return pdu

    async def start(self) -> None:
        devices = [
            SimDevice(
                id=unit,
                simdata=(
                    [SimData(0, count=BITS_PER_TABLE // 16, values=0, datatype=SimType.BITS)],
                    [SimData(0, count=BITS_PER_TABLE // 16, values=0, datatype=SimType.BITS)],
                    [SimData(0, count=REGISTERS_PER_TABLE, values=0, datatype=SimType.REGISTERS)],
                    [SimData(0, count=REGISTERS_PER_TABLE, values=0, datatype=SimType.REGISTERS)],
                ),
            )
            for unit in self.units
        ]
        self.in_flight = 0
        self._server = ModbusTcpServer(devices, address=("127.0.0.1", self.port), trace_pdu=self._trace)
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    def reads(self, unit: int | None = None) -> int:
        return sum(n for (u, fc), n in self.requests.items() if fc in READ_CODES and unit in (None, u))

    def count(self, function_code: int, unit: int | None = None) -> int:
        return sum(n for (u, fc), n in self.requests.items() if fc == function_code and unit in (None, u))

    async def set_registers(self, unit: int, function_code: int, address: int, values: list[int]) -> None:
        """Set holding (3) or input (4) registers, or coils (1) / discrete inputs (2) as 0/1."""
        assert self._server is not None
        if function_code in (FC_READ_COILS, FC_READ_DISCRETE_INPUTS):
            await self._server.async_setValues(unit, function_code, address, [bool(v) for v in values])
        else:
            await self._server.async_setValues(unit, function_code, address, values)

    async def get_registers(self, unit: int, function_code: int, address: int, count: int) -> list[int]:
        assert self._server is not None
        values = await self._server.async_getValues(unit, function_code, address, count)
        return [int(v) for v in values]


@pytest.fixture
async def modbus_server() -> AsyncIterator[CountingServer]:
    """A counting pymodbus server with units 1 and 2."""
    server = CountingServer(port=free_port(), units=(1, 2))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# --- raw servers that misbehave ----------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawServer"], Awaitable[None]]


@dataclass
class RawServer:
    """An asyncio TCP server whose behaviour is one handler coroutine per connection."""

    port: int
    connections: int = 0
    frames: list[tuple[int, int, bytes]] = field(default_factory=list)  # (tid, unit, pdu)
    _server: asyncio.Server | None = None

    async def read_frame(self, reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
        header = await reader.readexactly(7)
        tid, _pid, length, unit = struct.unpack(">HHHB", header)
        pdu = await reader.readexactly(length - 1)
        frame = (tid, unit, pdu)
        self.frames.append(frame)
        return frame


def registers_answer(tid: int, unit: int, registers: list[int], function_code: int = 3) -> bytes:
    body = struct.pack(f">BB{len(registers)}H", function_code, 2 * len(registers), *registers)
    return struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body


RawServerFactory = Callable[[Handler], Awaitable[RawServer]]


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServerFactory]:
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(handler: Handler) -> RawServer:
        raw = RawServer(port=free_port())

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            raw.connections += 1
            writers.append(writer)
            try:
                await handler(reader, writer, raw)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", raw.port)
        raw._server = server
        servers.append(server)
        return raw

    yield start
    for writer in writers:
        writer.close()
    for server in servers:
        server.close()
        await server.wait_closed()
