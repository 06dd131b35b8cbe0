"""Per-source throttling of sign-in and setup attempts (issue 17, item 3).

Each client address gets five free failures (a locked account's three and a retry, or a few
typos by several people at one PC); after that every further failure doubles the
time before that address may try again (1 s, 2 s, 4 s … up to ``max_s``), and an address may
have only one attempt in flight at a time. A script on one LAN host therefore slows down only
itself: it cannot queue up password hashes in front of the duty officer's sign-in from another
PC, and it gets a handful of guesses a minute. A success, or ``forget_s`` without failures,
clears the address. The table is in memory and bounded (the oldest addresses are dropped).

Times are monotonic seconds from the caller's clock, so tests can move them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["LoginThrottle"]


@dataclass(slots=True)
class _Source:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0
    in_flight: bool = False


class LoginThrottle:
    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_s: float = 1.0,
        max_s: float = 60.0,
        forget_s: float = 900.0,
        max_sources: int = 4096,
    ) -> None:
        self.free_failures = free_failures
        self.base_s = base_s
        self.max_s = max_s
        self.forget_s = forget_s
        self.max_sources = max_sources
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self.refused = 0  # attempts answered 429 (for the health page and tests)

    def admit(self, source: str, now: float) -> float:
        """0 when ``source`` may try now (it is then in flight until :meth:`done`), else the
        seconds to wait."""
        wait_s = self.retry_after(source, now)
        if wait_s > 0:
            self.refused += 1
            return wait_s
        entry = self._sources.get(source)
        if entry is None:
            entry = self._sources[source] = _Source()
            while len(self._sources) > self.max_sources:
                oldest = next(iter(self._sources))
                if self._sources[oldest].in_flight:
                    break  # never forget an attempt that is running
                del self._sources[oldest]
        self._sources.move_to_end(source)
        entry.in_flight = True
        return 0.0

    def retry_after(self, source: str, now: float) -> float:
        """The seconds ``source`` must wait before its next attempt (0: it may try now)."""
        entry = self._sources.get(source)
        if entry is None:
            return 0.0
        if entry.failures and now - entry.last_failure > self.forget_s:
            entry.failures, entry.blocked_until = 0, 0.0
        if entry.in_flight:
            return 1.0
        return max(0.0, entry.blocked_until - now)

    def done(self, source: str, now: float, *, failed: bool) -> None:
        entry = self._sources.get(source)
        if entry is None:
            return
        entry.in_flight = False
        if not failed:
            entry.failures, entry.blocked_until = 0, 0.0
            return
        entry.failures += 1
        entry.last_failure = now
        over = entry.failures - self.free_failures
        if over > 0:
            entry.blocked_until = now + min(self.max_s, self.base_s * 2.0 ** (over - 1))

    def failures(self, source: str) -> int:
        entry = self._sources.get(source)
        return 0 if entry is None else entry.failures
