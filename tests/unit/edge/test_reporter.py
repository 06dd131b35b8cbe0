from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from core.model import Quality, Reason, Sample
from edge.reporter import Reporter


@dataclass
class Policy:
    on_change: bool = True
    deadband_abs: float | None = None
    deadband_pct: float | None = None
    heartbeat_s: float | None = None


def s(value: object, quality: Quality = Quality.GOOD, reason: Reason = Reason.NONE) -> Sample:
    return Sample("site/dev/p", value, quality, 0.0, reason)  # type: ignore[arg-type]


def test_first_sample_is_always_reported() -> None:
    r = Reporter({"site/dev/p": Policy(on_change=False, heartbeat_s=60)})
    assert r.select([s(1.0)], 0.0) == [s(1.0)]


def test_absolute_deadband_suppresses_small_changes() -> None:
    r = Reporter({"site/dev/p": Policy(deadband_abs=0.5)})
    assert r.select([s(10.0)], 0) and not r.select([s(10.4)], 1) and not r.select([s(9.6)], 2)
    assert r.select([s(10.6)], 3)
    # the band is measured from the last *reported* value, so slow drift is still reported
    assert not r.select([s(11.0)], 4)
    assert r.select([s(11.2)], 5)


def test_percent_deadband() -> None:
    r = Reporter({"site/dev/p": Policy(deadband_pct=10)})
    r.select([s(200.0)], 0)
    assert not r.select([s(219.0)], 1)
    assert r.select([s(221.0)], 2)


def test_both_bands_must_be_exceeded() -> None:
    r = Reporter({"site/dev/p": Policy(deadband_abs=1.0, deadband_pct=10)})
    r.select([s(100.0)], 0)
    assert not r.select([s(105.0)], 1)  # beyond abs, inside pct
    assert r.select([s(111.0)], 2)


def test_heartbeat_reports_unchanged_values() -> None:
    r = Reporter({"site/dev/p": Policy(heartbeat_s=30)})
    r.select([s(1)], 0)
    assert not r.select([s(1)], 29.9)
    assert r.select([s(1)], 30.0)
    assert not r.select([s(1)], 59.0)
    assert r.select([s(1)], 60.0)


def test_quality_change_always_reported_even_inside_deadband() -> None:
    r = Reporter({"site/dev/p": Policy(deadband_abs=100, on_change=True)})
    r.select([s(1.0)], 0)
    assert r.select([s(1.0, Quality.BAD, Reason.OUT_OF_RANGE)], 1)
    assert r.select([s(1.0, Quality.BAD, Reason.COMM_FAILURE)], 2)  # reason changed
    assert not r.select([s(1.0, Quality.BAD, Reason.COMM_FAILURE)], 3)
    assert r.select([s(1.0)], 4)


def test_booleans_and_strings_report_any_change() -> None:
    r = Reporter({"site/dev/p": Policy(deadband_abs=5)})
    r.select([s(False)], 0)
    assert r.select([s(True)], 1)
    assert not r.select([s(True)], 2)
    assert r.select([s("x")], 3)


def test_nan_reports_transition_only() -> None:
    r = Reporter({"site/dev/p": Policy()})
    r.select([s(1.0)], 0)
    assert r.select([s(math.nan)], 1)
    assert not r.select([s(math.nan)], 2)
    assert r.select([s(2.0)], 3)


def test_point_without_policy_is_reported() -> None:
    r = Reporter({})
    assert len(r.select([s(1), s(1)], 0)) == 2


@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
    band=st.floats(0, 1000),
)
def test_reported_values_differ_by_more_than_the_band(values: list[float], band: float) -> None:
    r = Reporter({"site/dev/p": Policy(deadband_abs=band)})
    reported = [v for i, v in enumerate(values) if r.select([s(v)], float(i))]
    assert reported[0] == values[0]
    for a, b in zip(reported, reported[1:], strict=False):
        assert abs(b - a) > band
