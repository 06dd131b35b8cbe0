"""The uplink's bookkeeping, pure: which batches are in flight, what is acknowledged, what to resend.

No I/O and no clock reads: every method that depends on time takes ``now`` (monotonic seconds).

Per lane, a batch is *in flight* from its first publish until central's end-to-end ack covers it;
the in-flight window bounds how many batches of one lane are in that state at once (the event lane
has its own window, so a telemetry backlog can never hold back an alarm). A batch whose ack has not
come ``ack_timeout_s`` after its last send is due for a resend (byte-identical; central dedupes).
A publish the broker refused (failure reason code) is not delivered: it stays in flight and is
retried after ``ack_timeout_s`` like a lost one. Ranges central reports ``missing`` are resent at
once, unless the batch was sent less than ``missing_grace_s`` ago (it may simply still be on its
way: acks race sends).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from cloud_sync.ports import Lane

__all__ = [
    "BUSY_REASON_CODES",
    "SEND_ORDER",
    "AckOutcome",
    "Clock",
    "LaneSchedule",
    "ReconnectPolicy",
    "backoff_delay_s",
]

# Events first, then telemetry (within telemetry: live before backlog, decided at seal time).
SEND_ORDER: tuple[Lane, ...] = (Lane.EVENT, Lane.TELEMETRY)


class Clock(Protocol):
    """Same shape as ``core.model.Clock`` (cloud_sync may not import edge)."""

    def wall(self) -> float: ...

    def monotonic(self) -> float: ...


@dataclass(slots=True)
class _InFlight:
    sent_at: float
    sends: int = 1
    refused: bool = False


@dataclass(frozen=True, slots=True)
class AckOutcome:
    advanced_to: int | None  # new acked seq to delete up to, or None if nothing new
    resend: tuple[int, ...]  # seqs to publish again now


@dataclass(slots=True)
class LaneSchedule:
    lane: Lane
    window: int
    ack_timeout_s: float
    missing_grace_s: float = 1.0
    acked: int = 0  # highest contiguous seq central has confirmed
    cursor: int = 0  # highest seq published at least once in this session
    _in_flight: dict[int, _InFlight] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError("the in-flight window must be at least 1")

    # -- window ------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def free_slots(self) -> int:
        return max(0, self.window - len(self._in_flight))

    def in_flight_seqs(self) -> list[int]:
        return sorted(self._in_flight)

    # -- events ------------------------------------------------------------------------------
    def on_sent(self, seq: int, now: float) -> None:
        """A publish of ``seq`` was handed to the client (first send or resend)."""
        entry = self._in_flight.get(seq)
        if entry is None:
            if seq <= self.acked:
                return  # acknowledged meanwhile; nothing to track
            if len(self._in_flight) >= self.window:
                raise RuntimeError(f"{self.lane}: window of {self.window} exceeded by seq {seq}")
            self._in_flight[seq] = _InFlight(sent_at=now)
        else:
            entry.sent_at = now
            entry.sends += 1
            entry.refused = False
        self.cursor = max(self.cursor, seq)

    def on_refused(self, seq: int, now: float) -> None:
        """The broker refused the publish: not delivered; retry after the ack timeout."""
        entry = self._in_flight.get(seq)
        if entry is not None:
            entry.refused = True
            entry.sent_at = now

    def on_ack(self, acked: int, missing: Iterable[tuple[int, int]], now: float) -> AckOutcome:
        advanced: int | None = None
        if acked > self.acked:
            self.acked = acked
            advanced = acked
            for seq in [s for s in self._in_flight if s <= acked]:
                del self._in_flight[seq]
        resend: list[int] = []
        for lo, hi in missing:
            for seq in range(max(lo, self.acked + 1), hi + 1):
                entry = self._in_flight.get(seq)
                # Unsent seqs will go out in order anyway; fresh sends may still be travelling.
                if entry is not None and now - entry.sent_at >= self.missing_grace_s:
                    resend.append(seq)
        return AckOutcome(advanced_to=advanced, resend=tuple(resend))

    def due_resends(self, now: float) -> list[int]:
        return sorted(s for s, e in self._in_flight.items() if now - e.sent_at >= self.ack_timeout_s)

    def next_deadline(self) -> float | None:
        """Monotonic time at which the earliest resend falls due, if anything is in flight."""
        if not self._in_flight:
            return None
        return min(e.sent_at for e in self._in_flight.values()) + self.ack_timeout_s

    def new_session(self) -> None:
        """After a reconnect everything unacknowledged is sent again from the store."""
        self._in_flight.clear()
        self.cursor = self.acked

    def refused_count(self) -> int:
        return sum(1 for e in self._in_flight.values() if e.refused)


def backoff_delay_s(attempt: int, *, initial_s: float, max_s: float, jitter: float) -> float:
    """Capped exponential backoff with "full jitter": uniform in [0, min(max, initial·2^attempt)].

    ``jitter`` is a number in [0, 1) from the caller's random source (injected for tests). Full
    jitter keeps a fleet of gateways that lost the broker together from reconnecting in step.
    A floor of a tenth of ``initial_s`` avoids a hot loop when the draw is close to zero.
    """
    if attempt < 0:
        raise ValueError("attempt counts from 0")
    ceiling = min(max_s, initial_s * float(2 ** min(attempt, 30)))
    return max(initial_s / 10, ceiling * jitter)


# CONNACK reason codes by which a broker says it is overloaded: back off slowly at once.
# 0x88 server unavailable, 0x89 server busy, 0x97 quota exceeded, 0x9F connection rate exceeded.
BUSY_REASON_CODES: frozenset[int] = frozenset({0x88, 0x89, 0x97, 0x9F})


@dataclass(slots=True)
class ReconnectPolicy:
    """How long to wait before the next connection attempt. Pure: jitter is passed in.

    Two caps. While the broker is unreachable (TCP refused, timeouts, a session that dropped)
    reconnecting is cheap for it, and what matters is to be back within a few seconds of its
    return, so delays stay under ``max_s`` (full jitter spreads a fleet over that interval).
    When the broker answers but refuses us (bad credentials, not authorised, a banned client id)
    retrying soon will not help and costs it a password hash each time: after
    ``slow_after`` consecutive refusals the cap becomes ``refused_max_s``. A broker that says
    it is busy gets the slow cap at once.
    """

    initial_s: float = 0.5
    max_s: float = 4.0
    refused_max_s: float = 60.0
    slow_after: int = 5
    attempt: int = 0
    refusals: int = 0

    def _delay(self, jitter: float) -> float:
        cap = self.refused_max_s if self.refusals >= self.slow_after else self.max_s
        delay = backoff_delay_s(self.attempt, initial_s=self.initial_s, max_s=cap, jitter=jitter)
        self.attempt += 1
        return delay

    def connect_failed(self, *, reason_code: int | None, jitter: float) -> float:
        """A connection attempt failed; ``reason_code`` is the CONNACK's when the broker refused."""
        if reason_code is None:
            self.refusals = 0  # unreachable, not refusing: the fast cap applies
        elif reason_code in BUSY_REASON_CODES:
            self.refusals = max(self.refusals + 1, self.slow_after)
        else:
            self.refusals += 1
        return self._delay(jitter)

    def session_ended(self, *, stable: bool, jitter: float) -> float:
        """A session ended; a stable one (it lasted) starts the backoff afresh."""
        self.refusals = 0
        if stable:
            self.attempt = 0
        return self._delay(jitter)
