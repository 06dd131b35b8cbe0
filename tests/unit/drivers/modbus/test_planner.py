"""The read planner: coverage, caps, the gap rule, and the fewest blocks."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import PollGroup
from drivers.modbus.planner import ReadBlock, plan_reads
from drivers.modbus.types import DataType, Table, WordOrder, register_count


@dataclass(frozen=True)
class Point:
    id: str
    address: int
    type: DataType = DataType.UINT16
    table: Table = Table.HOLDING
    order: WordOrder = WordOrder.ABCD
    bit: int | None = None
    length: int | None = None
    scale: float = 1.0
    offset: float = 0.0
    poll_interval_s: float | None = None


def size(p: Point) -> int:
    return register_count(p.type, p.length)


def test_adjacent_points_make_one_block() -> None:
    points = [
        Point("v1", 0, DataType.FLOAT32),
        Point("v2", 2, DataType.FLOAT32),
        Point("v3", 4, DataType.FLOAT32),
    ]
    (block,) = plan_reads(points)
    assert (block.table, block.start, block.count) == (Table.HOLDING, 0, 6)
    assert block.keys == ("v1", "v2", "v3")
    assert [p.offset for p in block.points] == [0, 2, 4]


def test_a_gap_wider_than_max_gap_splits() -> None:
    points = [Point("a", 0), Point("b", 17), Point("c", 35)]
    blocks = plan_reads(points, max_gap=16)
    assert [(b.start, b.count) for b in blocks] == [(0, 18), (35, 1)]
    assert [(b.start, b.count) for b in plan_reads(points, max_gap=0)] == [(0, 1), (17, 1), (35, 1)]


def test_the_register_cap_splits_and_a_device_cap_is_honoured() -> None:
    points = [Point(f"p{i}", i * 2, DataType.FLOAT32) for i in range(100)]  # 200 registers
    assert [(b.start, b.count) for b in plan_reads(points)] == [(0, 124), (124, 76)]
    assert len(plan_reads(points, max_registers=32)) == 7  # 16 floats per block


def test_tables_and_intervals_never_share_a_block() -> None:
    points = [
        Point("hr", 0),
        Point("ir", 1, table=Table.INPUT),
        Point("coil", 0, DataType.BOOL, Table.COIL),
        Point("di", 0, DataType.BOOL, Table.DISCRETE_INPUT),
        Point("slow", 2, poll_interval_s=60.0),
    ]
    blocks = plan_reads(points, default_interval_s=5.0)
    assert [(b.interval_s, b.table, b.keys) for b in blocks] == [
        (5.0, Table.COIL, ("coil",)),
        (5.0, Table.DISCRETE_INPUT, ("di",)),
        (5.0, Table.HOLDING, ("hr",)),
        (5.0, Table.INPUT, ("ir",)),
        (60.0, Table.HOLDING, ("slow",)),
    ]


def test_interval_of_overrides_the_default() -> None:
    points = [Point("a", 0), Point("b", 1)]
    blocks = plan_reads(points, interval_of=lambda p: 1.0 if p.id == "a" else 2.0)
    assert [(b.interval_s, b.keys) for b in blocks] == [(1.0, ("a",)), (2.0, ("b",))]


def test_bits_of_one_register_share_the_read() -> None:
    points = [Point(f"b{i}", 10, DataType.BIT, bit=i) for i in range(16)]
    (block,) = plan_reads(points)
    assert (block.start, block.count) == (10, 1)
    assert len(block.keys) == 16


def test_coils_use_the_bit_cap() -> None:
    points = [Point(f"c{i}", i * 100, DataType.BOOL, Table.COIL) for i in range(30)]
    blocks = plan_reads(points, max_gap=100)
    assert [(b.start, b.count) for b in blocks] == [(0, 1901), (2000, 901)]


def test_a_point_larger_than_the_cap_is_a_planning_error() -> None:
    with pytest.raises(ValueError, match="more than the 8"):
        plan_reads([Point("s", 0, DataType.STRING, length=10)], max_registers=8)
    with pytest.raises(ValueError, match="outside 0..65535"):
        plan_reads([Point("f", 65535, DataType.FLOAT32)])
    with pytest.raises(ValueError, match="twice"):
        plan_reads([Point("a", 0), Point("a", 1)])
    with pytest.raises(ValueError, match="max_registers"):
        plan_reads([], max_registers=126)


def test_blocks_are_poll_groups() -> None:
    (block,) = plan_reads([Point("a", 0)])
    group: PollGroup = block
    assert group.interval_s == 5.0 and group.keys == ("a",)


# --- properties ------------------------------------------------------------------------------

TYPES = st.sampled_from(
    [DataType.UINT16, DataType.INT32, DataType.FLOAT32, DataType.FLOAT64, DataType.BIT, DataType.STRING]
)


@st.composite
def points_strategy(draw: st.DrawFn) -> list[Point]:
    count = draw(st.integers(0, 40))
    points: list[Point] = []
    for i in range(count):
        table = draw(st.sampled_from(list(Table)))
        if table.is_bits:
            data_type, bit, length = DataType.BOOL, None, None
        else:
            data_type = draw(TYPES)
            bit = draw(st.integers(0, 15)) if data_type is DataType.BIT else None
            length = draw(st.integers(1, 20)) if data_type is DataType.STRING else None
        address = draw(st.integers(0, 600))
        interval = draw(st.sampled_from([None, None, 1.0, 60.0]))
        points.append(
            Point(f"p{i}", address, data_type, table, bit=bit, length=length, poll_interval_s=interval)
        )
    return points


@given(points_strategy(), st.integers(20, 125), st.integers(50, 2000), st.integers(0, 30))
def test_plan_properties(points: list[Point], max_registers: int, max_bits: int, max_gap: int) -> None:
    blocks = plan_reads(points, max_registers=max_registers, max_bits=max_bits, max_gap=max_gap)
    by_key = {p.id: p for p in points}
    covered: dict[str, ReadBlock] = {}
    for block in blocks:
        cap = max_bits if block.table.is_bits else max_registers
        assert 1 <= block.count <= cap
        spans = []
        for bp in block.points:
            assert bp.key not in covered, "a point is read by two blocks"
            covered[bp.key] = block
            point = by_key[bp.key]
            assert point.table is block.table
            assert (point.poll_interval_s or 5.0) == block.interval_s
            assert point.address == block.start + bp.offset
            assert point.address + size(point) <= block.end
            spans.append((point.address, point.address + size(point)))
        # The block starts at its first point and ends at its last; no hole inside it is wider
        # than max_gap.
        spans.sort()
        assert spans[0][0] == block.start
        assert max(end for _, end in spans) == block.end
        reach = spans[0][1]
        for start, end in spans[1:]:
            assert start - reach <= max_gap
            reach = max(reach, end)
    assert set(covered) == set(by_key)


def fewest_blocks(spans: list[tuple[int, int]], cap: int, max_gap: int) -> int:
    """Brute force: the fewest runs of address-sorted points obeying the cap and the gap rule."""
    spans = sorted(spans)

    @functools.cache
    def best(i: int) -> int:
        if i == len(spans):
            return 0
        result = len(spans) + 1
        start, reach = spans[i][0], spans[i][1]
        for j in range(i, len(spans)):
            if j > i:
                if spans[j][0] - reach > max_gap:
                    break
                reach = max(reach, spans[j][1])
            if reach - start > cap:
                break
            result = min(result, 1 + best(j + 1))
        return result

    return best(0)


@given(
    st.lists(st.tuples(st.integers(0, 300), st.sampled_from([1, 2, 4])), min_size=1, max_size=14),
    st.integers(4, 40),
    st.integers(0, 10),
)
def test_greedy_plan_uses_the_fewest_blocks(
    layout: list[tuple[int, int]], max_registers: int, max_gap: int
) -> None:
    kinds = {1: DataType.UINT16, 2: DataType.FLOAT32, 4: DataType.FLOAT64}
    points = [Point(f"p{i}", address, kinds[n]) for i, (address, n) in enumerate(layout)]
    blocks = plan_reads(points, max_registers=max_registers, max_gap=max_gap)
    spans = [(address, address + n) for address, n in layout]
    assert len(blocks) == fewest_blocks(spans, max_registers, max_gap)
