"""Modbus TCP answers as a misbehaving device sends them: the MBAP splitter and the link's
connection protocol meet random and mutated streams in random chunks, never raise, never keep
more than one frame's worth of bytes, and hand a waiting request only its own answer."""

from __future__ import annotations

import asyncio
import struct

from hypothesis import given
from hypothesis import strategies as st

from core.errors import GatehouseError
from drivers.modbus.mbap import MAX_ADU, encode, split_frames
from drivers.modbus.serial_pdu import decode_response, read_request
from drivers.modbus.tcp import LinkStats, _Connection
from drivers.modbus.types import Table
from tests.fuzz.support import fuzz_settings, mutated

REQUEST = read_request(1, Table.HOLDING, 0, 3, tcp=True)
ANSWER = encode(1, 1, bytes((3, 6)) + struct.pack(">3H", 1, 2, 3))
SEEDS = [
    ANSWER,
    ANSWER + encode(2, 1, bytes((0x83, 2))),
    encode(7, 9, bytes((6, 0, 1, 0, 2))) + ANSWER,
    encode(1, 1, bytes((0x83, 11))),
]


class _Transport(asyncio.Transport):
    """Records what the protocol writes and whether it gave the connection up."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


def _feed(connection: _Connection, chunk: bytes) -> None:
    """Hand ``chunk`` over as the event loop would: into the buffer the protocol offers, in as
    many reads as that takes, stopping once the protocol gave the connection up."""
    while chunk and connection.open:
        buffer = connection.get_buffer(-1)
        n = min(len(buffer), len(chunk))
        buffer[:n] = chunk[:n]
        connection.buffer_updated(n)
        chunk = chunk[n:]


def _chunks(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]


@fuzz_settings()
@given(mutated(SEEDS), st.lists(st.integers(0, 10_000), max_size=6))
def test_splitter_and_decoder_raise_only_own_errors(stream: bytes, cuts: list[int]) -> None:
    buffer = b""
    for chunk in _chunks(stream, cuts):
        buffer += chunk
        split = split_frames(buffer)
        for frame in split.frames:
            try:
                decode_response(REQUEST, frame.pdu)
            except GatehouseError:
                pass
        if split.error is not None:
            return
        buffer = buffer[split.consumed :]
        assert len(buffer) < MAX_ADU


@fuzz_settings()
@given(mutated(SEEDS), st.lists(st.integers(0, 10_000), max_size=6))
def test_connection_takes_only_its_own_answer_from_any_stream(stream: bytes, cuts: list[int]) -> None:
    async def run() -> None:
        connection = _Connection("fuzz", LinkStats())
        transport = _Transport()
        connection.connection_made(transport)
        waiter = connection.exchange(1, REQUEST.pdu)  # transaction 1, unit 1
        assert transport.written == [encode(1, 1, REQUEST.pdu)]
        for chunk in _chunks(stream, cuts):
            _feed(connection, chunk)
            assert connection._end < MAX_ADU
            if transport.aborted:
                break
        if waiter.done():
            error = waiter.exception()
            if error is None:
                pdu = waiter.result()
                # Only a frame of transaction 1 for unit 1 may answer; its PDU is as sent.
                assert any(f.tid == 1 and f.unit == 1 and f.pdu == pdu for f in split_frames(stream).frames)
            else:
                assert isinstance(error, GatehouseError)
                assert transport.aborted and not connection.open
        connection.connection_lost(None)
        # A drop fails a request still waiting, at once.
        assert waiter.done()
        assert (
            waiter.cancelled() or waiter.exception() is None or isinstance(waiter.exception(), GatehouseError)
        )

    asyncio.run(run())
