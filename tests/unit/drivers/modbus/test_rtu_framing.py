"""RTU framing: known frames, hypothesis round trips, and 100,000+ random and mutated answers
that may raise only the project's errors, with a good answer after garbage always found."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import DeviceError, FramingError
from drivers.modbus.rtu_framing import crc16, decode_frame, encode_request, scan_response
from drivers.modbus.serial_pdu import (
    Request,
    decode_response,
    read_request,
    write_coil_request,
    write_register_request,
    write_registers_request,
)
from drivers.modbus.types import Table
from simulators.modbus_rtu import crc16 as reference_crc16  # bit-by-bit, written separately


def frame(unit: int, pdu: bytes) -> bytes:
    crc = reference_crc16(bytes((unit,)) + pdu)
    return bytes((unit,)) + pdu + bytes((crc & 0xFF, crc >> 8))


def read_answer_pdu(request: Request, values: list[int]) -> bytes:
    function = request.function
    if function in (1, 2):
        packed = bytearray((len(values) + 7) // 8)
        for i, bit in enumerate(values):
            if bit:
                packed[i // 8] |= 1 << (i % 8)
        return bytes((function, len(packed))) + bytes(packed)
    return bytes((function, 2 * len(values))) + struct.pack(f">{len(values)}H", *values)


def test_known_request_frame_and_crc() -> None:
    # The classic example: read 10 holding registers of unit 1 from 0 -> CRC C5 CD.
    assert encode_request(read_request(1, Table.HOLDING, 0, 10)) == bytes.fromhex("01030000000AC5CD")
    assert crc16(bytes.fromhex("01030000000AC5CD")) == 0
    assert crc16(b"123456789") == 0x4B37  # CRC-16/MODBUS check value


def test_exception_answer_raises_device_error_with_code() -> None:
    request = read_request(7, Table.INPUT, 100, 2)
    with pytest.raises(DeviceError) as info:
        decode_frame(frame(7, bytes((0x84, 2))), request)
    assert info.value.code == 2
    scan = scan_response(frame(7, bytes((0x84, 2))), request)
    assert scan.pdu == bytes((0x84, 2))


def test_wrong_unit_and_wrong_function_are_recognised_and_skipped() -> None:
    request = read_request(3, Table.HOLDING, 0, 2)
    good = frame(3, read_answer_pdu(request, [1, 2]))
    other_unit = frame(4, read_answer_pdu(request, [9, 9]))
    other_function = frame(3, bytes((4, 4, 0, 9, 0, 9)))
    scan = scan_response(other_unit + other_function + good, request)
    assert scan.pdu is not None and decode_response(request, scan.pdu) == [1, 2]
    assert scan.foreign == 2
    assert scan.consumed == len(other_unit + other_function + good)


def test_bad_crc_is_counted_and_a_partial_frame_waits_for_more() -> None:
    request = read_request(3, Table.HOLDING, 0, 2)
    good = frame(3, read_answer_pdu(request, [5, 6]))
    broken = good[:-1] + bytes((good[-1] ^ 0x55,))
    scan = scan_response(broken, request)
    assert scan.pdu is None and scan.crc_errors == 1
    partial = scan_response(good[:5], request)
    assert partial.pdu is None and partial.consumed == 0  # keep it: the rest is on its way
    assert scan_response(good[:5] + good[5:], request).pdu is not None


def test_late_answer_with_another_byte_count_is_not_taken() -> None:
    # A late answer to an earlier request of the same unit and function but another size.
    earlier = read_request(3, Table.HOLDING, 0, 4)
    request = read_request(3, Table.HOLDING, 10, 2)
    late = frame(3, read_answer_pdu(earlier, [1, 2, 3, 4]))
    scan = scan_response(late, request)
    assert scan.pdu is None and scan.foreign == 1


def test_decode_frame_rejects_wrong_echo_and_size() -> None:
    request = write_register_request(2, 40, 1234)
    with pytest.raises(FramingError):
        decode_frame(frame(2, bytes((6, 0, 40, 0, 1))), request)
    assert decode_frame(frame(2, request.pdu), request) == []
    with pytest.raises(FramingError):
        decode_frame(frame(2, bytes((3, 2, 0))), read_request(2, Table.HOLDING, 0, 1))


requests = st.one_of(
    st.builds(
        read_request,
        st.integers(1, 247),
        st.sampled_from(list(Table)),
        st.integers(0, 60000),
        st.integers(1, 125),
    ),
    st.builds(write_coil_request, st.integers(1, 247), st.integers(0, 65535), st.booleans()),
    st.builds(write_register_request, st.integers(1, 247), st.integers(0, 65535), st.integers(0, 65535)),
    st.builds(
        write_registers_request,
        st.integers(1, 247),
        st.integers(0, 60000),
        st.lists(st.integers(0, 65535), min_size=1, max_size=123),
    ),
)


@given(request=requests, data=st.data(), noise=st.binary(max_size=40))
def test_round_trip_any_request_after_noise(request: Request, data: st.DataObject, noise: bytes) -> None:
    if request.is_write:
        answer, expected = request.pdu[:5], []
    else:
        bits = request.function in (1, 2)
        values = data.draw(
            st.lists(st.integers(0, 1 if bits else 65535), min_size=request.count, max_size=request.count)
        )
        answer, expected = read_answer_pdu(request, values), values
    stream = noise + frame(request.unit, answer)
    scan = scan_response(stream, request)
    assert scan.pdu is not None
    assert decode_response(request, scan.pdu) == expected
    assert scan.consumed == len(stream)
    # The request frame is the unit, the PDU and a CRC that checks.
    encoded = encode_request(request)
    assert encoded[0] == request.unit and encoded[1:-2] == request.pdu and crc16(encoded) == 0


def _mutate(rng: random.Random, good: bytes) -> bytes:
    data = bytearray(good)
    for _ in range(rng.randrange(1, 4)):
        choice = rng.randrange(5)
        if choice == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif choice == 1 and data:
            del data[rng.randrange(len(data))]
        elif choice == 2:
            data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        elif choice == 3:
            data = data[: rng.randrange(len(data) + 1)]
        else:
            data[1:2] = bytes((rng.choice((1, 2, 3, 4, 5, 6, 15, 16, 0x83, 0x90, 0x41)),))
    return bytes(data)


def test_hundred_thousand_random_and_mutated_answers() -> None:
    rng = random.Random(20240611)
    tables = list(Table)
    found_after_garbage = 0
    for n in range(100_000):
        unit = rng.randrange(1, 248)
        table = rng.choice(tables)
        count = rng.randrange(1, 13)
        request = read_request(unit, table, rng.randrange(0, 1000), count)
        bits = table.is_bits
        values = [rng.randrange(2 if bits else 65536) for _ in range(count)]
        good = frame(unit, read_answer_pdu(request, values))
        kind = n % 3
        if kind == 0:
            stream = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        elif kind == 1:
            stream = _mutate(rng, good)
        else:
            stream = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 24))) + good
        try:
            scan = scan_response(stream, request)
            assert 0 <= scan.consumed <= len(stream)
            if scan.pdu is not None:
                decoded = decode_response(request, scan.pdu)
                assert len(decoded) == count
            decode_frame(stream, request)
        except (FramingError, DeviceError):
            pass
        if kind == 2:
            assert scan.pdu is not None, stream.hex()
            assert decode_response(request, scan.pdu) == values
            found_after_garbage += 1
    assert found_after_garbage >= 33_000
