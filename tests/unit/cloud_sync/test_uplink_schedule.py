"""The uplink's pure bookkeeping: window accounting, acks, resend timers, backoff."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.ports import Lane
from cloud_sync.uplink_schedule import SEND_ORDER, LaneSchedule, backoff_delay_s


def schedule(window: int = 4, ack_timeout_s: float = 10.0, grace_s: float = 1.0) -> LaneSchedule:
    return LaneSchedule(Lane.TELEMETRY, window=window, ack_timeout_s=ack_timeout_s, missing_grace_s=grace_s)


def test_events_go_before_telemetry() -> None:
    assert SEND_ORDER == (Lane.EVENT, Lane.TELEMETRY)


def test_window_fills_and_acks_free_it() -> None:
    s = schedule(window=3)
    for seq in (1, 2, 3):
        s.on_sent(seq, now=0.0)
    assert s.free_slots() == 0
    assert s.cursor == 3
    with pytest.raises(RuntimeError):
        s.on_sent(4, now=0.0)
    outcome = s.on_ack(2, (), now=1.0)
    assert outcome.advanced_to == 2
    assert s.free_slots() == 2
    assert s.in_flight_seqs() == [3]


def test_stale_or_repeated_ack_deletes_nothing() -> None:
    s = schedule()
    s.on_sent(1, now=0.0)
    s.on_sent(2, now=0.0)
    assert s.on_ack(2, (), now=1.0).advanced_to == 2
    assert s.on_ack(2, (), now=2.0).advanced_to is None
    assert s.on_ack(1, (), now=3.0).advanced_to is None
    assert s.acked == 2


def test_resend_falls_due_after_the_ack_timeout_and_resets_on_resend() -> None:
    s = schedule(ack_timeout_s=10.0)
    s.on_sent(1, now=0.0)
    s.on_sent(2, now=4.0)
    assert s.due_resends(now=9.9) == []
    assert s.next_deadline() == 10.0
    assert s.due_resends(now=10.0) == [1]
    s.on_sent(1, now=10.0)  # the resend
    assert s.due_resends(now=14.0) == [2]
    assert s.next_deadline() == 14.0
    assert s.in_flight == 2  # a resend does not take another slot


def test_missing_ranges_resend_only_what_was_sent_and_is_not_fresh() -> None:
    s = schedule(window=8, grace_s=1.0)
    for seq in (1, 2, 3, 4):
        s.on_sent(seq, now=0.0)
    s.on_sent(5, now=5.0)
    outcome = s.on_ack(1, [(2, 3), (5, 7)], now=5.5)
    assert outcome.advanced_to == 1
    # 2 and 3 were sent long ago; 5 is still travelling; 6 and 7 were never sent (they go in order).
    assert outcome.resend == (2, 3)


def test_refused_publish_stays_in_flight_and_is_retried_after_the_timeout() -> None:
    s = schedule(ack_timeout_s=5.0)
    s.on_sent(1, now=0.0)
    s.on_refused(1, now=1.0)
    assert s.refused_count() == 1
    assert s.in_flight == 1
    assert s.due_resends(now=5.9) == []
    assert s.due_resends(now=6.0) == [1]
    s.on_sent(1, now=6.0)
    assert s.refused_count() == 0


def test_new_session_resends_everything_unacknowledged() -> None:
    s = schedule()
    for seq in (1, 2, 3):
        s.on_sent(seq, now=0.0)
    s.on_ack(1, (), now=0.5)
    s.new_session()
    assert s.in_flight == 0
    assert s.cursor == 1  # the next fill asks the store for everything after the ack


def test_sending_an_already_acknowledged_batch_is_not_tracked() -> None:
    s = schedule()
    s.on_ack(5, (), now=0.0)
    s.on_sent(3, now=1.0)
    assert s.in_flight == 0


@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("send"), st.integers(0, 3)),
            st.tuples(st.just("ack"), st.integers(0, 40)),
            st.tuples(st.just("tick"), st.floats(0, 20)),
        ),
        max_size=80,
    )
)
def test_window_is_never_exceeded_and_acked_never_goes_back(ops: list[tuple[str, float]]) -> None:
    s = schedule(window=5, ack_timeout_s=3.0)
    now = 0.0
    last_acked = 0
    for op, arg in ops:
        if op == "send":
            for _ in range(int(arg)):
                if s.free_slots() == 0:
                    break
                s.on_sent(s.cursor + 1, now)
            for seq in s.due_resends(now):
                s.on_sent(seq, now)
        elif op == "ack":
            s.on_ack(min(int(arg), s.cursor), (), now)
        else:
            now += arg
        assert s.in_flight <= 5
        assert s.acked >= last_acked
        assert all(seq > s.acked for seq in s.in_flight_seqs())
        last_acked = s.acked


def test_backoff_is_capped_and_jittered() -> None:
    delays = [backoff_delay_s(a, initial_s=0.5, max_s=30.0, jitter=0.999) for a in range(12)]
    assert delays[0] == pytest.approx(0.4995)
    assert delays == sorted(delays)
    assert max(delays) <= 30.0
    assert backoff_delay_s(50, initial_s=0.5, max_s=30.0, jitter=0.5) == pytest.approx(15.0)
    # A draw near zero still waits a little: no hot reconnect loop.
    assert backoff_delay_s(3, initial_s=0.5, max_s=30.0, jitter=0.0) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        backoff_delay_s(-1, initial_s=0.5, max_s=30.0, jitter=0.5)
