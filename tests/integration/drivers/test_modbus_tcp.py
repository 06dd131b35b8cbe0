"""The Modbus TCP driver against real servers: a pymodbus server and raw misbehaving ones."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
from typing import Any

import pytest

from core.errors import ConnectionLost, DeviceError, DeviceTimeout, FramingError
from core.model import Quality, Reason
from drivers.base import Driver
from drivers.modbus import ModbusDevice, ModbusTcpLink, Table
from drivers.modbus.config import ModbusPointConfig as PointConfig
from drivers.modbus.types import DataType, WordOrder
from tests.integration.drivers.conftest import (
    FC_READ_COILS,
    FC_READ_DISCRETE_INPUTS,
    FC_READ_HOLDING,
    FC_READ_INPUT,
    FC_WRITE_COIL,
    FC_WRITE_REGISTER,
    FC_WRITE_REGISTERS,
    CountingServer,
    RawServer,
    RawServerFactory,
    registers_answer,
)
from tests.support import free_port, wait_until

STRUCT_CODES = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}
SAMPLE_RAW = {
    DataType.INT16: -12345,
    DataType.UINT16: 54321,
    DataType.INT32: -123456789,
    DataType.UINT32: 3_000_000_000,
    DataType.INT64: -(2**62) + 12345,
    DataType.UINT64: 2**63 + 98765,
    DataType.FLOAT32: -1.5,
    DataType.FLOAT64: 12345.678901234,
}


def reference_registers(data_type: DataType, order: WordOrder, raw: int | float) -> list[int]:
    """Registers as a device would hold them, written out byte by byte (not via the codec)."""
    be = struct.pack(">" + STRUCT_CODES[data_type], raw)  # A B C D ...
    if order is WordOrder.DCBA:
        ordered = be[::-1]
    elif order is WordOrder.BADC:
        ordered = b"".join(be[i + 1 : i + 2] + be[i : i + 1] for i in range(0, len(be), 2))
    elif order is WordOrder.CDAB:
        ordered = b"".join(be[i : i + 2] for i in range(len(be) - 2, -1, -2))
    else:
        ordered = be
    return [int.from_bytes(ordered[i : i + 2], "big") for i in range(0, len(ordered), 2)]


def point(**fields: Any) -> PointConfig:
    return PointConfig(**fields)


async def test_every_type_and_order_decodes_and_reads_follow_the_plan(modbus_server: CountingServer) -> None:
    points: list[PointConfig] = []
    expected: dict[str, Any] = {}
    address = 0
    for data_type, raw in SAMPLE_RAW.items():
        for order in WordOrder:
            key = f"{data_type.value}-{order.value.lower()}"
            registers = reference_registers(data_type, order, raw)
            await modbus_server.set_registers(1, FC_READ_HOLDING, address, registers)
            points.append(point(id=key, address=address, type=data_type, order=order))
            expected[key] = raw
            address += len(registers)
            # A scaled copy in the input registers, read with FC 04.
            scaled_key = f"{key}-scaled"
            await modbus_server.set_registers(1, FC_READ_INPUT, address, registers)
            points.append(
                point(
                    id=scaled_key,
                    table=Table.INPUT,
                    address=address,
                    type=data_type,
                    order=order,
                    scale=0.1,
                    offset=-40.0,
                )
            )
            expected[scaled_key] = raw * 0.1 - 40.0
            address += len(registers) + 20  # leaves holes wider than max_gap in the input table
    assert address < 900
    # A string, bits of a register, coils and discrete inputs.
    await modbus_server.set_registers(1, FC_READ_HOLDING, 900, [0x5344, 0x4D36, 0x3330, 0x0000])
    points.append(point(id="model", address=900, type=DataType.STRING, length=4))
    expected["model"] = "SDM630"
    await modbus_server.set_registers(1, FC_READ_HOLDING, 910, [0b1000_0000_0000_0101])
    for bit, value in ((0, True), (1, False), (2, True), (15, True)):
        points.append(point(id=f"status-b{bit}", address=910, type=DataType.BIT, bit=bit))
        expected[f"status-b{bit}"] = value
    await modbus_server.set_registers(1, FC_READ_COILS, 3, [1, 0, 1])
    await modbus_server.set_registers(1, FC_READ_DISCRETE_INPUTS, 700, [1])
    for key, table, addr, value in (
        ("coil-3", Table.COIL, 3, True),
        ("coil-4", Table.COIL, 4, False),
        ("coil-5", Table.COIL, 5, True),
        ("di-700", Table.DISCRETE_INPUT, 700, True),
    ):
        points.append(point(id=key, table=table, address=addr, type=DataType.BOOL))
        expected[key] = value

    async with ModbusTcpLink("127.0.0.1", modbus_server.port, timeout_ms=5000) as link:
        device = ModbusDevice("meter", 1, link, points, max_gap=16)
        plan = device.poll_groups()
        for _poll in range(3):
            before = dict(modbus_server.requests)
            got: dict[str, Any] = {}
            for group in plan:
                for reading in await device.read(group):
                    assert reading.quality is Quality.GOOD, reading
                    got[reading.key] = reading.value
            assert set(got) == set(expected)
            for key, want in expected.items():
                if isinstance(want, float):
                    assert got[key] == pytest.approx(want, rel=1e-6), key
                else:
                    assert got[key] == want, key
                    assert type(got[key]) is type(want), key
            # The server saw exactly one request per block, with the block's function code.
            seen = {k: n - before.get(k, 0) for k, n in modbus_server.requests.items()}
            fcs = {Table.COIL: 1, Table.DISCRETE_INPUT: 2, Table.HOLDING: 3, Table.INPUT: 4}
            for table, fc in fcs.items():
                assert seen.get((1, fc), 0) == sum(1 for b in plan if b.table is table), table
        assert sum(1 for b in plan if b.table is Table.INPUT) == len(SAMPLE_RAW) * len(WordOrder)
        assert link.stats.requests == 3 * len(plan)


async def test_valid_range_and_nan_become_bad_out_of_range(modbus_server: CountingServer) -> None:
    nan = reference_registers(DataType.FLOAT32, WordOrder.ABCD, float("nan"))
    await modbus_server.set_registers(1, FC_READ_HOLDING, 0, [500, 20, *nan])
    points = [
        point(id="level", address=0, valid_min=0, valid_max=400),
        point(id="ok", address=1, valid_min=0, valid_max=400),
        point(id="flow", address=2, type=DataType.FLOAT32),
    ]
    async with ModbusTcpLink("127.0.0.1", modbus_server.port) as link:
        device = ModbusDevice("tank", 1, link, points)
        (group,) = device.poll_groups()
        readings = {r.key: r for r in await device.read(group)}
    assert (readings["level"].value, readings["level"].quality) == (500, Quality.BAD)
    assert readings["level"].reason is Reason.OUT_OF_RANGE
    assert (readings["ok"].value, readings["ok"].quality) == (20, Quality.GOOD)
    assert math.isnan(readings["flow"].value)  # type: ignore[arg-type]
    assert (readings["flow"].quality, readings["flow"].reason) == (Quality.BAD, Reason.OUT_OF_RANGE)


async def test_writes_use_the_right_function_codes_and_read_back(modbus_server: CountingServer) -> None:
    points = [
        point(id="setpoint", address=10, scale=0.1, access="rw"),
        point(id="limit", address=20, type=DataType.FLOAT32, order=WordOrder.CDAB, access="rw"),
        point(id="pump", table=Table.COIL, address=7, type=DataType.BOOL, access="rw"),
        point(id="relay-3", address=30, type=DataType.BIT, bit=3, access="rw"),
        point(id="mode", address=40, enum={0: "off", 1: "auto", 2: "manual"}, access="rw"),
        point(id="name", address=50, type=DataType.STRING, length=4, access="rw"),
        point(id="reset", address=60, access="w"),
        point(id="reading", address=70),
        point(id="raw-in", table=Table.INPUT, address=0),
    ]
    await modbus_server.set_registers(1, FC_READ_HOLDING, 30, [0x0100])
    async with ModbusTcpLink("127.0.0.1", modbus_server.port) as link:
        device = ModbusDevice("ahu", 1, link, points)
        driver: Driver = device  # the device is a Driver, as the coordinator sees it
        assert driver.pushed() is None
        assert "reset" not in {k for g in device.poll_groups() for k in g.keys}

        assert await device.write("setpoint", 21.5) == pytest.approx(21.5)
        assert await modbus_server.get_registers(1, FC_READ_HOLDING, 10, 1) == [215]
        assert modbus_server.count(FC_WRITE_REGISTER) == 1

        assert await device.write("limit", 32.25) == 32.25
        assert await modbus_server.get_registers(1, FC_READ_HOLDING, 20, 2) == [0x0000, 0x4201]
        assert modbus_server.count(FC_WRITE_REGISTERS) == 1

        assert await device.write("pump", True) is True
        assert await modbus_server.get_registers(1, FC_READ_COILS, 7, 1) == [1]
        assert modbus_server.count(FC_WRITE_COIL) == 1

        assert await device.write("relay-3", True) is True
        assert await modbus_server.get_registers(1, FC_READ_HOLDING, 30, 1) == [0x0108]

        assert await device.write("mode", "manual") == 2
        assert await device.write("name", "AHU1") == "AHU1"
        assert await device.write("reset", 1) is None
        assert await device.write("setpoint", 19.0, verify=False) is None

        requests_before = sum(modbus_server.requests.values())
        with pytest.raises(ValueError, match="read-only"):
            await device.write("reading", 1)
        with pytest.raises(ValueError, match="read-only"):
            await device.write("raw-in", 1)
        with pytest.raises(ValueError, match="no point"):
            await device.write("nope", 1)
        with pytest.raises(ValueError, match="does not fit"):
            await device.write("setpoint", 7000)
        with pytest.raises(ValueError, match="no state"):
            await device.write("mode", "turbo")
        assert sum(modbus_server.requests.values()) == requests_before


async def test_exception_response_becomes_device_error(modbus_server: CountingServer) -> None:
    async with ModbusTcpLink("127.0.0.1", modbus_server.port) as link:
        with pytest.raises(DeviceError) as caught:
            await link.read(1, Table.HOLDING, 1200, 1)
        assert caught.value.code == 2
        # The connection is fine afterwards.
        assert await link.read(1, Table.HOLDING, 0, 2) == [0, 0]
        assert link.stats.connects == 1


async def test_device_passes_on_refusals_other_than_illegal_address(raw_server: RawServerFactory) -> None:
    async def failing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        while True:
            tid, unit, pdu = await raw.read_frame(reader)
            writer.write(struct.pack(">HHHBBB", tid, 0, 3, unit, pdu[0] | 0x80, 4))
            await writer.drain()

    raw = await raw_server(failing)
    async with ModbusTcpLink("127.0.0.1", raw.port) as link:
        device = ModbusDevice("meter", 1, link, [point(id="a", address=0), point(id="b", address=1)])
        (group,) = device.poll_groups()
        with pytest.raises(DeviceError) as caught:
            await device.read(group)
        assert caught.value.code == 4
    assert len(raw.frames) == 1


async def test_a_block_refused_as_a_whole_is_split_per_point(modbus_server: CountingServer) -> None:
    await modbus_server.set_registers(1, FC_READ_HOLDING, 990, [7])
    await modbus_server.set_registers(1, FC_READ_HOLDING, 995, [8])
    points = [point(id="a", address=990), point(id="b", address=995), point(id="unmapped", address=1005)]
    async with ModbusTcpLink("127.0.0.1", modbus_server.port) as link:
        device = ModbusDevice("meter", 1, link, points)
        (group,) = device.poll_groups()
        assert (group.start, group.count) == (990, 16)
        for poll, requests in ((1, 1 + 3), (2, 3)):
            before = modbus_server.reads()
            readings = {r.key: r for r in await device.read(group)}
            assert modbus_server.reads() - before == requests, poll
            assert (readings["a"].value, readings["a"].quality) == (7, Quality.GOOD)
            assert (readings["b"].value, readings["b"].quality) == (8, Quality.GOOD)
            assert readings["unmapped"].value is None
            assert (readings["unmapped"].quality, readings["unmapped"].reason) == (
                Quality.BAD,
                Reason.CONFIG_ERROR,
            )


async def test_dead_port_is_connection_lost() -> None:
    async with ModbusTcpLink("127.0.0.1", free_port(), timeout_ms=10_000) as link:
        # Refused at once: not the "within N ms" of a connect that had to time out.
        with pytest.raises(ConnectionLost, match=r"cannot connect to 127\.0\.0\.1:\d+$"):
            await link.read(1, Table.HOLDING, 0, 1)
        assert link.stats.timeouts == 0


async def test_silent_device_times_out_after_every_attempt(raw_server: RawServerFactory) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        while True:
            await raw.read_frame(reader)

    raw = await raw_server(silent)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=200, retries=2) as link:
        with pytest.raises(DeviceTimeout):
            await link.read(1, Table.HOLDING, 0, 4)
        assert link.stats.attempts == 3 and link.stats.timeouts == 3
    await wait_until(lambda: len(raw.frames) == 3, message="three attempts on the wire")
    assert raw.connections == 1


async def test_timeouts_in_a_row_reset_a_possibly_half_open_connection(raw_server: RawServerFactory) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        while True:
            await raw.read_frame(reader)

    raw = await raw_server(silent)
    async with ModbusTcpLink(
        "127.0.0.1", raw.port, timeout_ms=200, retries=0, reset_after_timeouts=2
    ) as link:
        for _ in range(3):
            with pytest.raises(DeviceTimeout):
                await link.read(1, Table.HOLDING, 0, 1)
        assert link.stats.connects == 2
    await wait_until(lambda: raw.connections == 2 and len(raw.frames) == 3, message="a fresh connection")


async def test_a_late_answer_is_not_taken_for_the_next_one(raw_server: RawServerFactory) -> None:
    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        first_tid, unit, _ = await raw.read_frame(reader)
        second_tid, unit, _ = await raw.read_frame(reader)  # sent after the first timed out
        writer.write(registers_answer(first_tid, unit, [111]))
        writer.write(registers_answer(second_tid, unit, [222]))
        await writer.drain()
        await reader.read()  # keep the connection open until the client leaves

    raw = await raw_server(late)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=2000, retries=0) as link:
        with pytest.raises(DeviceTimeout):
            await link.read(1, Table.HOLDING, 0, 1)
        assert await link.read(1, Table.HOLDING, 0, 1) == [222]
    assert raw.connections == 1


async def test_garbage_answer_is_framing_error(raw_server: RawServerFactory) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        while True:
            tid, unit, _ = await raw.read_frame(reader)
            if len(raw.frames) == 1:  # unknown function code 0x55 in a well-formed MBAP frame
                writer.write(struct.pack(">HHHBBB", tid, 0, 3, unit, 0x55, 0))
            elif len(raw.frames) == 2:  # not Modbus at all
                writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            else:  # a register answer one register short
                writer.write(registers_answer(tid, unit, [1]))
            await writer.drain()

    raw = await raw_server(garbage)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=10_000) as link:
        for _ in range(3):
            with pytest.raises(FramingError):
                await link.read(1, Table.HOLDING, 0, 2)
        assert link.stats.timeouts == 0


async def test_connection_dropped_mid_request_is_connection_lost(raw_server: RawServerFactory) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        await raw.read_frame(reader)
        writer.close()

    raw = await raw_server(hang_up)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=10_000, retries=0) as link:
        with pytest.raises(ConnectionLost):
            await link.read(1, Table.HOLDING, 0, 1)
        assert link.stats.timeouts == 0


async def test_devices_of_one_point_list_share_a_plan_but_split_on_their_own(
    modbus_server: CountingServer, raw_server: RawServerFactory
) -> None:
    """The pymodbus server maps only 0..999, the raw one answers any read: the first device's
    split must not make the second, planned from the same point objects, read per point too."""

    async def maps_everything(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer
    ) -> None:
        while True:
            tid, unit, pdu = await raw.read_frame(reader)
            start, count = struct.unpack(">HH", pdu[1:5])
            writer.write(registers_answer(tid, unit, [start + i for i in range(count)]))

    await modbus_server.set_registers(1, FC_READ_HOLDING, 990, [7])
    whole_server = await raw_server(maps_everything)
    points = [point(id="a", address=990), point(id="b", address=995), point(id="c", address=1005)]
    async with (
        ModbusTcpLink("127.0.0.1", modbus_server.port) as link,
        ModbusTcpLink("127.0.0.1", whole_server.port) as whole_link,
    ):
        partial = ModbusDevice("partial", 1, link, points)
        whole = ModbusDevice("whole", 1, whole_link, points)
        smaller = ModbusDevice("smaller", 1, whole_link, points, max_registers=8)
        assert partial.poll_groups() is whole.poll_groups()  # planned once
        assert smaller.poll_groups() is not whole.poll_groups()
        (group,) = partial.poll_groups()
        await partial.read(group)  # refused as a whole: this device splits
        for _ in range(2):
            before = len(whole_server.frames)
            readings = {r.key: r for r in await whole.read(group)}
            assert len(whole_server.frames) - before == 1  # still one read of the whole block
            assert (readings["a"].value, readings["b"].value, readings["c"].value) == (990, 995, 1005)
            assert all(r.quality is Quality.GOOD for r in readings.values())
        before = modbus_server.reads(unit=1)
        readings = {r.key: r for r in await partial.read(group)}
        assert modbus_server.reads(unit=1) - before == 3  # the first device stays split
        assert readings["a"].value == 7 and readings["c"].reason is Reason.CONFIG_ERROR


async def test_two_units_share_one_link_and_take_turns(modbus_server: CountingServer) -> None:
    await modbus_server.set_registers(1, FC_READ_HOLDING, 0, [11, 12, 13])
    await modbus_server.set_registers(2, FC_READ_HOLDING, 0, [21, 22, 23])
    points = [point(id=f"r{i}", address=i) for i in range(3)]
    async with ModbusTcpLink("127.0.0.1", modbus_server.port) as link:
        first = ModbusDevice("meter-1", 1, link, points)
        second = ModbusDevice("meter-2", 2, link, points)

        async def poll(device: ModbusDevice) -> list[list[Any]]:
            results = []
            for _ in range(20):
                (group,) = device.poll_groups()
                results.append([r.value for r in await device.read(group)])
            return results

        one, two = await asyncio.gather(poll(first), poll(second))
    assert one == [[11, 12, 13]] * 20
    assert two == [[21, 22, 23]] * 20
    assert modbus_server.reads(unit=1) == 20 and modbus_server.reads(unit=2) == 20
    assert modbus_server.max_in_flight == 1
    assert link.stats.connects == 1


async def test_link_recovers_after_the_server_restarts(modbus_server: CountingServer) -> None:
    await modbus_server.set_registers(1, FC_READ_HOLDING, 0, [42])
    async with ModbusTcpLink("127.0.0.1", modbus_server.port, timeout_ms=2000) as link:
        assert await link.read(1, Table.HOLDING, 0, 1) == [42]
        await modbus_server.stop()
        with pytest.raises(ConnectionLost):
            await link.read(1, Table.HOLDING, 0, 1)
        await modbus_server.start()
        await modbus_server.set_registers(1, FC_READ_HOLDING, 0, [43])

        async def answers() -> bool:
            try:
                return await link.read(1, Table.HOLDING, 0, 1) == [43]
            except ConnectionLost:
                return False

        await wait_until(answers, message="the link to reconnect")  # type: ignore[arg-type]
        assert link.stats.connects >= 2


async def test_gateway_exception_codes_are_transport_errors(raw_server: RawServerFactory) -> None:
    """A TCP-to-RTU bridge says 11 for a silent device behind it, 10 for a path it cannot use."""

    async def bridge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: RawServer) -> None:
        while True:
            tid, unit, pdu = await raw.read_frame(reader)
            code = 11 if unit == 5 else 10
            writer.write(struct.pack(">HHHBBB", tid, 0, 3, unit, pdu[0] | 0x80, code))
            await writer.drain()

    raw = await raw_server(bridge)
    async with ModbusTcpLink("127.0.0.1", raw.port, timeout_ms=10_000, retries=1) as link:
        with pytest.raises(DeviceTimeout, match="gateway"):
            await link.read(5, Table.HOLDING, 0, 1)
        assert link.stats.attempts == 2
        with pytest.raises(ConnectionLost, match="exception 10"):
            await link.read(6, Table.HOLDING, 0, 1)
        assert link.connected  # the bridge itself is fine
    assert [unit for _, unit, _ in raw.frames] == [5, 5, 6]


async def test_a_write_too_large_for_one_request_is_refused(modbus_server: CountingServer) -> None:
    async with ModbusTcpLink("127.0.0.1", modbus_server.port) as link:
        device = ModbusDevice(
            "panel", 1, link, [point(id="text", address=0, type=DataType.STRING, length=124, access="rw")]
        )
        with pytest.raises(ValueError, match="at most 123"):
            await device.write("text", "x")
    assert sum(modbus_server.requests.values()) == 0


async def test_a_connect_that_never_completes_is_connection_lost() -> None:
    """A listener whose accept queue is full drops SYNs, like an unreachable host."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        async with ModbusTcpLink("127.0.0.1", port, timeout_ms=300, retries=2) as link:
            with pytest.raises(ConnectionLost, match="cannot connect"):
                await link.read(1, Table.HOLDING, 0, 1)
            assert link.stats.attempts == 1 and link.stats.timeouts == 0
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
