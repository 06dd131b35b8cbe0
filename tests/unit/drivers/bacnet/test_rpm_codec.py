"""rpm_codec against bacpypes3's own encoder: what bacpypes3 encodes, rpm_codec decodes to the
same values, and rpm_codec's encodings are byte for byte bacpypes3's; malformed and mutated
answers raise only FramingError."""

from __future__ import annotations

import math
import random
import time
from typing import Any

import pytest
from bacpypes3.apdu import ReadPropertyMultipleACK, ReadPropertyMultipleRequest
from bacpypes3.basetypes import (
    ErrorClass,
    ErrorCode,
    ErrorType,
    PropertyIdentifier,
    PropertyReference,
    ReadAccessResult,
    ReadAccessResultElement,
    ReadAccessResultElementChoice,
    ReadAccessSpecification,
)
from bacpypes3.constructeddata import Any as AnyValue
from bacpypes3.primitivedata import (
    BitString,
    Boolean,
    CharacterString,
    Double,
    Enumerated,
    Integer,
    Null,
    ObjectIdentifier,
    ObjectType,
    Real,
    Unsigned,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import FramingError
from drivers.bacnet import rpm_codec
from drivers.bacnet.rpm_codec import (
    PropertyAccessError,
    Unsupported,
    decode_ack,
    decode_request,
    encode_ack,
    encode_request,
)

# (application tag, python value, bacpypes3 class)
_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
values = st.one_of(
    st.just((rpm_codec.NULL, None, lambda v: Null(()))),
    st.booleans().map(lambda b: (rpm_codec.BOOLEAN, b, Boolean)),
    st.integers(0, 2**32 - 1).map(lambda n: (rpm_codec.UNSIGNED, n, Unsigned)),
    st.integers(-(2**31), 2**31 - 1).map(lambda n: (rpm_codec.SIGNED, n, Integer)),
    st.floats(width=32).map(lambda f: (rpm_codec.REAL, f, Real)),
    st.floats().map(lambda f: (rpm_codec.DOUBLE, f, Double)),
    _text.map(lambda s: (rpm_codec.CHARACTERS, s, CharacterString)),
    st.lists(st.integers(0, 1), max_size=24).map(
        lambda b: (rpm_codec.BITS, tuple(b), lambda v: BitString(list(v)))
    ),
    st.integers(0, 2**32 - 1).map(lambda n: (rpm_codec.ENUMERATED, n, Enumerated)),
)
errors = st.builds(PropertyAccessError, st.integers(0, 7), st.sampled_from(sorted(rpm_codec.ERROR_CODES)))
results = st.lists(
    st.tuples(
        st.integers(0, 4194303),
        st.none() | st.integers(0, 2**32 - 1),
        st.one_of(values, errors),
    ),
    min_size=1,
    max_size=6,
)
objects = st.lists(st.tuples(st.integers(0, 1023), st.integers(0, 4194303), results), min_size=1, max_size=5)


def _bacpypes3_ack(objs: list[Any]) -> bytes:
    read_results = []
    for object_type, instance, rows in objs:
        elements = []
        for prop, index, value in rows:
            if isinstance(value, PropertyAccessError):
                choice = ReadAccessResultElementChoice(
                    propertyAccessError=ErrorType(
                        errorClass=ErrorClass(value.error_class), errorCode=ErrorCode(value.error_code)
                    )
                )
            else:
                _, python, cls = value
                choice = ReadAccessResultElementChoice(propertyValue=AnyValue(cls(python)))
            element = ReadAccessResultElement(propertyIdentifier=PropertyIdentifier(prop), readResult=choice)
            if index is not None:
                element.propertyArrayIndex = index
            elements.append(element)
        read_results.append(
            ReadAccessResult(
                objectIdentifier=ObjectIdentifier((ObjectType(object_type), instance)), listOfResults=elements
            )
        )
    ack = ReadPropertyMultipleACK(listOfReadAccessResults=read_results)
    ack.apduInvokeID = 1
    return bytes(ack.encode().pduData)


def _ours(objs: list[Any]) -> list[Any]:
    return [
        (t, i, [(p, x, v if isinstance(v, PropertyAccessError) else (v[0], v[1])) for p, x, v in rows])
        for t, i, rows in objs
    ]


def _same(decoded: Any, expected: Any) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(decoded, float) and math.isnan(decoded)
    return type(decoded) is type(expected) and decoded == expected


@settings(max_examples=300, deadline=None)
@given(objects)
def test_decodes_what_bacpypes3_encodes_and_encodes_the_same_bytes(objs: list[Any]) -> None:
    data = _bacpypes3_ack(objs)
    rows = decode_ack(data)
    expected = [
        (t, i, p, x, v if isinstance(v, PropertyAccessError) else v[1]) for t, i, rs in objs for p, x, v in rs
    ]
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert row[:4] == want[:4]
        assert _same(row[4], want[4]), (row, want)
    assert encode_ack(_ours(objs)) == data


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 1023),
            st.integers(0, 4194303),
            st.lists(st.tuples(st.integers(0, 4194303), st.none() | st.integers(0, 2**32 - 1)), min_size=1),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_requests_are_bacpypes3s_bytes(specs: list[Any]) -> None:
    request = ReadPropertyMultipleRequest(
        listOfReadAccessSpecs=[
            ReadAccessSpecification(
                objectIdentifier=ObjectIdentifier((ObjectType(t), i)),
                listOfPropertyReferences=[
                    PropertyReference(propertyIdentifier=PropertyIdentifier(p))
                    if x is None
                    else PropertyReference(propertyIdentifier=PropertyIdentifier(p), propertyArrayIndex=x)
                    for p, x in props
                ],
            )
            for t, i, props in specs
        ]
    )
    request.apduInvokeID = 1
    data = bytes(request.encode().pduData)
    assert encode_request(specs) == data
    assert decode_request(data) == [(t, i, list(props)) for t, i, props in specs]


def test_values_it_does_not_decode_are_unsupported_not_wrong() -> None:
    head = b"\x0c\x00\x00\x00\x05\x1e\x29\x55"
    for value in (
        b"\x4e\x44\x3f\xc0\x00\x00\x44\x3f\xc0\x00\x00\x4f",  # two values: a list
        b"\x4e\x0e\x44\x3f\xc0\x00\x00\x0f\x4f",  # constructed
        b"\x4e\xa4\x7e\x0c\x01\x05\x4f",  # a date
        b"\x4e\xc4\x00\x00\x00\x01\x4f",  # an object identifier
        b"\x4e\x72\x01\x41\x4f",  # IBM/Microsoft DBCS character set
    ):
        with pytest.raises(Unsupported):
            decode_ack(head + value + b"\x1f")
    assert decode_ack(head + b"\x4e\x44\x3f\xc0\x00\x00\x4f\x1f") == [(0, 5, 85, None, 1.5)]


def test_malformed_answers_raise_framing_errors() -> None:
    good = encode_ack(
        [(0, 1, [(85, None, (rpm_codec.REAL, 2.5)), (111, None, (rpm_codec.BITS, (0, 0, 0, 0)))])]
    )
    assert decode_ack(good[:5]) == []  # an object without listOfResults (it is optional)
    for cut in [*range(1, 5), *range(6, len(good))]:
        with pytest.raises(FramingError):
            decode_ack(good[:cut])
    with pytest.raises(FramingError):
        decode_request(b"")


def _random_ack(rng: random.Random) -> bytes:
    objs = []
    for _ in range(rng.randrange(1, 4)):
        rows: list[Any] = []
        for _ in range(rng.randrange(1, 4)):
            kind = rng.randrange(6)
            value: Any
            if kind == 0:
                value = (rpm_codec.REAL, rng.uniform(-1e6, 1e6))
            elif kind == 1:
                value = (rpm_codec.BITS, tuple(rng.randrange(2) for _ in range(rng.randrange(9))))
            elif kind == 2:
                value = (rpm_codec.UNSIGNED, rng.randrange(2**40))
            elif kind == 3:
                value = (rpm_codec.CHARACTERS, "é" * rng.randrange(300))
            elif kind == 4:
                value = PropertyAccessError(rng.randrange(8), rng.randrange(300))
            else:
                value = (rpm_codec.SIGNED, rng.randrange(-(2**20), 2**20))
            rows.append((rng.randrange(2**22), rng.choice([None, rng.randrange(2**16)]), value))
        objs.append((rng.randrange(1024), rng.randrange(2**22), rows))
    return encode_ack(objs)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            del buf[pos:]
        elif op == 2:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
        elif op == 3 and buf:
            del buf[pos : pos + rng.randrange(1, 4)]
        else:
            buf = bytearray(rng.randbytes(rng.randrange(0, 60)))
    return bytes(buf)


def test_fuzz_100k_mutated_answers_and_requests_raise_only_framing_errors() -> None:
    rng = random.Random(20261204)
    seeds = [_random_ack(rng) for _ in range(200)]
    request_seeds = [
        encode_request([(rng.randrange(1024), rng.randrange(2**22), [(85, None), (111, rng.randrange(9))])])
        for _ in range(50)
    ]
    decoded = failed = 0
    start = time.monotonic()
    for n in range(100_000):
        if n % 5 == 4:
            data = _mutate(rng, rng.choice(request_seeds))
            try:
                decode_request(data)
            except FramingError:
                failed += 1
            else:
                decoded += 1
            continue
        data = _mutate(rng, rng.choice(seeds))
        try:
            rows = decode_ack(data)
        except FramingError:
            failed += 1
        else:
            decoded += 1
            assert all(isinstance(row[0], int) and 0 <= row[0] < 1024 for row in rows)
    assert decoded > 1000 and failed > 1000, (decoded, failed)  # both paths were exercised
    assert time.monotonic() - start < 60
