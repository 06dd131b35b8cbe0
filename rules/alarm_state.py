"""The ISA-18.2 alarm state machine, as pure functions: (state, input) → (state, events).

An alarm's state is a few independent facts: is the process condition ``active``, is an
annunciation ``unacked``, is a latch ``held``, and the masks (shelved until a time, suppressed by
design, out of service). The ISA state names are derived from those facts (``AlarmState.name``).

While a mask is on, process changes update ``active`` silently: nothing is annunciated, so
nothing is emitted. When the mask is lifted, a condition that is still active and was never
annunciated is raised then. A condition raises once per activation (R2.3): ``alarm.raised`` is
emitted only on an inactive → active edge.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

from core.model import Event, Value

__all__ = [
    "Ack",
    "AlarmInfo",
    "AlarmState",
    "Input",
    "Isa",
    "ProcessChange",
    "RemoveFromService",
    "Reset",
    "ReturnToService",
    "Shelve",
    "Suppress",
    "Tick",
    "Unshelve",
    "Unsuppress",
    "step",
]

SYSTEM = "system"


class Isa(enum.StrEnum):
    NORMAL = "normal"
    UNACK = "unacknowledged"
    ACKED = "acknowledged"
    RTN_UNACK = "returned_unacknowledged"
    LATCHED = "latched"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"
    OUT_OF_SERVICE = "out_of_service"


@dataclass(frozen=True, slots=True)
class AlarmInfo:
    """What does not change: who the alarm is and how it behaves."""

    key: str
    point_id: str | None
    priority: str
    klass: str | None
    message_zh: str
    message_en: str
    ack_required: bool = True
    latched: bool = False
    realarm_s: float | None = None
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmState:
    active: bool = False
    unacked: bool = False
    held: bool = False  # latch held: stays annunciated until an operator resets it
    annunciated: bool = False  # this activation was raised (not hidden by a mask)
    shelved_until: float | None = None
    suppressed: bool = False
    out_of_service: bool = False
    raised_at: float | None = None
    last_annunciated_at: float | None = None
    acked_at: float | None = None  # the re-alarm time runs from the acknowledgement
    value: Value = None

    @property
    def name(self) -> Isa:
        if self.out_of_service:
            return Isa.OUT_OF_SERVICE
        if self.shelved_until is not None:
            return Isa.SHELVED
        if self.suppressed:
            return Isa.SUPPRESSED
        if self.active:
            return Isa.UNACK if self.unacked else Isa.ACKED
        if self.held:
            return Isa.LATCHED
        return Isa.RTN_UNACK if self.unacked else Isa.NORMAL

    @property
    def masked(self) -> bool:
        return self.out_of_service or self.shelved_until is not None or self.suppressed

    @property
    def standing(self) -> bool:
        """Counts as 'in alarm' for conditions and linkage: active or latched, and in service."""
        return (self.active or self.held) and not self.out_of_service

    def to_dict(self) -> dict[str, Any]:
        # every field is a scalar: a flat copy, several times faster than dataclasses.asdict
        # (the daemon snapshots the whole engine after each batch of transitions)
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlarmState:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# -- inputs ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProcessChange:
    active: bool
    value: Value = None


@dataclass(frozen=True, slots=True)
class Ack:
    by: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Reset:
    by: str


@dataclass(frozen=True, slots=True)
class Shelve:
    until: float
    by: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Unshelve:
    by: str


@dataclass(frozen=True, slots=True)
class Suppress:
    by: str  # the parent alarm's key


@dataclass(frozen=True, slots=True)
class Unsuppress:
    by: str


@dataclass(frozen=True, slots=True)
class RemoveFromService:
    by: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReturnToService:
    by: str


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: shelving may expire, a standing acked alarm may re-alarm."""


Input = (
    ProcessChange
    | Ack
    | Reset
    | Shelve
    | Unshelve
    | Suppress
    | Unsuppress
    | RemoveFromService
    | ReturnToService
    | Tick
)

_Result = tuple[AlarmState, list[Event]]


def step(info: AlarmInfo, state: AlarmState, inp: Input, now: float) -> _Result:
    """Apply one input. Returns the new state and the transition events (possibly none)."""
    if isinstance(inp, ProcessChange):
        return _process(info, state, inp, now)
    if isinstance(inp, Ack):
        return _ack(info, state, inp, now)
    if isinstance(inp, Reset):
        return _reset(info, state, inp, now)
    if isinstance(inp, Tick):
        return _tick(info, state, now)
    return _mask(info, state, inp, now)


def _event(
    info: AlarmInfo, kind: str, before: AlarmState, after: AlarmState, now: float, by: str, **extra: Any
) -> Event:
    data: dict[str, Any] = {
        "transition": kind,
        "from": before.name.value,
        "to": after.name.value,
        "by": by,
        "at": now,
        "priority": info.priority,
        "class": info.klass,
        "message": {"zh": info.message_zh, "en": info.message_en},
        "value": after.value,
        "point": info.point_id,
        "zone": info.zone,
    }
    data.update(extra)
    return Event(f"alarm.{kind}", info.key, now, data)


def _process(info: AlarmInfo, state: AlarmState, inp: ProcessChange, now: float) -> _Result:
    if inp.active == state.active:
        if inp.value != state.value:
            return dataclasses.replace(state, value=inp.value), []
        return state, []
    if state.masked:
        # Hidden while masked; ``annunciated`` stays false so that lifting the mask raises it.
        new = dataclasses.replace(
            state, active=inp.active, value=inp.value, annunciated=state.annunciated and inp.active
        )
        return new, []
    if inp.active:
        new = dataclasses.replace(
            state,
            active=True,
            unacked=info.ack_required,
            acked_at=None if info.ack_required else now,
            held=info.latched,
            annunciated=True,
            raised_at=now,
            last_annunciated_at=now,
            value=inp.value,
        )
        return new, [_event(info, "raised", state, new, now, SYSTEM)]
    new = dataclasses.replace(state, active=False, annunciated=False, value=inp.value)
    kind = "cleared" if new.name is Isa.NORMAL else "returned"
    return new, [_event(info, kind, state, new, now, SYSTEM)]


def _ack(info: AlarmInfo, state: AlarmState, inp: Ack, now: float) -> _Result:
    if not state.unacked or state.shelved_until is not None or state.out_of_service:
        return state, []  # nothing to acknowledge (or hidden from the operator): no event
    new = dataclasses.replace(state, unacked=False, acked_at=now)
    return new, [_event(info, "acked", state, new, now, inp.by, comment=inp.comment)]


def _reset(info: AlarmInfo, state: AlarmState, inp: Reset, now: float) -> _Result:
    # A latch can only be reset once the process is back to normal; resetting also acknowledges.
    if not state.held or state.active or state.out_of_service:
        return state, []
    new = dataclasses.replace(state, held=False, unacked=False)
    return new, [_event(info, "reset", state, new, now, inp.by)]


def _tick(info: AlarmInfo, state: AlarmState, now: float) -> _Result:
    if state.shelved_until is not None and now >= state.shelved_until:
        return _unmask(info, state, dataclasses.replace(state, shelved_until=None), "unshelved", SYSTEM, now)
    if (
        info.realarm_s is not None
        and state.name is Isa.ACKED
        and state.acked_at is not None
        and now - state.acked_at >= info.realarm_s
    ):
        new = dataclasses.replace(state, unacked=True, last_annunciated_at=now)
        return new, [_event(info, "realarm", state, new, now, SYSTEM)]
    return state, []


def _mask(info: AlarmInfo, state: AlarmState, inp: Input, now: float) -> _Result:
    if isinstance(inp, Shelve):
        if state.out_of_service or inp.until <= now:
            return state, []
        new = dataclasses.replace(state, shelved_until=inp.until)
        return new, [_event(info, "shelved", state, new, now, inp.by, until=inp.until, reason=inp.reason)]
    if isinstance(inp, Unshelve):
        if state.shelved_until is None:
            return state, []
        return _unmask(info, state, dataclasses.replace(state, shelved_until=None), "unshelved", inp.by, now)
    if isinstance(inp, Suppress):
        if state.suppressed:
            return state, []
        new = dataclasses.replace(state, suppressed=True)
        return new, [_event(info, "suppressed", state, new, now, inp.by)]
    if isinstance(inp, Unsuppress):
        if not state.suppressed:
            return state, []
        return _unmask(info, state, dataclasses.replace(state, suppressed=False), "unsuppressed", inp.by, now)
    if isinstance(inp, RemoveFromService):
        if state.out_of_service:
            return state, []
        new = dataclasses.replace(state, out_of_service=True, shelved_until=None)
        return new, [_event(info, "out_of_service", state, new, now, inp.by, reason=inp.reason)]
    assert isinstance(inp, ReturnToService)
    if not state.out_of_service:
        return state, []
    return _unmask(info, state, dataclasses.replace(state, out_of_service=False), "in_service", inp.by, now)


def _unmask(info: AlarmInfo, before: AlarmState, new: AlarmState, kind: str, by: str, now: float) -> _Result:
    if new.masked:
        return new, [_event(info, kind, before, new, now, by)]
    if new.active and not new.annunciated:
        new = dataclasses.replace(
            new,
            unacked=info.ack_required,
            acked_at=None if info.ack_required else now,
            held=new.held or info.latched,
            annunciated=True,
            raised_at=now,
            last_annunciated_at=now,
        )
        return new, [_event(info, kind, before, new, now, by, raised=True)]
    return new, [_event(info, kind, before, new, now, by, raised=False)]
