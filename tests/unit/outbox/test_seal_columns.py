"""Sealing from columns (the outbox's fast path) gives exactly the bytes of sealing row objects."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.envelope import TelemetryColumns, decode_header, decode_records, make_sealer
from cloud_sync.keys import key_id
from cloud_sync.ports import Lane, TelemetryRow
from edge.outbox.batches import decode_telemetry, telemetry_columns
from edge.outbox.schema import BOOL_FLAG, NAN_FLAG, REASON_FLAGS

_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
_SEAL = make_sealer("gw-a", key_id(_KEY.public_key()), _KEY)
_NAMES = {i: f"site/dev{i // 5}/p{i % 5}" for i in range(40)}
_FLAGS = [q | r for q in (0, 1, 2) for r in REASON_FLAGS.values()]


@st.composite
def _stored_row(draw: st.DrawFn) -> tuple[Any, ...]:
    """A telemetry row as the outbox stores it: (id, point, value, flags, receipt_ts, source_ts)."""
    flags = draw(st.sampled_from(_FLAGS))
    kind = draw(st.sampled_from(["int", "float", "str", "none", "bool", "nan"]))
    value: Any
    if kind == "int":
        value = draw(st.integers(-(2**63), 2**63 - 1))
    elif kind == "float":
        value = draw(st.floats(allow_nan=False))
    elif kind == "str":
        value = draw(st.text(max_size=8))
    elif kind == "bool":
        value, flags = draw(st.integers(0, 1)), flags | BOOL_FLAG
    elif kind == "nan":
        value, flags = None, flags | NAN_FLAG
    else:
        value = None
    receipt = draw(st.floats(1.6e9, 1.9e9))
    source = draw(st.one_of(st.none(), st.floats(1.6e9, 1.9e9)))
    return (0, draw(st.integers(0, 39)), value, flags, receipt, source)


@settings(max_examples=200, deadline=None)
@given(st.lists(_stored_row(), min_size=1, max_size=60))
def test_columns_seal_to_the_same_bytes_as_rows(raw: list[tuple[Any, ...]]) -> None:
    raw = [(i, *row[1:]) for i, row in enumerate(raw, start=1)]
    rows = decode_telemetry(raw, _NAMES)
    columns = telemetry_columns(raw, _NAMES)
    assert len(columns) == len(rows)
    kwargs: dict[str, Any] = {"lane": Lane.TELEMETRY, "seq": 7, "historical": False, "sealed_at": 1.7e9}
    fast = _SEAL(rows=columns, **kwargs)
    assert fast == _SEAL(rows=rows, **kwargs)
    # And the columns still read as rows (the same ones, NaN aside).
    decoded = decode_records(decode_header(fast))
    assert [r.point_id for r in decoded if isinstance(r, TelemetryRow)] == [r.point_id for r in rows]
    assert repr(list(columns)) == repr(rows)


def test_columns_refuse_ragged_lists() -> None:
    with pytest.raises(ValueError, match="length"):
        TelemetryColumns(["a"], [0, 0], [1.0], [0], [""], [1.0], [None])
