"""GB/T 26875.3 information objects: round trips of every type, unknown types kept, never fatal."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.gb26875.frame import TimeFormat, TimeTag
from drivers.gb26875.objects import (
    DESCRIPTION_LEN,
    AduError,
    AnalogValue,
    ComponentStatus,
    InfoObject,
    OperationRecord,
    SoftwareVersion,
    SystemStatus,
    TimeObject,
    TypeFlag,
    UitdOperation,
    UitdStatus,
    UnknownObjects,
    decode_adu,
    encode_adu,
    encode_description,
    fire,
    in_test,
)

u8 = st.integers(0, 255)
tags = st.builds(
    TimeTag,
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 23),
    st.integers(1, 28),
    st.integers(1, 12),
    st.integers(2000, 2099),
)
# Text that fits 31 GB18030 bytes, without NULs or trailing spaces (which decoding strips).
texts = (
    st.text(
        alphabet=st.sampled_from("火警烟感探测器手动报警按钮楼层走廊东西 ABCxyz0123456789-#"), max_size=20
    )
    .map(str.rstrip)
    .filter(lambda t: len(t.encode("gb18030")) <= DESCRIPTION_LEN)
)
OBJECTS: dict[int, st.SearchStrategy[InfoObject]] = {
    TypeFlag.SYSTEM_STATUS: st.builds(SystemStatus, u8, u8, st.integers(0, 0xFFFF), tags),
    TypeFlag.COMPONENT_STATUS: st.builds(
        ComponentStatus, u8, u8, u8, st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF), texts, tags
    ),
    TypeFlag.ANALOG_VALUE: st.builds(
        AnalogValue, u8, u8, u8, st.integers(0, 0xFFFFFFFF), u8, st.integers(-32768, 32767), tags
    ),
    TypeFlag.OPERATION: st.builds(OperationRecord, u8, u8, u8, u8, tags),
    TypeFlag.SOFTWARE_VERSION: st.builds(SoftwareVersion, u8, u8, u8, u8, st.none() | tags),
    TypeFlag.SYSTEM_TIME: st.builds(TimeObject, tags),
    TypeFlag.UITD_STATUS: st.builds(UitdStatus, u8, tags),
    TypeFlag.UITD_OPERATION: st.builds(UitdOperation, u8, u8, tags),
    TypeFlag.UITD_TIME: st.builds(TimeObject, tags),
    TypeFlag.SYNC_CLOCK: st.builds(TimeObject, tags),
}


@st.composite
def units(draw: st.DrawFn) -> tuple[int, list[InfoObject]]:
    type_flag = draw(st.sampled_from(sorted(OBJECTS)))
    objects = draw(st.lists(OBJECTS[type_flag], min_size=1, max_size=8))
    if type_flag == TypeFlag.SOFTWARE_VERSION:  # one unit: all with a time tag or none
        with_time = objects[0].time is not None  # type: ignore[union-attr]
        objects = [o for o in objects if (o.time is not None) == with_time]  # type: ignore[union-attr]
    return type_flag, objects


@given(units(), st.sampled_from(list(TimeFormat)))
def test_every_object_type_round_trips(unit: tuple[int, list[InfoObject]], fmt: TimeFormat) -> None:
    type_flag, objects = unit
    adu = decode_adu(encode_adu(type_flag, objects, fmt), fmt)
    assert adu is not None
    assert adu.type_flag == type_flag
    assert list(adu.objects) == objects
    assert not adu.unknown


def test_an_unknown_type_is_kept_whole_and_re_encodes() -> None:
    data = bytes((6, 2)) + bytes(range(20))
    adu = decode_adu(data)
    assert adu is not None and adu.unknown
    (obj,) = adu.objects
    assert isinstance(obj, UnknownObjects) and obj.count == 2 and obj.raw == bytes(range(20))
    assert encode_adu(6, adu.objects) == data


def test_a_known_type_whose_length_does_not_fit_its_count_is_kept_raw() -> None:
    adu = decode_adu(bytes((2, 2)) + bytes(46))
    assert adu is not None and adu.unknown
    assert "do not fill" in adu.objects[0].reason  # type: ignore[union-attr]


def test_empty_data_is_a_heartbeat_and_one_byte_is_an_error() -> None:
    assert decode_adu(b"") is None
    with pytest.raises(AduError):
        decode_adu(b"\x02")


def test_random_data_units_never_raise_anything_but_adu_errors() -> None:
    rng = random.Random(1)
    for _ in range(50_000):
        data = bytes((rng.choice((1, 2, 3, 4, 5, 8, 21, 24, 28, 90, rng.randrange(256))), rng.randrange(4)))
        data += rng.randbytes(rng.choice((0, 10, 46, 92, 16, rng.randrange(120))))
        if rng.random() < 0.05:
            data = data[:1]
        try:
            decode_adu(data, rng.choice(list(TimeFormat)))
        except AduError:
            pass


def test_descriptions_are_cut_at_a_character_boundary() -> None:
    raw = encode_description("火" * 20)  # 2 bytes each: 15 fit in 31
    assert len(raw) == DESCRIPTION_LEN and raw.endswith(b"\0")
    adu = decode_adu(
        encode_adu(2, [ComponentStatus(1, 1, 42, 1, 2, "火" * 20, TimeTag(0, 0, 0, 1, 1, 2024))])
    )
    assert adu is not None and adu.objects[0].description == "火" * 15  # type: ignore[union-attr]


def test_status_helpers_never_read_bit0_as_no_fire() -> None:
    assert fire(0x0002) and fire(0x0003)
    assert not fire(0x0001)
    assert in_test(0x0002) and not in_test(0x0003)


def test_an_object_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be sent"):
        encode_adu(1, [UitdStatus(1, TimeTag(0, 0, 0, 1, 1, 2024))])
    with pytest.raises(ValueError, match="does not fit"):
        encode_adu(1, [SystemStatus(256, 1, 0, TimeTag(0, 0, 0, 1, 1, 2024))])
