"""The live tail against a plain list model: what it holds is always the newest contiguous rows."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.outbox.live_tail import LiveTail, TailRow


def _row(n: int, receipt: float) -> TailRow:
    return (n % 7, float(n), 0, receipt, None)


# An operation: ("append", rows, gap) | ("drop", back) | ("take", max_records, cutoff)
_op = st.one_of(
    st.tuples(st.just("append"), st.lists(st.floats(0, 100), max_size=9), st.sampled_from([0, 0, 0, 3])),
    st.tuples(st.just("drop"), st.integers(0, 12), st.just(0)),
    st.tuples(st.just("take"), st.integers(1, 12), st.floats(0, 100)),
)


@settings(max_examples=300, deadline=None)
@given(max_rows=st.integers(1, 20), ops=st.lists(_op, max_size=40))
def test_the_tail_matches_a_list_of_the_newest_contiguous_rows(max_rows: int, ops: list[tuple]) -> None:
    tail = LiveTail(max_rows)
    model: list[tuple[int, TailRow]] = []  # (id, row) the tail may hold, oldest first
    next_id = 1
    newest_chunk = 0
    for op in ops:
        if op[0] == "append":
            _, receipts, gap = op
            if not receipts:
                continue
            first = next_id + gap
            rows = [_row(first + i, r) for i, r in enumerate(receipts)]
            tail.append(first, rows)
            newest_chunk = len(rows)
            if gap:
                model = []  # ids that do not run on: the tail starts again
            model.extend((first + i, row) for i, row in enumerate(rows))
            next_id = first + len(rows)
        elif op[0] == "drop":
            if model:
                upto = model[0][0] + op[1]
                tail.drop_through(upto)
                model = [(i, r) for i, r in model if i > upto]
        else:
            _, max_records, cutoff = op
            found = tail.take(max_records, cutoff)
            while model and model[0][1][3] < cutoff:
                model.pop(0)  # older rows at the front are left to the SQL path
            if not model:
                assert found is None or found[1] == []
                continue
            assert found is not None
            first_id, rows = found
            assert first_id == model[0][0]
            expected: list[TailRow] = []
            for _i, row in model[:max_records]:
                if row[3] < cutoff:
                    break
                expected.append(row)
            assert rows == expected
        # The bound: whole chunks go from the front once it is passed (the newest chunk stays,
        # however long); what remains is a suffix of the model.
        held = len(tail)
        assert held <= max(max_rows, newest_chunk)
        model = model[len(model) - held :] if held else []
        if held:
            assert tail.first_id == model[0][0]
            assert tail.end_id == model[-1][0] + 1


def test_drop_through_inside_a_chunk_keeps_the_rest() -> None:
    tail = LiveTail(100)
    tail.append(10, [_row(n, 50.0) for n in range(10, 15)])
    tail.append(15, [_row(n, 50.0) for n in range(15, 20)])
    tail.drop_through(12)
    assert (tail.first_id, tail.end_id, len(tail)) == (13, 20, 7)
    found = tail.take(4, 0.0)
    assert found is not None
    assert found[0] == 13 and [r[1] for r in found[1]] == [13.0, 14.0, 15.0, 16.0]
    tail.drop_through(99)
    assert len(tail) == 0 and tail.first_id is None


def test_chunks_older_than_the_live_window_are_let_go_while_nothing_is_taken() -> None:
    # The uplink is down: no seal takes rows, and the tail must not keep what no LIVE seal wants.
    tail = LiveTail(1_000)
    for second in range(30):
        tail.append(
            1 + second * 10, [_row(1 + second * 10 + i, float(second)) for i in range(10)], second - 10.0
        )
    assert tail.first_id == 1 + 20 * 10 - 10  # the chunks of seconds 19 … 29 remain
    assert len(tail) == 110
