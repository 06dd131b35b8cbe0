"""The poll workers' frames and bus partition: pure, no processes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConnectionLost, DeviceError, DeviceTimeout, FramingError, TransportError
from core.model import Event, Quality, Reason, Sample
from edge.poll_workers.frames import (
    HEADER,
    FrameError,
    PointCodes,
    PointNames,
    decode_body,
    decode_event,
    encode_error,
    event_body,
    frame,
    raise_error,
)
from edge.poll_workers.partition import partition
from tests.fuzz.support import fuzz_settings

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
_samples = st.builds(
    Sample,
    st.text(min_size=1, max_size=30),
    _values,
    st.sampled_from(list(Quality)),
    st.floats(0, 4e9),
    st.sampled_from(list(Reason)),
    st.one_of(st.none(), st.floats(0, 4e9)),
)


def _unframe(data: bytes) -> list[object]:
    (size,) = HEADER.unpack(data[: HEADER.size])
    assert size == len(data) - HEADER.size
    return decode_body(data[HEADER.size :])


@fuzz_settings()
@given(st.lists(st.lists(_samples, max_size=30), max_size=5))
def test_samples_cross_unchanged(batches: list[list[Sample]]) -> None:
    codes, names = PointCodes(), PointNames()
    for samples in batches:
        body = _unframe(frame(codes.samples_body(samples)))
        assert body[0] == "S"
        assert names.samples(body) == samples


def test_a_point_id_travels_once_then_as_its_code() -> None:
    codes = PointCodes()
    first = codes.samples_body(
        [Sample("s/m1/a", 1, Quality.GOOD, 1.0), Sample("s/m1/b", 2, Quality.GOOD, 1.0)]
    )
    again = codes.samples_body(
        [Sample("s/m1/b", 3, Quality.GOOD, 2.0), Sample("s/m1/c", 4, Quality.GOOD, 2.0)]
    )
    assert first[1] == [[0, "s/m1/a"], [1, "s/m1/b"]]
    assert again[1] == [[2, "s/m1/c"]] and [row[0] for row in again[2]] == [1, 2]
    names = PointNames()
    assert [s.point_id for s in names.samples(first) + names.samples(again)] == [
        "s/m1/a",
        "s/m1/b",
        "s/m1/b",
        "s/m1/c",
    ]


def test_a_nan_value_stays_nan() -> None:
    body = PointCodes().samples_body([Sample("p", math.nan, Quality.BAD, 1.0)])
    (back,) = PointNames().samples(_unframe(frame(body)))
    assert math.isnan(back.value)  # type: ignore[arg-type]


def test_events_cross_unchanged() -> None:
    event = Event("device.offline", "m1", 12.5, {"error": "timeout", "kind": "DeviceTimeout"})
    assert decode_event(_unframe(frame(event_body(event)))) == event


@pytest.mark.parametrize(
    "exc",
    [DeviceTimeout("t"), ConnectionLost("c"), FramingError("f"), KeyError("no point 'x'"), ValueError("v")],
)
def test_write_errors_are_raised_again_as_their_class(exc: Exception) -> None:
    with pytest.raises(type(exc)) as caught:
        raise_error(decode_body(frame(encode_error(exc))[HEADER.size :]))
    assert str(caught.value) == str(exc)


def test_a_device_error_keeps_its_code_and_anything_else_is_a_transport_error() -> None:
    with pytest.raises(DeviceError) as caught:
        raise_error(encode_error(DeviceError("illegal data address", code=2)))
    assert caught.value.code == 2
    with pytest.raises(TransportError, match="boom"):
        raise_error(encode_error(RuntimeError("boom")))


# a reserved byte, a list without a kind, an empty list, a string instead of a list
@pytest.mark.parametrize("data", [b"\xc1", b"\x91\x01", b"\x90", b"\xa1S"])
def test_unreadable_frames_are_frame_errors(data: bytes) -> None:
    with pytest.raises(FrameError):
        decode_body(data)


@pytest.mark.parametrize(
    "body",
    [
        ["S", [], [[0, 1, 0, 0.0, "", None]]],  # a code never declared
        ["S", [[1, "p"]], []],  # declared out of order
        ["S", [[0, "p"]], [[0, 1]]],  # a short row
        ["S", [[0, "p"]], [[0, 1, 7, 0.0, "", None]]],  # no such quality
        ["S", [[0, "p"]], [[0, 1, 0, 0.0, "nope", None]]],  # no such reason
        ["S", 5],
    ],
)
def test_bad_sample_frames_are_frame_errors(body: list[object]) -> None:
    with pytest.raises(FrameError):
        PointNames().samples(body)


def test_partition_keeps_buses_whole_and_balances_points() -> None:
    shares = partition([("a", 100), ("b", 60), ("c", 50), ("d", 10)], 2)
    assert sorted(b for share in shares for b in share) == ["a", "b", "c", "d"]
    assert shares == [["a", "d"], ["b", "c"]]  # 110 and 110 points


def test_partition_never_makes_an_empty_worker() -> None:
    assert partition([("only", 30)], 4) == [["only"]]
    assert partition([], 2) == []
    with pytest.raises(ValueError, match="at least 1"):
        partition([("a", 1)], 0)


@given(st.lists(st.integers(0, 500), min_size=1, max_size=30), st.integers(1, 8))
def test_partition_is_within_one_bus_of_even(points: list[int], workers: int) -> None:
    buses = [(f"b{n}", p) for n, p in enumerate(points)]
    shares = partition(buses, workers)
    assert sorted(b for share in shares for b in share) == sorted(b for b, _ in buses)
    loads = [sum(max(dict(buses)[b], 1) for b in share) for share in shares]
    biggest = max(max(p, 1) for p in points)
    assert max(loads) - min(loads) <= biggest  # greedy, largest first


def test_statistics_cross_unchanged() -> None:
    from edge.coordinator import CoordinatorStats
    from edge.poll_workers.frames import apply_stats_row, stats_row

    sent = CoordinatorStats(polls_ok=7, polls_failed=2, reads_ok=30, last_latency_s=0.012, last_ok_wall=5.0)
    sent.lateness_s.extend([0.001, 0.25])
    got = CoordinatorStats()
    body = _unframe(frame(["T", {"m1": stats_row(sent, True)}]))
    assert apply_stats_row(got, body[1]["m1"]) is True
    assert got.as_dict() == sent.as_dict() and list(got.lateness_s) == [0.001, 0.25]
    with pytest.raises(FrameError):
        apply_stats_row(CoordinatorStats(), [1, 2, 3])
