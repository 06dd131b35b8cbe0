"""The recent-lateness window keeps exactly what a bounded deque would, in less memory."""

from __future__ import annotations

import random
import sys
from collections import deque

import pytest

from edge.recent import RecentFloats


@pytest.mark.parametrize("maxlen", [1, 2, 5, 128])
def test_matches_a_bounded_deque_through_appends_extends_and_clears(maxlen: int) -> None:
    rng = random.Random(maxlen)
    ours, model = RecentFloats(maxlen), deque[float](maxlen=maxlen)
    for _ in range(2_000):
        action = rng.random()
        if action < 0.01:
            ours.clear()
            model.clear()
        elif action < 0.1:
            values = [rng.uniform(0, 5) for _ in range(rng.randrange(0, 3 * maxlen))]
            ours.extend(values)
            model.extend(values)
        else:
            value = rng.uniform(0, 5)
            ours.append(value)
            model.append(value)
        assert list(ours) == list(model)
        assert len(ours) == len(model)


def test_full_window_is_smaller_than_the_deque_it_replaced() -> None:
    ours, model = RecentFloats(128), deque[float](maxlen=128)
    for i in range(1_000):
        ours.append(i / 7)
        model.append(i / 7)
    ours_bytes = sys.getsizeof(ours) + sys.getsizeof(ours._items)
    deque_bytes = sys.getsizeof(model) + sum(sys.getsizeof(v) for v in model)
    assert ours_bytes * 2 < deque_bytes


def test_rejects_an_empty_window() -> None:
    with pytest.raises(ValueError, match="maxlen"):
        RecentFloats(0)
