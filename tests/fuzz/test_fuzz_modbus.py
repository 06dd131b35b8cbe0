"""Modbus answers as a misbehaving device or line sends them: the serial scanners and decoders,
and the register codec, meet only their own error types (FramingError, DeviceError)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from core.errors import GatehouseError
from drivers.modbus import ascii_framing, rtu_framing
from drivers.modbus.codec import decode
from drivers.modbus.serial_pdu import Request, decode_response, read_request, write_register_request
from drivers.modbus.types import DataType, Table, WordOrder, register_count
from tests.fuzz.support import fuzz_settings, mutated

REQUESTS: list[Request] = [
    read_request(1, Table.HOLDING, 0, 10),
    read_request(7, Table.INPUT, 100, 2),
    read_request(3, Table.COIL, 0, 13),
    read_request(247, Table.DISCRETE_INPUT, 5, 1),
    write_register_request(2, 40, 1234),
]


def _answer_pdu(request: Request) -> bytes:
    if request.is_write:
        return bytes([request.function]) + request.echo
    body = bytes(range(request.answer_bytes))
    return bytes([request.function, len(body)]) + body


def _rtu(request: Request) -> bytes:
    return rtu_framing.with_crc(bytes([request.unit]) + _answer_pdu(request))


def _ascii(request: Request) -> bytes:
    return ascii_framing.encode_frame(request.unit, _answer_pdu(request))


RTU_SEEDS = [_rtu(r) for r in REQUESTS] + [rtu_framing.with_crc(bytes([1, 0x83, 2]))]
ASCII_SEEDS = [_ascii(r) for r in REQUESTS] + [ascii_framing.encode_frame(1, bytes([0x83, 2]))]
PDU_SEEDS = [_answer_pdu(r) for r in REQUESTS] + [bytes([0x83, 2])]


@fuzz_settings()
@given(st.sampled_from(REQUESTS), mutated(RTU_SEEDS))
def test_rtu_scan_and_decode_raise_only_framing_errors(request: Request, buffer: bytes) -> None:
    scan = rtu_framing.scan_response(buffer, request)
    assert 0 <= scan.consumed <= len(buffer)
    if scan.pdu is not None:
        _decode_or_own_error(request, scan.pdu)
    try:
        rtu_framing.decode_frame(buffer, request)
    except GatehouseError:
        pass


@fuzz_settings()
@given(st.sampled_from(REQUESTS), mutated(ASCII_SEEDS))
def test_ascii_scan_and_decode_raise_only_framing_errors(request: Request, buffer: bytes) -> None:
    scan = ascii_framing.scan_response(buffer, request)
    assert 0 <= scan.consumed <= len(buffer)
    if scan.pdu is not None:
        _decode_or_own_error(request, scan.pdu)
    try:
        ascii_framing.decode_frame(buffer, request)
    except GatehouseError:
        pass


@fuzz_settings()
@given(st.sampled_from(REQUESTS), mutated(PDU_SEEDS, max_random=40))
def test_pdu_decoder_raises_only_framing_or_device_errors(request: Request, pdu: bytes) -> None:
    _decode_or_own_error(request, pdu)


def _decode_or_own_error(request: Request, pdu: bytes) -> None:
    try:
        values = decode_response(request, pdu)
    except GatehouseError:
        return
    if request.is_write:
        assert values == []
    else:
        assert len(values) == request.count
        limit = 1 if request.function in (1, 2) else 0xFFFF
        assert all(0 <= v <= limit for v in values)


@dataclass(frozen=True)
class _Spec:
    type: DataType
    order: WordOrder
    bit: int | None
    length: int | None
    scale: float
    offset: float
    id: str = "fuzz"
    table: Table = Table.HOLDING
    address: int = 0


@st.composite
def _specs(draw: st.DrawFn) -> _Spec:
    data_type = draw(st.sampled_from([t for t in DataType if t is not DataType.BOOL]))
    return _Spec(
        type=data_type,
        order=draw(st.sampled_from(list(WordOrder))),
        bit=draw(st.integers(0, 15)) if data_type is DataType.BIT else None,
        length=draw(st.integers(1, 20)) if data_type is DataType.STRING else None,
        scale=draw(st.sampled_from([1.0, 0.1, -10.0, 1e-300, 1e300])),
        offset=draw(st.sampled_from([0.0, -40.0, 1e308])),
    )


@fuzz_settings()
@given(_specs(), st.lists(st.integers(0, 0xFFFF), min_size=0, max_size=24))
def test_register_codec_decodes_any_register_values(spec: _Spec, registers: list[int]) -> None:
    needed = register_count(spec.type, spec.length)
    if len(registers) < needed:
        registers = registers + [0] * (needed - len(registers))
    value = decode(spec, registers)  # any 16-bit values decode: NaN/inf floats, any string bytes
    assert value is None or isinstance(value, bool | int | float | str)
    struct.pack(">H", registers[0])  # the fixture itself stays 16-bit
