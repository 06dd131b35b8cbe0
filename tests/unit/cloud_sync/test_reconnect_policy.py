"""The uplink's reconnect policy: a low cap while the broker is away, a slow one only for refusals."""

from __future__ import annotations

from cloud_sync.uplink_schedule import ReconnectPolicy

WORST = 0.999  # the largest jitter draw: the longest delay the policy can choose


def test_an_unreachable_broker_never_makes_the_gateway_wait_long() -> None:
    """The outage that grew the backoff to 27 s: after any number of failed connects the next
    try is at most the fast cap away (4 s by default)."""
    policy = ReconnectPolicy()
    delays = [policy.connect_failed(reason_code=None, jitter=WORST) for _ in range(200)]
    assert max(delays) <= 4.0
    assert delays[:4] == sorted(delays[:4])  # still exponential at first (0.5, 1, 2, 4)


def test_jitter_spreads_a_fleet_over_the_interval() -> None:
    policy = ReconnectPolicy()
    for _ in range(10):
        policy.connect_failed(reason_code=None, jitter=0.5)
    low = ReconnectPolicy(attempt=10).connect_failed(reason_code=None, jitter=0.0)
    high = ReconnectPolicy(attempt=10).connect_failed(reason_code=None, jitter=WORST)
    assert low < 0.1 < 3.9 < high <= 4.0


def test_repeated_refusals_slow_down_and_a_reachable_success_resets() -> None:
    policy = ReconnectPolicy()
    fast = [policy.connect_failed(reason_code=0x86, jitter=WORST) for _ in range(4)]
    assert max(fast) <= 4.0  # a few refusals: maybe a password being rolled out, keep trying
    slow = [policy.connect_failed(reason_code=0x86, jitter=WORST) for _ in range(10)]
    assert slow[-1] > 30.0 and max(slow) <= 60.0
    # The broker goes away (a restart): back to the fast cap at once.
    assert policy.connect_failed(reason_code=None, jitter=WORST) <= 4.0
    # A stable session starts from the beginning.
    policy.connect_failed(reason_code=0x86, jitter=WORST)
    assert policy.session_ended(stable=True, jitter=WORST) <= 0.5


def test_a_busy_broker_gets_the_slow_cap_at_once() -> None:
    policy = ReconnectPolicy(attempt=8)
    assert policy.connect_failed(reason_code=0x89, jitter=WORST) > 30.0


def test_sessions_that_die_at_once_back_off() -> None:
    policy = ReconnectPolicy()
    delays = [policy.session_ended(stable=False, jitter=WORST) for _ in range(6)]
    assert delays[0] < delays[3] and max(delays) <= 4.0
