"""The request builders' additions for Modbus TCP: FC 15 (write coils) and the unit ids TCP
allows that a serial line does not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import DeviceError, FramingError
from drivers.modbus.serial_pdu import (
    decode_response,
    matches,
    read_request,
    response_pdu_length,
    write_coil_request,
    write_coils_request,
    write_register_request,
    write_registers_request,
)
from drivers.modbus.types import Table
from tests.fuzz.support import fuzz_settings


def test_write_coils_known_pdu() -> None:
    # Modbus Application Protocol v1.1b3 §6.11: coils 20..29 set to 1011 0011 / 01 -> CD 01.
    bits = [True, False, True, True, False, False, True, True, True, False]
    request = write_coils_request(1, 19, bits)
    assert request.pdu == bytes.fromhex("0f 0013 000a 02 cd01")
    assert request.echo == bytes.fromhex("0013 000a")
    assert request.is_write and request.response_pdu_size == 5


def test_write_coils_answer_is_checked_by_its_echo() -> None:
    request = write_coils_request(1, 19, [True] * 10)
    answer = bytes.fromhex("0f 0013 000a")
    assert response_pdu_length(answer, 0) == 5
    assert matches(request, answer, 0, 5)
    assert decode_response(request, answer) == []
    with pytest.raises(FramingError):
        decode_response(request, bytes.fromhex("0f 0013 0009"))
    with pytest.raises(DeviceError) as info:
        decode_response(request, bytes((0x8F, 2)))
    assert info.value.code == 2


@pytest.mark.parametrize("count", [0, 1969])
def test_write_coils_refuses_what_one_request_cannot_carry(count: int) -> None:
    with pytest.raises(ValueError, match="1..1968"):
        write_coils_request(1, 0, [True] * count)


@fuzz_settings()
@given(st.integers(0, 0xFFFF), st.lists(st.booleans(), min_size=1, max_size=1968))
def test_write_coils_packs_first_coil_in_the_lowest_bit(address: int, bits: list[bool]) -> None:
    pdu = write_coils_request(1, address, bits).pdu
    assert pdu[0] == 15
    assert int.from_bytes(pdu[1:3], "big") == address
    assert int.from_bytes(pdu[3:5], "big") == len(bits)
    assert pdu[5] == len(pdu) - 6 == (len(bits) + 7) // 8
    unpacked = [bool(pdu[6 + i // 8] >> (i % 8) & 1) for i in range(len(bits))]
    assert unpacked == bits
    assert not any(pdu[6 + i // 8] >> (i % 8) & 1 for i in range(len(bits), 8 * pdu[5]))


def test_tcp_allows_every_unit_id_and_reads_of_unit_0() -> None:
    # On TCP 0 and 255 address the device itself; on a serial line 0 is broadcast and
    # 248..255 are reserved.
    for unit in (0, 248, 255):
        assert read_request(unit, Table.HOLDING, 0, 1, tcp=True).unit == unit
        assert write_coil_request(unit, 0, True, tcp=True).unit == unit
        assert write_coils_request(unit, 0, [True], tcp=True).unit == unit
        assert write_register_request(unit, 0, 1, tcp=True).unit == unit
        assert write_registers_request(unit, 0, [1], tcp=True).unit == unit
    with pytest.raises(ValueError, match="broadcast"):
        read_request(0, Table.HOLDING, 0, 1)
    for unit in (248, 255):
        with pytest.raises(ValueError, match="0..247"):
            read_request(unit, Table.HOLDING, 0, 1)
        with pytest.raises(ValueError, match="0..247"):
            write_coils_request(unit, 0, [True])
    for unit in (-1, 256):
        with pytest.raises(ValueError, match="0..255"):
            read_request(unit, Table.HOLDING, 0, 1, tcp=True)
