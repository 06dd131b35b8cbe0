"""The Modbus TCP connection's own read buffer, over real loopback sockets: frames cut by the
buffer's end at every offset, a partial frame moved to the front to make room, many frames in
one read, headers that are not Modbus arriving split, and no large allocation per read.

The server end is a plain socket driven with the loop's ``sock_*`` calls, so each ``send`` here is
one write the client reads in one go (loopback hands over a few hundred bytes whole), and the
client's reads are recorded to check that the case a test names is the case that happened.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import tracemalloc
from collections.abc import AsyncIterator, Callable

import pytest

from core.errors import FramingError
from drivers.modbus import ModbusTcpLink, Table
from drivers.modbus.mbap import MAX_ADU, MAX_PDU, encode
from drivers.modbus.serial_pdu import read_request
from drivers.modbus.tcp import _BUFFER_SIZE, LinkStats, _Connection
from tests.integration.drivers.conftest import registers_answer
from tests.support import DEFAULT_DEADLINE_S

UNIT = 1
FOREIGN_UNIT = 2  # frames for it answer nothing outstanding: each one is a dropped frame
REQUEST = read_request(UNIT, Table.HOLDING, 0, 3, tcp=True)
SMALLEST_FRAME = 8  # header, unit id and a function code


class Peer:
    """The server's end of one connection: reads requests, writes answers in chosen chunks."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    async def read_request(self) -> tuple[int, int, bytes]:
        tid, _protocol, length, unit = struct.unpack(">HHHB", await self._recv_exactly(7))
        return tid, unit, await self._recv_exactly(length - 1)

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def answer_forever(self, registers: list[int]) -> None:
        while True:
            tid, unit, _ = await self.read_request()
            await self.send(registers_answer(tid, unit, registers))

    async def _recv_exactly(self, n: int) -> bytes:
        loop = asyncio.get_running_loop()
        data = b""
        while len(data) < n:
            chunk = await loop.sock_recv(self.sock, n - len(data))
            if not chunk:
                raise ConnectionError("the client hung up")
            data += chunk
        return data


class Listener:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.peers: list[Peer] = []

    async def accept(self) -> Peer:
        sock, _ = await asyncio.get_running_loop().sock_accept(self.sock)
        sock.setblocking(False)
        # Two writes in a row must not wait for the client's delayed ACK (Nagle): 40 ms each.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = Peer(sock)
        self.peers.append(peer)
        return peer

    def close(self) -> None:
        for peer in self.peers:
            peer.sock.close()
        self.sock.close()


class Recording(_Connection):
    """A connection that records each read (pending bytes before it, bytes read) and wakes
    whoever waits for its state to change."""

    __slots__ = ("changed", "fills")

    def __init__(self) -> None:
        super().__init__("test", LinkStats())
        self.fills: list[tuple[int, int]] = []
        self.changed = asyncio.Event()

    def buffer_updated(self, nbytes: int) -> None:
        self.fills.append((self._end, nbytes))
        super().buffer_updated(nbytes)
        self.changed.set()

    @property
    def dropped(self) -> int:
        return self._stats.dropped_frames

    @property
    def pending(self) -> bytes:
        return bytes(self._buffer[: self._end])

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(DEFAULT_DEADLINE_S):
                while not condition():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; reads: {self.fills[-5:]}") from None


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    listening = Listener()
    try:
        yield listening
    finally:
        listening.close()


@pytest.fixture
async def connected(listener: Listener) -> AsyncIterator[tuple[Recording, Peer]]:
    connection = Recording()
    accepted = asyncio.ensure_future(listener.accept())
    await asyncio.get_running_loop().create_connection(lambda: connection, "127.0.0.1", listener.port)
    peer = await asyncio.wait_for(accepted, DEFAULT_DEADLINE_S)
    try:
        yield connection, peer
    finally:
        connection.close()
        await asyncio.wait_for(connection.wait_closed(), DEFAULT_DEADLINE_S)


def foreign_frames(total: int, tid: int) -> list[bytes]:
    """Whole frames for another unit, ``total`` bytes together (at least one smallest frame)."""
    frames = []
    while total:
        size = min(total, MAX_ADU)
        if total - size < SMALLEST_FRAME:
            size = total if total <= MAX_ADU else total - SMALLEST_FRAME
        frames.append(encode(tid, FOREIGN_UNIT, bytes(size - 7)))
        total -= size
    return frames


async def request(connection: Recording, peer: Peer) -> tuple[asyncio.Future[bytes], int]:
    waiter = connection.exchange(UNIT, REQUEST.pdu)
    tid, unit, pdu = await asyncio.wait_for(peer.read_request(), DEFAULT_DEADLINE_S)
    assert (unit, pdu) == (UNIT, REQUEST.pdu)
    return waiter, tid


async def test_the_largest_frame_cut_by_the_buffers_end_at_every_offset(
    connected: tuple[Recording, Peer],
) -> None:
    connection, peer = connected
    pdu = bytes((3, MAX_PDU - 2)) + bytes(range(MAX_PDU - 2))
    for cut in range(1, MAX_ADU):
        waiter, tid = await request(connection, peer)
        answer = encode(tid, UNIT, pdu)
        assert len(answer) == MAX_ADU
        filler = foreign_frames(_BUFFER_SIZE - cut, tid)
        dropped = connection.dropped + len(filler)
        reads = len(connection.fills)

        await peer.send(b"".join(filler) + answer[:cut])
        await connection.until(lambda: connection.dropped == dropped, "the filler to be read")  # noqa: B023
        # One read filled the buffer to its very end, ending inside the answer...
        assert connection.fills[reads:] == [(0, _BUFFER_SIZE)], cut
        # ...whose start now sits at the front, with room behind it for all the rest.
        assert connection.pending == answer[:cut], cut
        assert len(connection.get_buffer(-1)) >= MAX_ADU - cut
        assert not waiter.done()

        await peer.send(answer[cut:])
        assert await asyncio.wait_for(waiter, DEFAULT_DEADLINE_S) == pdu, cut
        assert connection.pending == b""
    assert connection.open


async def test_a_frame_longer_than_the_room_left_arrives_in_pieces(
    connected: tuple[Recording, Peer],
) -> None:
    connection, peer = connected
    waiter, tid = await request(connection, peer)
    pdu = bytes((3, MAX_PDU - 2)) + bytes(MAX_PDU - 2)
    answer = encode(tid, UNIT, pdu)
    # 500 bytes of other frames, then the answer's header: 12 bytes left for a 260-byte frame.
    filler = foreign_frames(_BUFFER_SIZE - 12, tid)
    await peer.send(b"".join(filler) + answer[:7])
    await connection.until(lambda: connection.pending == answer[:7], "the header at the front")
    # The rest in three writes, each read appended behind what is pending.
    for start, stop in ((7, 100), (100, 259)):
        await peer.send(answer[start:stop])
        await connection.until(lambda: connection.pending == answer[:stop], f"{stop} bytes pending")  # noqa: B023
    assert not waiter.done()
    await peer.send(answer[259:])
    assert await asyncio.wait_for(waiter, DEFAULT_DEADLINE_S) == pdu
    assert connection.dropped == len(filler)


async def test_many_frames_in_one_read_are_all_cut(connected: tuple[Recording, Peer]) -> None:
    connection, peer = connected
    waiter, tid = await request(connection, peer)
    stale = [encode((tid - 1) & 0xFFFF, UNIT, bytes((3, 2, 0, n))) for n in range(44)]  # 11 bytes each
    answer = registers_answer(tid, UNIT, [7, 8, 9])
    burst = b"".join(stale) + answer
    assert len(burst) <= _BUFFER_SIZE
    await peer.send(burst)
    assert await asyncio.wait_for(waiter, DEFAULT_DEADLINE_S) == answer[7:]
    assert connection.fills == [(0, len(burst))]
    assert (connection.dropped, connection.pending) == (44, b"")


async def test_a_burst_of_several_buffers_is_cut_with_a_partial_frame_at_each_end(
    connected: tuple[Recording, Peer],
) -> None:
    connection, peer = connected
    waiter, tid = await request(connection, peer)
    # 9-byte frames do not divide 512: every full read ends inside one, which moves to the front.
    stale = [encode((tid - 1) & 0xFFFF, FOREIGN_UNIT, bytes((6, n & 0xFF))) for n in range(300)]
    answer = registers_answer(tid, UNIT, [1, 2, 3])
    await peer.send(b"".join(stale) + answer)
    assert await asyncio.wait_for(waiter, DEFAULT_DEADLINE_S) == answer[7:]
    assert connection.dropped == 300 and connection.pending == b""
    assert len(connection.fills) >= 6
    assert any(pending for pending, _ in connection.fills), "no read started behind a partial frame"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(struct.pack(">HHHB", 1, 1, 5, UNIT), id="protocol-id-1"),
        pytest.param(struct.pack(">HHHB", 1, 0, MAX_PDU + 2, UNIT), id="oversize-length"),
    ],
)
@pytest.mark.parametrize("cut", [1, 3, 5])
async def test_a_header_that_is_not_modbus_cut_by_the_buffers_end_fails_the_request(
    connected: tuple[Recording, Peer], header: bytes, cut: int
) -> None:
    connection, peer = connected
    waiter, tid = await request(connection, peer)
    filler = foreign_frames(_BUFFER_SIZE - cut, tid)
    await peer.send(b"".join(filler) + header[:cut])
    await connection.until(lambda: connection.pending == header[:cut], "the partial header at the front")
    assert not waiter.done()
    await peer.send(header[cut:] + bytes(20))
    with pytest.raises(FramingError, match="protocol id|length"):
        await asyncio.wait_for(waiter, DEFAULT_DEADLINE_S)
    # The frames before it were read and counted; the connection is given up.
    assert connection.dropped == len(filler)
    assert not connection.open


async def test_the_link_takes_its_answer_from_behind_more_than_a_buffer_of_stale_ones(
    listener: Listener,
) -> None:
    async with ModbusTcpLink("127.0.0.1", listener.port, timeout_ms=int(DEFAULT_DEADLINE_S * 1000)) as link:
        read = asyncio.create_task(link.read(UNIT, Table.HOLDING, 0, 3))
        peer = await asyncio.wait_for(listener.accept(), DEFAULT_DEADLINE_S)
        tid, unit, _ = await asyncio.wait_for(peer.read_request(), DEFAULT_DEADLINE_S)
        stale = [registers_answer((tid - 1 - n) & 0xFFFF, unit, [n] * 30) for n in range(20)]  # 69 bytes each
        await peer.send(b"".join(stale) + registers_answer(tid, unit, [4, 5, 6]))
        assert await asyncio.wait_for(read, DEFAULT_DEADLINE_S) == [4, 5, 6]
        assert link.stats.dropped_frames == 20
        serving = asyncio.create_task(peer.answer_forever([7, 8, 9]))
        try:
            assert await link.read(UNIT, Table.HOLDING, 0, 3) == [7, 8, 9]
        finally:
            serving.cancel()
        assert link.stats.connects == 1


async def test_reads_allocate_nothing_near_the_size_of_a_socket_buffer(listener: Listener) -> None:
    # What issue 19's memray run found: a plain Protocol has the loop recv 256 KiB per answer.
    async with ModbusTcpLink("127.0.0.1", listener.port, timeout_ms=int(DEFAULT_DEADLINE_S * 1000)) as link:
        read = asyncio.create_task(link.read(UNIT, Table.HOLDING, 0, 30))
        peer = await asyncio.wait_for(listener.accept(), DEFAULT_DEADLINE_S)
        serving = asyncio.create_task(peer.answer_forever(list(range(30))))
        try:
            await read
            tracemalloc.start()
            try:
                for _ in range(200):
                    assert await link.read(UNIT, Table.HOLDING, 0, 30) == list(range(30))
                current, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        finally:
            serving.cancel()
    assert peak - current < 64 * 1024, f"a read allocated {peak - current} bytes at its peak"
