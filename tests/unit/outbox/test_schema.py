"""The compact row encoding: flags carry quality, reason and the value cases SQLite loses."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from core.model import Quality, Reason
from edge.outbox.schema import BOOL_FLAG, NAN_FLAG, REASON_CODES, REASON_FLAGS, decode_flags, decode_value


@given(st.sampled_from(list(Quality)), st.sampled_from(list(Reason)), st.booleans())
def test_flags_round_trip(quality: Quality, reason: Reason, is_bool: bool) -> None:
    flags = quality | REASON_FLAGS[reason] | (BOOL_FLAG if is_bool else 0)
    assert decode_flags(flags) == (int(quality), reason.value)


def test_every_reason_has_a_distinct_code() -> None:
    assert len(set(REASON_CODES.values())) == len(REASON_CODES)
    assert {r.value for r in Reason} <= REASON_CODES.keys()


def test_values_sqlite_cannot_keep_are_restored() -> None:
    assert decode_value(1, BOOL_FLAG) is True
    assert decode_value(0, BOOL_FLAG) is False
    restored = decode_value(None, NAN_FLAG)
    assert isinstance(restored, float) and math.isnan(restored)
    assert decode_value("7", 0) == "7"
    assert decode_value(b"\x01\x02", 0) == "0102"
