"""The binary COPY encoder for central's telemetry (cloud_sync.central.storage.pg_copy), pure.

The strided fast case must produce exactly the bytes of the row-by-row encoding; the server
round trip is in tests/integration/central/test_pg_copy_roundtrip.py.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.central.storage import pg_copy
from cloud_sync.central.storage.pg_copy import encode_value, one_layout, telemetry_copy_rows


def _slow(cols: tuple[list[Any], ...]) -> bytes:
    """Row by row, the general case, whatever the layout."""
    return b"".join(pg_copy._row(*row) for row in zip(*cols, strict=True))


def _cols(n: int, **over: list[Any]) -> tuple[list[Any], ...]:
    base: dict[str, list[Any]] = {
        "point": [1 + i % 7 for i in range(n)],
        "ts": [1_767_225_600.0 + i / 1000 for i in range(n)],
        "source": [None] * n,
        "value": [i * 0.5 for i in range(n)],
        "quality": [i % 3 for i in range(n)],
        "reason": [""] * n,
        "historical": [True] * n,
        "seq": [9] * n,
    }
    base.update(over)
    return tuple(base.values())


def test_encode_value_kinds() -> None:
    assert encode_value(None) == (None, None, 0)
    assert encode_value(True) == (1.0, None, 1)
    assert encode_value(7) == (7.0, None, 2)
    assert encode_value(2**60) == (float(2**60), str(2**60), 2)
    assert encode_value(-(2**53)) == (-float(2**53), None, 2)
    assert encode_value(1.5) == (1.5, None, 3)
    assert encode_value("on") == (None, "on", 4)


def test_one_row_by_hand() -> None:
    body = telemetry_copy_rows([5], [2.0], [1.5], [3.25], [1], ["comm"], [False], [42])
    expected = (
        struct.pack(">h", 10)
        + struct.pack(">ii", 4, 5)
        + struct.pack(">id", 8, 2.0)
        + struct.pack(">id", 8, 1.5)
        + struct.pack(">id", 8, 3.25)
        + struct.pack(">i", -1)
        + struct.pack(">ih", 2, 3)
        + struct.pack(">ih", 2, 1)
        + struct.pack(">i", 4)
        + b"comm"
        + struct.pack(">ib", 1, 0)
        + struct.pack(">iq", 8, 42)
    )
    assert body == expected


@pytest.mark.parametrize(
    "over",
    [
        {},
        {"source": [1_767_225_599.5 + i for i in range(40)]},
        {"value": [True, 3, 2.5, False] * 10},
        {"value": [2**53, -(2**53)] * 20},
        {"value": [math.nan, math.inf, -0.0, 1e300] * 10},
        {"reason": ["stale"] * 40},
        {"historical": [True, False] * 20, "seq": list(range(40))},
    ],
)
def test_the_fast_layout_writes_the_bytes_of_the_row_by_row_encoding(over: dict[str, list[Any]]) -> None:
    cols = _cols(40, **over)
    assert one_layout(cols[2], cols[3], cols[5])
    assert telemetry_copy_rows(*cols) == _slow(cols)


@pytest.mark.parametrize(
    "over",
    [
        {"source": [None, 1.0] * 20},
        {"value": [None, 1.0] * 20},
        {"value": ["text"] * 40},
        {"value": [2**53 + 1] * 40},
        {"value": [1, -(2**53) - 1] * 20},
        {"reason": ["", "stale"] * 20},
        {"reason": ["ünïcode"] + [""] * 39},
    ],
)
def test_other_layouts_go_row_by_row(over: dict[str, list[Any]]) -> None:
    cols = _cols(40, **over)
    assert not one_layout(cols[2], cols[3], cols[5])
    assert telemetry_copy_rows(*cols) == _slow(cols)


def test_empty_and_mismatched_columns() -> None:
    assert telemetry_copy_rows([], [], [], [], [], [], [], []) == b""
    with pytest.raises(ValueError, match="length"):
        telemetry_copy_rows([1], [1.0], [None], [1.0], [0], [""], [True], [])


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=2**31 - 1),
            st.floats(allow_nan=False, allow_infinity=False),
            st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
            _VALUES,
            st.integers(min_value=0, max_value=2),
            st.sampled_from(["", "stale", "comm"]),
            st.booleans(),
            st.integers(min_value=1, max_value=2**63 - 1),
        ),
        max_size=30,
    )
)
def test_any_rows_encode_as_row_by_row(rows: list[tuple[Any, ...]]) -> None:
    cols = tuple(list(c) for c in zip(*rows, strict=True)) if rows else tuple([] for _ in range(8))
    assert telemetry_copy_rows(*cols) == _slow(cols)
