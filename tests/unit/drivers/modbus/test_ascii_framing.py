"""ASCII framing: known frames, hypothesis round trips, and 100,000+ random and mutated frames
that may raise only the project's errors, with a good answer after garbage always found."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import DeviceError, FramingError
from drivers.modbus.ascii_framing import decode_frame, encode_frame, encode_request, lrc, scan_response
from drivers.modbus.serial_pdu import Request, decode_response, read_request, write_registers_request
from drivers.modbus.types import Table


def reference_frame(unit: int, pdu: bytes) -> bytes:
    """Written out by hand, not with the module's encoder."""
    body = bytes((unit,)) + pdu
    check = (0x100 - sum(body) % 256) % 256
    return (":" + "".join(f"{b:02X}" for b in body + bytes((check,))) + "\r\n").encode()


def answer_pdu(request: Request, values: list[int]) -> bytes:
    if request.function in (1, 2):
        packed = bytearray((len(values) + 7) // 8)
        for i, bit in enumerate(values):
            packed[i // 8] |= bit << (i % 8)
        return bytes((request.function, len(packed))) + bytes(packed)
    return bytes((request.function, 2 * len(values))) + struct.pack(f">{len(values)}H", *values)


def test_known_request_frame() -> None:
    assert encode_request(read_request(1, Table.HOLDING, 0, 1)) == b":010300000001FB\r\n"
    assert lrc(bytes.fromhex("010300000001")) == 0xFB


def test_exception_lower_case_and_foreign_frames() -> None:
    request = read_request(9, Table.HOLDING, 0, 1)
    with pytest.raises(DeviceError) as info:
        decode_frame(reference_frame(9, bytes((0x83, 6))), request)
    assert info.value.code == 6
    good = reference_frame(9, answer_pdu(request, [77])).lower()
    other = reference_frame(8, answer_pdu(request, [1]))
    scan = scan_response(b"\x00zz:01" + other + good, request)
    assert scan.pdu is not None and decode_response(request, scan.pdu) == [77]
    assert scan.foreign == 1 and scan.crc_errors == 1


def test_partial_frame_waits_and_bad_lrc_is_counted() -> None:
    request = read_request(2, Table.INPUT, 5, 2)
    good = reference_frame(2, answer_pdu(request, [1, 2]))
    waiting = scan_response(b"junk" + good[:9], request)
    assert waiting.pdu is None and waiting.consumed == 4
    bad = good[:-4] + (b"00" if good[-4:-2] != b"00" else b"11") + b"\r\n"
    scan = scan_response(bad, request)
    assert scan.pdu is None and scan.crc_errors == 1 and scan.consumed == len(bad)
    with pytest.raises(FramingError):
        decode_frame(bad, request)


@given(
    unit=st.integers(1, 247),
    address=st.integers(0, 60000),
    values=st.lists(st.integers(0, 65535), min_size=1, max_size=123),
    noise=st.binary(max_size=30),
)
def test_round_trip(unit: int, address: int, values: list[int], noise: bytes) -> None:
    request = write_registers_request(unit, address, values)
    frame = encode_request(request)
    assert frame == reference_frame(unit, request.pdu)
    read = read_request(unit, Table.HOLDING, address % 1000, len(values))
    stream = noise + encode_frame(unit, answer_pdu(read, values))
    scan = scan_response(stream, read)
    assert scan.pdu is not None and decode_response(read, scan.pdu) == values
    assert scan.consumed == len(stream)


def _mutate(rng: random.Random, good: bytes) -> bytes:
    data = bytearray(good)
    for _ in range(rng.randrange(1, 4)):
        choice = rng.randrange(4)
        if choice == 0 and data:
            data[rng.randrange(len(data))] = rng.choice(b"0123456789ABCDEFabcdefgz:\r\n\x00")
        elif choice == 1 and data:
            del data[rng.randrange(len(data))]
        elif choice == 2:
            data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        else:
            data = data[: rng.randrange(len(data) + 1)]
    return bytes(data)


def test_hundred_thousand_random_and_mutated_frames() -> None:
    rng = random.Random(7)
    alphabet = b"0123456789ABCDEF:\r\n\x00\xff"
    found_after_garbage = 0
    for n in range(100_000):
        unit = rng.randrange(1, 248)
        table = rng.choice(list(Table))
        count = rng.randrange(1, 10)
        request = read_request(unit, table, rng.randrange(0, 1000), count)
        values = [rng.randrange(2 if table.is_bits else 65536) for _ in range(count)]
        good = encode_frame(unit, answer_pdu(request, values))
        kind = n % 3
        if kind == 0:
            stream = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 50)))
        elif kind == 1:
            stream = _mutate(rng, good)
        else:
            stream = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 30))) + good
        try:
            scan = scan_response(stream, request)
            assert 0 <= scan.consumed <= len(stream)
            if scan.pdu is not None:
                assert len(decode_response(request, scan.pdu)) == count
            decode_frame(stream, request)
        except (FramingError, DeviceError):
            pass
        if kind == 2:
            assert scan.pdu is not None, stream
            assert decode_response(request, scan.pdu) == values
            found_after_garbage += 1
    assert found_after_garbage >= 33_000
