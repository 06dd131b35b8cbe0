"""CPU cost of Modbus TCP polling: ``ModbusTcpLink``, decoding, pymodbus' client and a bare client.

A pymodbus server runs in a separate process (so its CPU is not counted); this process measures
its own CPU time (``time.process_time``) for:

- ``link_read_30``: one FC 03 read of 30 registers through ``ModbusTcpLink`` (lock, timeout,
  its own MBAP client and the PDU codec);
- ``pymodbus_read_30``: the same read through pymodbus' client, which the link used until
  issue 19 replaced it, kept as the reference;
- ``device_read_15_float32`` / ``device_read_30_uint16``: ``ModbusDevice.read`` of one planned
  block, i.e. a request plus decoding, per block and per tag;
- ``lean_read_30``: a minimal asyncio protocol building the MBAP frame with ``struct`` and
  matching answers by transaction id, with no checks at all: the floor for a Python client;
- ``link_read_30_allocations``: the heap traffic of ``link_read_30`` under memray, if it is
  installed (allocations, bytes and the largest allocation per read);
- ``decode_*``: the pure codec's compiled decoders, per value.

Run: ``.venv/bin/python -m bench.modbus_client``; writes ``bench/results/modbus_client.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from drivers.modbus import ModbusDevice, ModbusTcpLink, Table, compile_decoder
from drivers.modbus.types import DataType, WordOrder

RESULTS = Path(__file__).resolve().parent / "results" / "modbus_client.json"
REQUESTS = 3000
ALLOCATION_REQUESTS = 500
TARGET_US_PER_TAG = 20.0


@dataclass(frozen=True)
class BenchPoint:
    id: str
    address: int
    type: DataType = DataType.UINT16
    table: Table = Table.HOLDING
    order: WordOrder = WordOrder.ABCD
    bit: int | None = None
    length: int | None = None
    scale: float = 1.0
    offset: float = 0.0
    access: str = "r"
    valid_min: float | None = None
    valid_max: float | None = None
    verify_write: bool = True
    enum: dict[int, str] | None = None
    poll_interval_s: float | None = None


# --- the server process -------------------------------------------------------------------------


def serve(port: int) -> None:
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType as SimType
    from pymodbus.simulator import SimData, SimDevice

    async def run() -> None:
        values = [(i * 7919) & 0xFFFF for i in range(200)]
        device = SimDevice(
            id=1,
            simdata=(
                [SimData(0, count=16, values=0, datatype=SimType.BITS)],
                [SimData(0, count=16, values=0, datatype=SimType.BITS)],
                [SimData(0, values=values, datatype=SimType.REGISTERS)],
                [SimData(0, values=values, datatype=SimType.REGISTERS)],
            ),
        )
        server = ModbusTcpServer([device], address=("127.0.0.1", port))
        await server.serve_forever()

    asyncio.run(run())


def start_server() -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.modbus_client", "--serve", str(port)],
        cwd=Path(__file__).resolve().parent.parent,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("benchmark server did not start")


# --- a lean client, for comparison ----------------------------------------------------------------


class LeanClient(asyncio.Protocol):
    """Just enough Modbus TCP for FC 03: one request in flight, answers matched by tid."""

    _HEADER = struct.Struct(">HHHBBHH")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.tid = 0
        self.waiter: asyncio.Future[list[int]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 7:
            tid, _pid, length = struct.unpack_from(">HHH", self.buffer)
            if len(self.buffer) < 6 + length:
                return
            frame, self.buffer = self.buffer[: 6 + length], self.buffer[6 + length :]
            if tid != self.tid or self.waiter is None or self.waiter.done():
                continue
            count = frame[8] // 2
            self.waiter.set_result(list(struct.unpack_from(f">{count}H", frame, 9)))

    async def read_holding(self, unit: int, start: int, count: int) -> list[int]:
        assert self.transport is not None
        self.tid = (self.tid + 1) & 0xFFFF
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(self._HEADER.pack(self.tid, 0, 6, unit, 3, start, count))
        async with asyncio.timeout(1.0):
            return await self.waiter


# --- measurement --------------------------------------------------------------------------------


async def measure(name: str, count: int, call: Callable[[], Awaitable[object]]) -> dict[str, float]:
    for _ in range(100):  # warm up
        await call()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(count):
        await call()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result = {"requests": count, "cpu_us_per_request": cpu / count * 1e6, "requests_per_s": count / wall}
    cpu_us, rate = result["cpu_us_per_request"], result["requests_per_s"]
    print(f"{name:28s} {cpu_us:8.1f} µs CPU/request  {rate:8.0f} req/s")
    return result


async def measure_allocations(port: int) -> dict[str, object]:
    """Heap traffic per ``link.read`` of 30 registers, as memray (the tool issue 19 used) sees it.

    Every allocation the process makes while the reads run counts, pymalloc's included (the
    server is another process): how many, how many bytes in all, and the largest, which is what
    gives away a read that asks the allocator for far more than the answer it carries.
    """
    try:
        import memray
    except ImportError:
        print("allocations per read: skipped, memray is not installed")
        return {"skipped": "memray is not installed"}
    freeing = {memray.AllocatorType.FREE, memray.AllocatorType.PYMALLOC_FREE, memray.AllocatorType.MUNMAP}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reads.bin"
        async with ModbusTcpLink("127.0.0.1", port, timeout_ms=2000, retries=0) as link:
            for _ in range(100):  # warm up: connect, caches, the loop's own structures
                await link.read(1, Table.HOLDING, 0, 30)
            with memray.Tracker(path, trace_python_allocators=True):
                for _ in range(ALLOCATION_REQUESTS):
                    await link.read(1, Table.HOLDING, 0, 30)
        count = total = largest = 0
        for record in memray.FileReader(path).get_allocation_records():
            if record.allocator not in freeing:
                count += record.n_allocations
                total += record.size
                largest = max(largest, record.size)
    result: dict[str, object] = {
        "requests": ALLOCATION_REQUESTS,
        "allocations_per_request": count / ALLOCATION_REQUESTS,
        "bytes_allocated_per_request": total / ALLOCATION_REQUESTS,
        "largest_allocation_bytes": largest,
    }
    print(
        f"link read 30 regs allocations {count / ALLOCATION_REQUESTS:.0f}/request, "
        f"{total / ALLOCATION_REQUESTS / 1024:.1f} KiB/request, largest {largest / 1024:.1f} KiB"
    )
    return result


def measure_frame_codecs() -> dict[str, float]:
    """Python cost of building one FC 03 request and parsing its 30-register answer, no I/O."""
    from pymodbus.framer import FramerSocket
    from pymodbus.pdu import DecodePDU
    from pymodbus.pdu.register_message import ReadHoldingRegistersRequest

    answer = struct.pack(">HHHBBB30H", 5, 0, 3 + 60, 1, 3, 60, *range(30))
    framer = FramerSocket(DecodePDU(False))
    n = 20_000
    cpu0 = time.process_time()
    for _ in range(n):
        request = ReadHoldingRegistersRequest(address=0, count=30, dev_id=1)
        request.transaction_id = 5
        framer.buildFrame(request)
        framer.handleFrame(answer, 1, 5)
    pymodbus_us = (time.process_time() - cpu0) / n * 1e6
    header = struct.Struct(">HHHBBHH")
    cpu0 = time.process_time()
    for _ in range(n):
        header.pack(5, 0, 6, 1, 3, 0, 30)
        struct.unpack_from(">HHH", answer)
        struct.unpack_from(">30H", answer, 9)
    lean_us = (time.process_time() - cpu0) / n * 1e6
    print(f"frame build+parse: pymodbus {pymodbus_us:.2f} µs, struct only {lean_us:.2f} µs")
    return {"frame_codec_pymodbus_us": pymodbus_us, "frame_codec_struct_us": lean_us}


class MemoryLink:
    """A link answering from a list, to time ``ModbusDevice.read`` without any I/O."""

    def __init__(self) -> None:
        self.registers = [(i * 7919) & 0xFFFF for i in range(200)]

    async def read(self, unit: int, table: Table, start: int, count: int) -> list[int]:
        return self.registers[start : start + count]

    async def write_coil(self, unit: int, address: int, value: bool) -> None: ...
    async def write_register(self, unit: int, address: int, value: int) -> None: ...
    async def write_registers(self, unit: int, address: int, values: Sequence[int]) -> None: ...


async def measure_device_decode() -> dict[str, float]:
    """CPU per tag of ``ModbusDevice.read`` (decode, range check, Reading) with no I/O."""
    points = [BenchPoint(f"f{i}", 2 * i, DataType.FLOAT32, scale=0.1, valid_max=1e30) for i in range(62)]
    device = ModbusDevice("mem", 1, MemoryLink(), points)
    (block,) = device.poll_groups()
    n = 5000
    cpu0 = time.process_time()
    for _ in range(n):
        await device.read(block)
    us = (time.process_time() - cpu0) / n / 62 * 1e6
    print(f"device decode per tag (no I/O) {us:.3f} µs")
    return {"device_decode_per_tag_us": us}


def measure_decoders() -> dict[str, float]:
    block = [(i * 7919) & 0xFFFF for i in range(125)]
    cases = {
        "uint16": BenchPoint("a", 0),
        "int16_scaled": BenchPoint("a", 0, DataType.INT16, scale=0.1),
        "float32_abcd": BenchPoint("a", 0, DataType.FLOAT32),
        "float32_cdab_scaled": BenchPoint("a", 0, DataType.FLOAT32, order=WordOrder.CDAB, scale=0.001),
        "int32_badc": BenchPoint("a", 0, DataType.INT32, order=WordOrder.BADC),
        "float64_dcba": BenchPoint("a", 0, DataType.FLOAT64, order=WordOrder.DCBA),
    }
    results: dict[str, float] = {}
    for name, spec in cases.items():
        decoder = compile_decoder(spec)
        n = 200_000
        cpu0 = time.process_time()
        for i in range(n):
            decoder(block, i & 63)
        us = (time.process_time() - cpu0) / n * 1e6
        results[f"decode_{name}_us"] = us
        print(f"decode {name:22s} {us:8.3f} µs/value")
    return results


async def run_client(port: int) -> dict[str, object]:
    results: dict[str, object] = {}
    async with ModbusTcpLink("127.0.0.1", port, timeout_ms=2000, retries=0) as link:
        results["link_read_30"] = await measure(
            "link read 30 regs", REQUESTS, lambda: link.read(1, Table.HOLDING, 0, 30)
        )
        from pymodbus.client import AsyncModbusTcpClient

        client = AsyncModbusTcpClient("127.0.0.1", port=port, reconnect_delay=0, timeout=3.0, retries=0)
        assert await client.connect()
        try:
            results["pymodbus_read_30"] = await measure(
                "pymodbus read 30 regs",
                REQUESTS,
                lambda: client.read_holding_registers(0, count=30, device_id=1),
            )
        finally:
            client.close()
        floats = ModbusDevice("f", 1, link, [BenchPoint(f"f{i}", 2 * i, DataType.FLOAT32) for i in range(15)])
        (float_block,) = floats.poll_groups()
        r = await measure("device read 15 float32", REQUESTS, lambda: floats.read(float_block))
        r["cpu_us_per_tag"] = r["cpu_us_per_request"] / 15
        results["device_read_15_float32"] = r
        words = ModbusDevice("w", 1, link, [BenchPoint(f"w{i}", i) for i in range(30)])
        (word_block,) = words.poll_groups()
        r = await measure("device read 30 uint16", REQUESTS, lambda: words.read(word_block))
        r["cpu_us_per_tag"] = r["cpu_us_per_request"] / 30
        results["device_read_30_uint16"] = r
        big = ModbusDevice("b", 1, link, [BenchPoint(f"b{i}", 2 * i, DataType.FLOAT32) for i in range(62)])
        (big_block,) = big.poll_groups()
        r = await measure("device read 62 float32", REQUESTS, lambda: big.read(big_block))
        r["cpu_us_per_tag"] = r["cpu_us_per_request"] / 62
        results["device_read_62_float32_124_regs"] = r

    loop = asyncio.get_running_loop()
    transport, lean = await loop.create_connection(LeanClient, "127.0.0.1", port)
    try:
        results["lean_read_30"] = await measure(
            "lean client read 30 regs", REQUESTS, lambda: lean.read_holding(1, 0, 30)
        )
    finally:
        transport.close()
    results["link_read_30_allocations"] = await measure_allocations(port)
    return results


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--serve":
        serve(int(args[1]))
        return 0
    import logging

    import structlog

    logging.disable(logging.WARNING)  # keep pymodbus quiet
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    proc, port = start_server()
    try:
        results = asyncio.run(run_client(port))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    results.update(measure_decoders())
    results.update(asyncio.run(measure_device_decode()))
    results.update(measure_frame_codecs())
    float_tag = results["device_read_15_float32"]
    big_tag = results["device_read_62_float32_124_regs"]
    assert isinstance(float_tag, dict) and isinstance(big_tag, dict)
    summary = {
        "target_cpu_us_per_tag": TARGET_US_PER_TAG,
        "cpu_us_per_tag_15_per_request": round(float_tag["cpu_us_per_tag"], 2),
        "cpu_us_per_tag_62_per_request": round(big_tag["cpu_us_per_tag"], 2),
    }
    print(json.dumps(summary))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "modbus_client",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "loadavg": os.getloadavg(),
                "summary": summary,
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
