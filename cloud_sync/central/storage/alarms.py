"""Alarm lifecycle materialised at ingest: a gateway's ``alarm.*`` events → one row per episode.

Pure: :func:`alarm_change` reads one event record and says what the alarm's row becomes; both
storage backends apply it inside the batch's transaction. An episode starts when an alarm that
has no open row becomes active and ends (``closed``) when the gateway reports it back to normal
and acknowledged; the gateway's ISA-18.2 state names map onto the console's five states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from cloud_sync.ports import EventRow

__all__ = ["ALARM_STATES", "AlarmChange", "AlarmStateName", "alarm_change"]

AlarmStateName = Literal["active_unacked", "active_acked", "cleared_unacked", "closed", "shelved"]
ALARM_STATES: Final[tuple[str, ...]] = (
    "active_unacked",
    "active_acked",
    "cleared_unacked",
    "closed",
    "shelved",
)

# The gateway's ISA-18.2 state (rules/alarm_state.py ``Isa``) → the console's state.
_STATE_OF: Final[dict[str, AlarmStateName]] = {
    "normal": "closed",
    "unacknowledged": "active_unacked",
    "acknowledged": "active_acked",
    "returned_unacknowledged": "cleared_unacked",
    # Back to normal but held until an operator resets the latch: still needs attention.
    "latched": "cleared_unacked",
    "shelved": "shelved",
    "suppressed": "shelved",
    "out_of_service": "shelved",
}


@dataclass(frozen=True, slots=True)
class AlarmChange:
    key: str  # the gateway's alarm key (the event's source)
    state: AlarmStateName
    at: float
    point_id: str | None
    alarm_class: str
    priority: str
    message: str
    acked_by: str | None  # set when this change is an acknowledgement
    cleared: bool  # the condition returned to normal with this change


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def alarm_change(record: EventRow) -> AlarmChange | None:
    """What an ``alarm.*`` event does to its alarm's row; None for any other event or bad data."""
    if not record.kind.startswith("alarm.") or not isinstance(record.data, dict):
        return None
    data = record.data
    state = _STATE_OF.get(_text(data.get("to")))
    if state is None:
        return None
    at = data.get("at")
    when = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else record.ts
    message = data.get("message")
    if isinstance(message, dict):
        text = _text(message.get("en")) or _text(message.get("zh"))
    else:
        text = _text(message)
    transition = _text(data.get("transition"), record.kind.removeprefix("alarm."))
    point = data.get("point")
    return AlarmChange(
        key=record.source,
        state=state,
        at=when,
        point_id=point if isinstance(point, str) else None,
        alarm_class=_text(data.get("class")) or "other",
        priority=_text(data.get("priority")) or "unknown",
        message=text[:500],
        acked_by=_text(data.get("by"), "unknown")[:200] if transition in ("acked", "reset") else None,
        cleared=transition in ("returned", "cleared") or state == "closed",
    )
