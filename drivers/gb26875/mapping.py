"""From information objects to point readings: the state of one transmission device (pure).

A transmission device reports changes, not a register map: "component 42/17 of system 1/1 is
now in fire". The :class:`Mapper` keeps what it was told (each component's and system's last
status word, operation counts) and answers with the readings of the points an object touches:

- ``system`` points: one status bit of the matching systems (true if any has it); for the
  bits components also carry (fire .. delay) a system is also "in fire" while one of its
  components is, so a panel that reports only components still lights its system point;
- ``component`` points: whether any matching component has the bit, or with ``count`` how
  many do (two detectors in one zone: GB 50116 §4.1.6's AND of two);
- ``analog`` points: the latest value of a matching component, scaled (``scale``/``offset``);
- ``operation``/``uitd_operation`` points: how many such operations arrived since start, or
  for ``silence`` with ``mode: state`` whether the sounders are silenced (a reset or a new
  fire ends it, as on the panel);
- ``uitd_status`` points: a bit of the transmission device's own status;
- ``version``: ``"main.sub"``.

A reset (status bit 13 of a system, or an operation record with the reset flag) clears the
component states of that system when the device's ``reset_clears`` is on: the panel re-reports
what is still active. Bit 0 ("test") is never read as test mode unless the device's
``test_bit`` says the device uses it; a fire is never suppressed otherwise.

Each reading carries the object's own time tag as ``source_ts`` (None when the tag names no
real time); the coordinator stamps the receipt time. Nothing is dropped for its time tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from core.model import Value
from drivers.base import Reading
from drivers.gb26875.config import (
    OPERATIONS,
    STATUS_NAMES,
    UITD_STATUS_NAMES,
    Gb26875PointConfig,
    parse_set,
)
from drivers.gb26875.frame import TimeTag
from drivers.gb26875.objects import (
    AnalogValue,
    ComponentStatus,
    InfoObject,
    OperationBit,
    OperationRecord,
    SoftwareVersion,
    StatusBit,
    SystemStatus,
    UitdOperation,
    UitdStatus,
)

__all__ = ["Mapper"]

_Ranges = tuple[tuple[int, int], ...] | None
_CompKey = tuple[int, int, int, int]  # sys_type, sys_addr, comp_type, comp_addr
_SysKey = tuple[int, int]
_TEST = -1


def _hit(ranges: _Ranges, value: int) -> bool:
    if ranges is None:
        return True
    return any(lo <= value <= hi for lo, hi in ranges)


@dataclass(slots=True)
class _Rule:
    point: Gb26875PointConfig
    sys_type: _Ranges
    sys_addr: _Ranges
    comp_type: _Ranges
    comp_addr: _Ranges
    bit: int | None  # status bit, _TEST for "bit 0 clear"
    members: set[_CompKey] = field(default_factory=set)  # components with the bit
    systems: set[_SysKey] = field(default_factory=set)  # systems with the bit
    counter: int = 0
    state: bool = False
    last: Value = None

    def sys_hit(self, sys_type: int, sys_addr: int) -> bool:
        return _hit(self.sys_type, sys_type) and _hit(self.sys_addr, sys_addr)

    def comp_hit(self, key: _CompKey) -> bool:
        return self.sys_hit(key[0], key[1]) and _hit(self.comp_type, key[2]) and _hit(self.comp_addr, key[3])


class Mapper:
    """The point state of one transmission device; see the module docstring."""

    def __init__(
        self,
        points: Sequence[Gb26875PointConfig],
        *,
        utc_offset_s: float = 8 * 3600.0,
        test_bit: bool = False,
        reset_clears: bool = True,
    ) -> None:
        self._utc_offset_s = utc_offset_s
        self._test_bit = test_bit
        self._reset_clears = reset_clears
        self._rules: list[_Rule] = []
        for p in points:
            bit: int | None = None
            if p.object in ("system", "component"):
                bit = STATUS_NAMES[p.status or ""]
            elif p.object == "uitd_status":
                bit = UITD_STATUS_NAMES[p.status or ""]
            elif p.object in ("operation", "uitd_operation"):
                bit = OPERATIONS.index(p.operation or "")
            self._rules.append(
                _Rule(
                    p,
                    parse_set(p.sys_type, limit=255),
                    parse_set(p.sys_addr, limit=255),
                    parse_set(p.comp_type, limit=255),
                    parse_set(p.comp_addr, limit=0xFFFFFFFF),
                    bit,
                )
            )
        self._by_object: dict[str, list[_Rule]] = {}
        for rule in self._rules:
            self._by_object.setdefault(rule.point.object, []).append(rule)
        self._components: dict[_CompKey, int] = {}
        self._systems: dict[_SysKey, int] = {}

    # -- public --------------------------------------------------------------------------

    def snapshot(self) -> list[Reading]:
        """The current value of every point that has one: sent when the device comes online
        (the coordinator marked every point bad when it went offline)."""
        out: list[Reading] = []
        for rule in self._rules:
            obj = rule.point.object
            if obj in ("system", "component", "operation", "uitd_operation"):
                out.append(Reading(rule.point.id, self._value(rule)))
            elif rule.last is not None:
                out.append(Reading(rule.point.id, rule.last))
        return out

    def apply(self, obj: InfoObject) -> list[Reading]:
        """Readings of the points ``obj`` touches."""
        if isinstance(obj, ComponentStatus):
            return self._component(obj)
        if isinstance(obj, SystemStatus):
            return self._system(obj)
        if isinstance(obj, AnalogValue):
            return self._analog(obj)
        if isinstance(obj, OperationRecord):
            return self._operation(obj, "operation", obj.sys_type, obj.sys_addr)
        if isinstance(obj, UitdOperation):
            return self._operation(obj, "uitd_operation", None, None)
        if isinstance(obj, UitdStatus):
            return self._uitd_status(obj)
        if isinstance(obj, SoftwareVersion):
            return self._version(obj)
        return []

    # -- per object ----------------------------------------------------------------------

    def _has(self, status: int, bit: int | None) -> bool:
        if bit is None:
            return False
        if bit == _TEST:
            return not status & 1
        if not status >> bit & 1:
            return False
        # In test mode (only on devices configured to use bit 0) a status is a test, not an
        # alarm: its alarm bits count for nothing. Elsewhere bit 0 is ignored.
        return not (self._test_bit and bit != 0 and not status & 1)

    def _component(self, obj: ComponentStatus) -> list[Reading]:
        key: _CompKey = (obj.sys_type, obj.sys_addr, obj.comp_type, obj.comp_addr)
        before = self._components.get(key, 0)
        self._components[key] = obj.status
        ts = self._ts(obj.time)
        touched: list[_Rule] = []
        for rule in self._by_object.get("component", ()):
            if rule.comp_hit(key):
                self._set_member(rule, key, self._has(obj.status, rule.bit))
                touched.append(rule)
        for rule in self._by_object.get("system", ()):
            if rule.bit is not None and 0 < rule.bit <= StatusBit.DELAY and rule.sys_hit(key[0], key[1]):
                self._set_member(rule, key, self._has(obj.status, rule.bit))
                touched.append(rule)
        if self._has(obj.status, StatusBit.FIRE) and not self._has(before, StatusBit.FIRE):
            touched.extend(self._end_silence(key[0], key[1]))
        return [Reading(r.point.id, self._value(r), source_ts=ts) for r in _unique(touched)]

    def _system(self, obj: SystemStatus) -> list[Reading]:
        skey: _SysKey = (obj.sys_type, obj.sys_addr)
        before = self._systems.get(skey, 0)
        ts = self._ts(obj.time)
        touched: list[_Rule] = []
        if obj.status >> StatusBit.RESET & 1:
            touched.extend(self._reset(skey))
        self._systems[skey] = obj.status
        for rule in self._by_object.get("system", ()):
            if rule.sys_hit(*skey):
                if self._has(obj.status, rule.bit):
                    rule.systems.add(skey)
                else:
                    rule.systems.discard(skey)
                touched.append(rule)
        if self._has(obj.status, StatusBit.FIRE) and not self._has(before, StatusBit.FIRE):
            touched.extend(self._end_silence(*skey))
        return [Reading(r.point.id, self._value(r), source_ts=ts) for r in _unique(touched)]

    def _analog(self, obj: AnalogValue) -> list[Reading]:
        key: _CompKey = (obj.sys_type, obj.sys_addr, obj.comp_type, obj.comp_addr)
        out: list[Reading] = []
        for rule in self._by_object.get("analog", ()):
            at = rule.point.analog_type
            if rule.comp_hit(key) and (at is None or at == obj.analog_type):
                value = obj.value * rule.point.scale + rule.point.offset
                rule.last = value
                out.append(Reading(rule.point.id, value, source_ts=self._ts(obj.time)))
        return out

    def _operation(
        self, obj: OperationRecord | UitdOperation, kind: str, sys_type: int | None, sys_addr: int | None
    ) -> list[Reading]:
        touched: list[_Rule] = []
        if kind == "operation" and obj.flags >> OperationBit.RESET & 1 and sys_type is not None:
            touched.extend(self._reset((sys_type, sys_addr or 0)))
        for rule in self._by_object.get(kind, ()):
            if sys_type is not None and not rule.sys_hit(sys_type, sys_addr or 0):
                continue
            if rule.bit is None:
                continue
            if rule.point.mode == "state":
                if obj.flags >> OperationBit.SILENCE & 1:
                    rule.state = True
                    touched.append(rule)
                elif obj.flags >> OperationBit.RESET & 1:
                    rule.state = False
                    touched.append(rule)
            elif obj.flags >> rule.bit & 1:
                rule.counter += 1
                touched.append(rule)
        ts = self._ts(obj.time)
        return [Reading(r.point.id, self._value(r), source_ts=ts) for r in _unique(touched)]

    def _uitd_status(self, obj: UitdStatus) -> list[Reading]:
        out: list[Reading] = []
        for rule in self._by_object.get("uitd_status", ()):
            rule.last = bool(obj.flags >> (rule.bit or 0) & 1)
            out.append(Reading(rule.point.id, rule.last, source_ts=self._ts(obj.time)))
        return out

    def _version(self, obj: SoftwareVersion) -> list[Reading]:
        out: list[Reading] = []
        for rule in self._by_object.get("version", ()):
            if rule.sys_hit(obj.sys_type, obj.sys_addr):
                rule.last = f"{obj.main}.{obj.sub}"
                ts = None if obj.time is None else self._ts(obj.time)
                out.append(Reading(rule.point.id, rule.last, source_ts=ts))
        return out

    # -- state ---------------------------------------------------------------------------

    def _reset(self, skey: _SysKey) -> list[_Rule]:
        """A panel reset: its components' states are gone (it re-reports what still is)."""
        touched: list[_Rule] = []
        if self._reset_clears:
            for key in [k for k in self._components if (k[0], k[1]) == skey]:
                del self._components[key]
            for rule in self._rules:
                kept = {k for k in rule.members if (k[0], k[1]) != skey}
                if kept != rule.members:
                    rule.members = kept
                    touched.append(rule)
        for rule in self._by_object.get("operation", ()):
            if rule.point.mode == "state" and rule.state and rule.sys_hit(*skey):
                rule.state = False
                touched.append(rule)
        return touched

    def _end_silence(self, sys_type: int, sys_addr: int) -> list[_Rule]:
        """A new fire sounds again: a silenced state of that system ends."""
        touched: list[_Rule] = []
        for rule in self._by_object.get("operation", ()):
            if rule.point.mode == "state" and rule.state and rule.sys_hit(sys_type, sys_addr):
                rule.state = False
                touched.append(rule)
        return touched

    @staticmethod
    def _set_member(rule: _Rule, key: _CompKey, present: bool) -> None:
        if present:
            rule.members.add(key)
        else:
            rule.members.discard(key)

    def _value(self, rule: _Rule) -> Value:
        obj = rule.point.object
        if obj == "component":
            return len(rule.members) if rule.point.count else bool(rule.members)
        if obj == "system":
            return bool(rule.systems) or bool(rule.members)
        if obj in ("operation", "uitd_operation"):
            return rule.state if rule.point.mode == "state" else rule.counter
        return rule.last

    def _ts(self, tag: TimeTag) -> float | None:
        return tag.to_epoch(self._utc_offset_s)


def _unique(rules: list[_Rule]) -> list[_Rule]:
    seen: set[int] = set()
    out: list[_Rule] = []
    for rule in rules:
        if id(rule) not in seen:
            seen.add(id(rule))
            out.append(rule)
    return out
