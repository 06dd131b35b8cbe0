"""A command's state, derived when it is read. Pure.

The gateway's ``command.result`` event is the only authority on what happened; central's ledger
only remembers what it sent. So the state is computed from both and the clock rather than
stored and updated: a result that arrives late (the gateway was offline and its event lane
caught up) turns an ``expired`` command into what really happened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["STATES", "TERMINAL", "Outcome", "outcome_of", "state_of"]

# pending: sent, no result yet, still within not_after; expired: no result and past it;
# unsent: the broker never took it (central was not connected), so no gateway can have it.
STATES: Final = ("pending", "done", "refused", "failed", "expired", "unsent")
TERMINAL: Final = frozenset({"done", "refused", "failed"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a gateway reported for one command (from its ``command.result`` event)."""

    cid: str
    status: str
    detail: str
    value: Any
    reported_at: float


def outcome_of(data: Any, ts: float) -> Outcome | None:
    """The outcome an event's data reports, or None when it is not a well-formed result."""
    if not isinstance(data, dict):
        return None
    cid, status, detail = data.get("cid"), data.get("status"), data.get("detail", "")
    if not isinstance(cid, str) or not cid or status not in TERMINAL:
        return None
    if not isinstance(detail, str):
        detail = str(detail)
    return Outcome(cid, str(status), detail[:512], data.get("value"), ts if math.isfinite(ts) else 0.0)


def state_of(*, status: str | None, unsent: bool, not_after: float, now: float) -> str:
    """``status`` is the gateway's reported one (None: no result yet)."""
    if status is not None:
        return status
    if unsent:
        return "unsent"
    return "expired" if now > not_after else "pending"
