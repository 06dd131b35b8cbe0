"""The Modbus codec: known vectors per type and order, and encode/decode round-trips."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.codec import compile_decoder, decode, encode, get_bit, set_bit
from drivers.modbus.types import DataType, Table, WordOrder, register_count


@dataclass(frozen=True)
class Spec:
    type: DataType
    order: WordOrder = WordOrder.ABCD
    scale: float = 1.0
    offset: float = 0.0
    bit: int | None = None
    length: int | None = None
    id: str = "p"
    table: Table = Table.HOLDING
    address: int = 0


INT_RANGES = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}
ORDERS = list(WordOrder)


# --- known vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "registers"),
    [
        (WordOrder.ABCD, [0x3F80, 0x0000]),
        (WordOrder.CDAB, [0x0000, 0x3F80]),
        (WordOrder.BADC, [0x803F, 0x0000]),
        (WordOrder.DCBA, [0x0000, 0x803F]),
    ],
)
def test_float32_one_in_every_order(order: WordOrder, registers: list[int]) -> None:
    spec = Spec(DataType.FLOAT32, order)
    assert encode(spec, 1.0) == registers
    assert decode(spec, registers) == 1.0


@pytest.mark.parametrize(
    ("order", "registers"),
    [
        (WordOrder.ABCD, [0xAABB, 0xCCDD]),
        (WordOrder.CDAB, [0xCCDD, 0xAABB]),
        (WordOrder.BADC, [0xBBAA, 0xDDCC]),
        (WordOrder.DCBA, [0xDDCC, 0xBBAA]),
    ],
)
def test_uint32_orders_name_the_bytes(order: WordOrder, registers: list[int]) -> None:
    assert decode(Spec(DataType.UINT32, order), registers) == 0xAABBCCDD


@pytest.mark.parametrize(
    ("order", "registers"),
    [
        (WordOrder.ABCD, [0x0102, 0x0304, 0x0506, 0x0708]),
        (WordOrder.CDAB, [0x0708, 0x0506, 0x0304, 0x0102]),
        (WordOrder.BADC, [0x0201, 0x0403, 0x0605, 0x0807]),
        (WordOrder.DCBA, [0x0807, 0x0605, 0x0403, 0x0201]),
    ],
)
def test_uint64_orders(order: WordOrder, registers: list[int]) -> None:
    assert decode(Spec(DataType.UINT64, order), registers) == 0x0102030405060708


def test_int32_minus_two() -> None:
    assert encode(Spec(DataType.INT32), -2) == [0xFFFF, 0xFFFE]
    assert decode(Spec(DataType.INT32), [0xFFFF, 0xFFFE]) == -2
    assert decode(Spec(DataType.INT32, WordOrder.CDAB), [0xFFFE, 0xFFFF]) == -2


def test_int16_and_byte_swapped_uint16() -> None:
    assert decode(Spec(DataType.INT16), [0xFFFF]) == -1
    assert decode(Spec(DataType.INT16), [0x7FFF]) == 32767
    assert decode(Spec(DataType.UINT16, WordOrder.BADC), [0x3412]) == 0x1234
    assert decode(Spec(DataType.UINT16, WordOrder.CDAB), [0x1234]) == 0x1234


def test_float64_abcd() -> None:
    registers = list(struct.unpack(">4H", struct.pack(">d", -1234.5)))
    assert decode(Spec(DataType.FLOAT64), registers) == -1234.5


def test_scale_and_offset() -> None:
    spec = Spec(DataType.INT16, scale=0.1, offset=-40.0)
    assert decode(spec, [653]) == pytest.approx(25.3)
    assert encode(spec, 25.3) == [653]
    assert decode(Spec(DataType.UINT16, scale=0.01), [1234]) == pytest.approx(12.34)


def test_ints_stay_ints_without_scale() -> None:
    value = decode(Spec(DataType.UINT32), [0, 7])
    assert value == 7 and type(value) is int
    scaled = decode(Spec(DataType.UINT32, scale=2.0), [0, 7])
    assert scaled == 14.0 and type(scaled) is float


def test_string_high_byte_first_and_swapped() -> None:
    spec = Spec(DataType.STRING, length=4)
    registers = [0x4142, 0x4344, 0x2000, 0x0000]  # "ABCD " then NUL padding
    assert decode(spec, registers) == "ABCD"
    swapped = Spec(DataType.STRING, WordOrder.BADC, length=4)
    assert decode(swapped, [0x4241, 0x4443, 0x0000, 0x0000]) == "ABCD"
    assert encode(spec, "ABC") == [0x4142, 0x4300, 0, 0]
    assert encode(swapped, "ABC") == [0x4241, 0x0043, 0, 0]


def test_bits_of_a_register_and_coils() -> None:
    assert decode(Spec(DataType.BIT, bit=0), [0x0001]) is True
    assert decode(Spec(DataType.BIT, bit=15), [0x8000]) is True
    assert decode(Spec(DataType.BIT, bit=3), [0xFFF7]) is False
    assert decode(Spec(DataType.BOOL, table=Table.COIL), [1]) is True
    assert encode(Spec(DataType.BOOL, table=Table.COIL), True) == [1]
    assert encode(Spec(DataType.BIT, bit=3), True, current=0x0100) == [0x0108]
    assert encode(Spec(DataType.BIT, bit=8), False, current=0x0108) == [0x0008]
    assert get_bit(0x0008, 3) is True
    assert set_bit(0xFFFF, 15, False) == 0x7FFF


def test_nan_and_inf_from_the_device_decode_to_nan() -> None:
    nan_regs = list(struct.unpack(">2H", struct.pack(">f", float("nan"))))
    inf_regs = list(struct.unpack(">2H", struct.pack(">f", float("inf"))))
    assert math.isnan(decode(Spec(DataType.FLOAT32), nan_regs))  # type: ignore[arg-type]
    assert math.isnan(decode(Spec(DataType.FLOAT32), inf_regs))  # type: ignore[arg-type]
    assert math.isnan(decode(Spec(DataType.FLOAT32, scale=0.5), inf_regs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "value", "fragment"),
    [
        (Spec(DataType.UINT16), 65536, "does not fit uint16"),
        (Spec(DataType.UINT16), -1, "does not fit uint16"),
        (Spec(DataType.INT16, scale=0.1), 3276.8, "does not fit int16"),
        (Spec(DataType.INT64), 2**63, "does not fit int64"),
        (Spec(DataType.FLOAT32), 1e39, "does not fit float32"),
        (Spec(DataType.FLOAT32), float("nan"), "not a finite number"),
        (Spec(DataType.UINT16), "12", "needs a number"),
        (Spec(DataType.STRING, length=1), "ABC", "longer than 2"),
        (Spec(DataType.STRING, length=2), "温度", "not ASCII"),
        (Spec(DataType.BOOL, table=Table.COIL), 2, "true/false"),
        (Spec(DataType.BIT, bit=1), True, "current value"),
    ],
)
def test_encode_refuses_values_that_do_not_fit(spec: Spec, value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        encode(spec, value)  # type: ignore[arg-type]


def test_decode_refuses_short_input() -> None:
    with pytest.raises(ValueError, match="needs 2 registers"):
        decode(Spec(DataType.FLOAT32), [1])


def test_compiled_decoder_reads_at_an_offset_in_a_block() -> None:
    block = [0xDEAD, 0x3F80, 0x0000, 0xBEEF]
    assert compile_decoder(Spec(DataType.FLOAT32))(block, 1) == 1.0
    assert compile_decoder(Spec(DataType.UINT16))(block, 3) == 0xBEEF


# --- round trips -----------------------------------------------------------------------------


@given(st.sampled_from(list(INT_RANGES)), st.sampled_from(ORDERS), st.data())
def test_integers_round_trip_exactly(data_type: DataType, order: WordOrder, data: st.DataObject) -> None:
    low, high = INT_RANGES[data_type]
    value = data.draw(st.integers(low, high))
    spec = Spec(data_type, order)
    registers = encode(spec, value)
    assert len(registers) == register_count(data_type)
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert decode(spec, registers) == value


@given(st.sampled_from(list(INT_RANGES)), st.sampled_from(ORDERS), st.data())
def test_registers_round_trip_through_decode(
    data_type: DataType, order: WordOrder, data: st.DataObject
) -> None:
    """Every register pattern decodes to a value that encodes back to the same registers."""
    registers = data.draw(
        st.lists(
            st.integers(0, 0xFFFF), min_size=register_count(data_type), max_size=register_count(data_type)
        )
    )
    spec = Spec(data_type, order)
    assert encode(spec, decode(spec, registers)) == registers


SCALES = st.sampled_from([1.0, 0.1, 0.01, 0.001, 0.5, 2.0, 10.0])
OFFSETS = st.sampled_from([0.0, -40.0, 273.15, 1000.0])


@given(st.sampled_from(list(INT_RANGES)), st.sampled_from(ORDERS), SCALES, OFFSETS, st.data())
def test_scaled_integers_round_trip(
    data_type: DataType, order: WordOrder, scale: float, offset: float, data: st.DataObject
) -> None:
    low, high = INT_RANGES[data_type]
    # Engineering values are floats, exact only within 2**53; devices never scale beyond that.
    raw = data.draw(st.integers(max(low, -(2**40)), min(high, 2**40)))
    spec = Spec(data_type, order, scale=scale, offset=offset)
    registers = raw_registers(data_type, order, raw)
    engineering = decode(spec, registers)
    assert engineering == pytest.approx(raw * scale + offset)
    assert encode(spec, engineering) == registers


def raw_registers(data_type: DataType, order: WordOrder, raw: int) -> list[int]:
    return encode(Spec(data_type, order), raw)


@given(st.sampled_from(ORDERS), st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_round_trips_exactly(order: WordOrder, value: float) -> None:
    spec = Spec(DataType.FLOAT32, order)
    assert decode(spec, encode(spec, value)) == value


@given(st.sampled_from(ORDERS), st.floats(allow_nan=False, allow_infinity=False))
def test_float64_round_trips_exactly(order: WordOrder, value: float) -> None:
    spec = Spec(DataType.FLOAT64, order)
    assert decode(spec, encode(spec, value)) == value


@given(
    st.sampled_from([DataType.FLOAT32, DataType.FLOAT64]),
    st.sampled_from(ORDERS),
    SCALES,
    OFFSETS,
    st.floats(-1e6, 1e6, allow_nan=False),
)
def test_scaled_floats_round_trip(
    data_type: DataType, order: WordOrder, scale: float, offset: float, value: float
) -> None:
    spec = Spec(data_type, order, scale=scale, offset=offset)
    decoded = decode(spec, encode(spec, value))
    assert isinstance(decoded, float)
    # float32 keeps 24 bits of the raw value; the scale and offset add a little float64 error.
    tolerance = 1e-6 if data_type is DataType.FLOAT32 else 1e-12
    assert decoded == pytest.approx(value, rel=tolerance, abs=tolerance * (abs(offset) + 1))


@given(
    st.sampled_from(ORDERS),
    st.integers(1, 8),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=16),
)
def test_strings_round_trip(order: WordOrder, length: int, text: str) -> None:
    spec = Spec(DataType.STRING, order, length=length)
    if len(text) > 2 * length:
        with pytest.raises(ValueError, match="longer than"):
            encode(spec, text)
        return
    registers = encode(spec, text)
    assert len(registers) == length
    assert decode(spec, registers) == text


@given(st.integers(0, 0xFFFF), st.integers(0, 15), st.booleans())
def test_bit_round_trip_leaves_other_bits_alone(register: int, bit: int, on: bool) -> None:
    spec = Spec(DataType.BIT, bit=bit)
    (new,) = encode(spec, on, current=register)
    assert decode(spec, [new]) is on
    assert new & ~(1 << bit) == register & ~(1 << bit)
