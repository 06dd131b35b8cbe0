"""``ModbusTcpLink``'s own MBAP client against raw servers that frame answers oddly: split,
batched, foreign, not Modbus at all; and what the link leaves behind when cancelled or closed."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import pytest

from core.errors import ConnectionLost, DeviceTimeout, FramingError
from drivers.modbus import ModbusTcpLink, Table
from tests.integration.drivers.conftest import (
    FC_READ_COILS,
    FC_WRITE_COILS,
    CountingServer,
    RawServer,
    RawServerFactory,
    registers_answer,
)
from tests.support import wait_until


async def test_an_answer_dribbled_byte_by_byte_is_assembled(raw_server: RawServerFactory) -> None:
    async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        while True:
            tid, unit, _ = await raw.read_frame(reader)
            for byte in registers_answer(tid, unit, [1, 2, 3]):
                writer.write(bytes((byte,)))
                await writer.drain()

    raw = await raw_server(dribble)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=10_000) as link:
        for _ in range(3):
            assert await link.read(1, Table.HOLDING, 0, 3) == [1, 2, 3]
        assert link.stats.connects == 1 and link.stats.dropped_frames == 0


async def test_a_foreign_frame_and_the_answer_in_one_chunk(raw_server: RawServerFactory) -> None:
    async def batched(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        while True:
            tid, unit, _ = await raw.read_frame(reader)
            stale = registers_answer((tid - 1) & 0xFFFF, unit, [666])
            other_unit = registers_answer(tid, unit + 1, [777])
            writer.write(stale + other_unit + registers_answer(tid, unit, [42]))
            await writer.drain()

    raw = await raw_server(batched)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=10_000) as link:
        assert await link.read(1, Table.HOLDING, 0, 1) == [42]
        assert await link.read(1, Table.HOLDING, 0, 1) == [42]
        assert link.stats.dropped_frames == 4
        assert link.stats.connects == 1


async def test_a_late_answer_is_counted_and_dropped(raw_server: RawServerFactory) -> None:
    release = asyncio.Event()

    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        first_tid, unit, _ = await raw.read_frame(reader)
        second_tid, unit, _ = await raw.read_frame(reader)  # sent after the first timed out
        writer.write(registers_answer(first_tid, unit, [111]))
        await writer.drain()
        # Answer the second only once the late one has demonstrably been seen and dropped.
        await release.wait()
        writer.write(registers_answer(second_tid, unit, [222]))
        await writer.drain()
        await reader.read()

    raw = await raw_server(late)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=300, retries=0) as link:
        with pytest.raises(DeviceTimeout):
            await link.read(1, Table.HOLDING, 0, 1)
        second = asyncio.create_task(link.read(1, Table.HOLDING, 0, 1))

        def late_answer_dropped() -> bool:
            if link.stats.dropped_frames == 1:
                release.set()
                return True
            return False

        await wait_until(late_answer_dropped, message="the late answer to be dropped")
        assert await second == [222]
    assert raw.connections == 1


async def test_a_right_tid_from_the_wrong_unit_is_not_the_answer(raw_server: RawServerFactory) -> None:
    async def wrong_unit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        while True:
            tid, unit, _ = await raw.read_frame(reader)
            writer.write(registers_answer(tid, unit ^ 1, [5]))
            await writer.drain()

    raw = await raw_server(wrong_unit)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=300, retries=0) as link:
        with pytest.raises(DeviceTimeout):
            await link.read(4, Table.HOLDING, 0, 1)
        await wait_until(lambda: link.stats.dropped_frames == 1, message="the wrong unit's frame dropped")


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda tid, unit: struct.pack(">HHHBBBH", tid, 1, 5, unit, 3, 2, 7), id="protocol-id-1"),
        pytest.param(lambda tid, unit: struct.pack(">HHHB", tid, 0, 1000, unit), id="oversize-length"),
        pytest.param(lambda tid, unit: struct.pack(">HHHB", tid, 0, 1, unit), id="no-room-for-a-pdu"),
    ],
)
async def test_a_frame_that_is_not_modbus_tcp_fails_at_once_and_resets(
    raw_server: RawServerFactory, answer: Callable[[int, int], bytes]
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        first_connection = raw.connections == 1
        while True:
            tid, unit, _ = await raw.read_frame(reader)
            writer.write(answer(tid, unit) if first_connection else registers_answer(tid, unit, [9]))
            await writer.drain()

    raw = await raw_server(handler)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=10_000, retries=3) as link:
        with pytest.raises(FramingError, match="protocol id|length"):
            await link.read(1, Table.HOLDING, 0, 1)
        assert (link.stats.attempts, link.stats.timeouts, link.stats.framing_errors) == (1, 0, 1)
        assert not link.connected
        assert await link.read(1, Table.HOLDING, 0, 1) == [9]
        assert link.stats.connects == 2


async def test_the_answer_before_garbage_in_one_chunk_still_counts(raw_server: RawServerFactory) -> None:
    async def answer_then_garbage(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer
    ) -> None:
        while True:
            tid, unit, _ = await raw.read_frame(reader)
            writer.write(registers_answer(tid, unit, [8]) + b"\xff" * 12)
            await writer.drain()

    raw = await raw_server(answer_then_garbage)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=10_000) as link:
        assert await link.read(1, Table.HOLDING, 0, 1) == [8]
        # The garbage makes the stream untrustworthy: the next request starts a new connection.
        await wait_until(lambda: not link.connected, message="the connection to be given up")
        assert await link.read(1, Table.HOLDING, 0, 1) == [8]
        assert link.stats.connects == 2


async def test_unit_255_and_unit_0_address_a_tcp_device_directly(raw_server: RawServerFactory) -> None:
    async def echo_unit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        while True:
            tid, unit, _ = await raw.read_frame(reader)
            writer.write(registers_answer(tid, unit, [unit]))
            await writer.drain()

    raw = await raw_server(echo_unit)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=10_000) as link:
        assert await link.read(255, Table.HOLDING, 0, 1) == [255]
        assert await link.read(0, Table.HOLDING, 0, 1) == [0]


async def test_write_coils_fc15_reaches_a_real_server(modbus_server: CountingServer) -> None:
    async with ModbusTcpLink("127.0.0.1", modbus_server.port) as link:
        bits = [True, False, True, True, False, False, True, True, True]
        await link.write_coils(1, 100, bits)
        assert modbus_server.count(FC_WRITE_COILS) == 1
        assert await modbus_server.get_registers(1, FC_READ_COILS, 100, len(bits)) == [int(b) for b in bits]
        assert await link.read(1, Table.COIL, 100, len(bits)) == [int(b) for b in bits]


async def test_a_cancelled_read_releases_the_link_and_its_answer_is_dropped(
    raw_server: RawServerFactory,
) -> None:
    answer_first = asyncio.Event()

    async def slow_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        first_tid, unit, _ = await raw.read_frame(reader)
        await answer_first.wait()
        writer.write(registers_answer(first_tid, unit, [1]))
        while True:
            tid, unit, _ = await raw.read_frame(reader)
            writer.write(registers_answer(tid, unit, [2]))
            await writer.drain()

    raw = await raw_server(slow_first)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=10_000) as link:
        first = asyncio.create_task(link.read(1, Table.HOLDING, 0, 1))
        await wait_until(lambda: len(raw.frames) == 1, message="the first request on the wire")
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        answer_first.set()
        assert await link.read(1, Table.HOLDING, 0, 1) == [2]
        assert link.stats.connects == 1


async def test_aclose_closes_the_socket_and_the_link_refuses_afterwards(raw_server: RawServerFactory) -> None:
    hung_up = asyncio.Event()

    async def until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        tid, unit, _ = await raw.read_frame(reader)
        writer.write(registers_answer(tid, unit, [3]))
        await writer.drain()
        assert await reader.read() == b""
        hung_up.set()

    raw = await raw_server(until_eof)
    link = ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=10_000)
    async with link:
        assert await link.read(1, Table.HOLDING, 0, 1) == [3]
        assert link.connected
    assert not link.connected
    await asyncio.wait_for(hung_up.wait(), timeout=30)
    with pytest.raises(ConnectionLost, match="closed"):
        await link.read(1, Table.HOLDING, 0, 1)
