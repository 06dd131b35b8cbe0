"""Pure BACnet tables and planning: object types and properties by name or number, what a
status-flags/reliability pair means for quality, and how many properties fit in one
ReadPropertyMultiple for a device's maximum APDU.

Nothing here imports bacpypes3, so the site loader and the unit tests can use it freely.
Numbers are those of ANSI/ASHRAE 135 (clause 21).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from core.model import Quality, Reason

__all__ = [
    "COMMANDABLE_TYPES",
    "OBJECT_TYPES",
    "PROPERTIES",
    "Health",
    "ReadBudget",
    "chunk",
    "default_value_type",
    "health_of",
    "object_type_name",
    "property_name",
]

OBJECT_TYPES: dict[str, int] = {
    "analog-input": 0,
    "analog-output": 1,
    "analog-value": 2,
    "binary-input": 3,
    "binary-output": 4,
    "binary-value": 5,
    "calendar": 6,
    "command": 7,
    "device": 8,
    "event-enrollment": 9,
    "file": 10,
    "group": 11,
    "loop": 12,
    "multi-state-input": 13,
    "multi-state-output": 14,
    "notification-class": 15,
    "program": 16,
    "schedule": 17,
    "averaging": 18,
    "multi-state-value": 19,
    "trend-log": 20,
    "life-safety-point": 21,
    "life-safety-zone": 22,
    "accumulator": 23,
    "pulse-converter": 24,
    "large-analog-value": 46,
    "integer-value": 45,
    "positive-integer-value": 48,
}
_TYPE_NAMES = {number: name for name, number in OBJECT_TYPES.items()}

PROPERTIES: dict[str, int] = {
    "cov-increment": 22,
    "description": 28,
    "event-state": 36,
    "max-apdu-length-accepted": 62,
    "model-name": 70,
    "number-of-states": 74,
    "object-identifier": 75,
    "object-list": 76,
    "object-name": 77,
    "object-type": 79,
    "out-of-service": 81,
    "present-value": 85,
    "priority-array": 87,
    "reliability": 103,
    "relinquish-default": 104,
    "segmentation-supported": 107,
    "state-text": 110,
    "status-flags": 111,
    "system-status": 112,
    "units": 117,
    "vendor-name": 121,
    "active-text": 4,
    "inactive-text": 46,
}
_PROPERTY_NAMES = {number: name for name, number in PROPERTIES.items()}

# Output objects always carry a priority array; value objects may (clause 19.2).
COMMANDABLE_TYPES = frozenset({"analog-output", "binary-output", "multi-state-output"})
_ANALOG = frozenset({"analog-input", "analog-output", "analog-value", "large-analog-value"})
_BINARY = frozenset({"binary-input", "binary-output", "binary-value"})
_MULTI = frozenset({"multi-state-input", "multi-state-output", "multi-state-value"})


def object_type_name(value: str | int) -> str:
    """``"analogInput"``, ``"analog-input"``, ``"AI"``-free canonical name, or the number as text
    for a type this table does not name (a proprietary type 128+). Raises ``ValueError``."""
    if isinstance(value, int):
        if not 0 <= value <= 1023:
            raise ValueError(f"object type {value} is outside 0..1023")
        return _TYPE_NAMES.get(value, str(value))
    text = value.strip()
    if text.isdigit():
        return object_type_name(int(text))
    canonical = _hyphenate(text)
    if canonical not in OBJECT_TYPES:
        known = ", ".join(sorted(OBJECT_TYPES))
        raise ValueError(f"unknown object type {value!r} (a number, or one of: {known})")
    return canonical


def property_name(value: str | int) -> str:
    """Canonical hyphenated property name, or the number as text for one not in the table."""
    if isinstance(value, int):
        if not 0 <= value <= 4194303:
            raise ValueError(f"property {value} is outside 0..4194303")
        return _PROPERTY_NAMES.get(value, str(value))
    text = value.strip()
    if text.isdigit():
        return property_name(int(text))
    canonical = _hyphenate(text)
    if not canonical.replace("-", "").isalnum():
        raise ValueError(f"property {value!r} is not a name like 'present-value' or a number")
    return canonical


def _hyphenate(text: str) -> str:
    """``analogInput`` → ``analog-input``; ``analog_input`` → ``analog-input``."""
    out: list[str] = []
    for ch in text.replace("_", "-"):
        if ch.isupper():
            if out and out[-1] != "-":
                out.append("-")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def default_value_type(object_type: str) -> str:
    """What a present-value of this object type becomes: bool, float or enum."""
    if object_type in _BINARY:
        return "bool"
    if object_type in _MULTI:
        return "enum"
    if object_type in _ANALOG:
        return "float"
    return "int"


@dataclass(frozen=True, slots=True)
class Health:
    """Quality of a value from its object's status-flags, reliability and units."""

    quality: Quality
    reason: Reason
    why: str = ""


GOOD = Health(Quality.GOOD, Reason.NONE)


def health_of(status_flags: Sequence[int] | None, reliability: str | None = None) -> Health:
    """BACnet status-flags are (in-alarm, fault, overridden, out-of-service).

    A fault (or a reliability other than no-fault-detected) makes the value bad: the device
    says it cannot be trusted. Out of service means the value is not the process's but was set
    by hand: uncertain. In-alarm and overridden describe a real value: good.
    """
    if reliability is not None and reliability not in ("no-fault-detected", "0"):
        return Health(Quality.BAD, Reason.DEVICE_ERROR, f"reliability {reliability}")
    if status_flags is None:
        return GOOD
    flags = list(status_flags) + [0, 0, 0, 0]
    if flags[1]:
        return Health(Quality.BAD, Reason.DEVICE_ERROR, "fault")
    if flags[3]:
        return Health(Quality.UNCERTAIN, Reason.OUT_OF_SERVICE, "out-of-service")
    return GOOD


@dataclass(frozen=True, slots=True)
class ReadBudget:
    """How much one ReadPropertyMultiple answer may hold for one device.

    ``max_apdu`` is the smaller of what the device and the gateway accept; a device that can
    send segmented answers may use up to ``segments`` of them (the gateway accepts segmented
    answers), one that cannot must fit in one APDU.
    """

    max_apdu: int
    segmented: bool
    segments: int = 1

    # Sizes from the encoding rules (clause 20.2): an object's result is its identifier
    # (context tag + 4 bytes) in an opening/closing list; a property result is the property
    # tag, an opening/closing read-result and the value. A Real takes 5 bytes, status flags 3,
    # an enumeration 2-3; 10 bytes per property leaves room for a 4-byte property number and
    # an error result. The ComplexACK header takes 3 bytes.
    HEADER = 3
    PER_OBJECT = 7
    PER_PROPERTY = 10

    @property
    def bytes(self) -> int:
        return self.max_apdu * (self.segments if self.segmented else 1) - self.HEADER - 8

    def cost(self, properties: int) -> int:
        return self.PER_OBJECT + self.PER_PROPERTY * properties


def chunk(
    objects: Sequence[tuple[object, int]], budget: ReadBudget, limit: int | None = None
) -> Iterator[list[int]]:
    """Group objects (anything, with its property count) into requests that fit ``budget``:
    yields lists of indices into ``objects``, in order. ``limit`` caps objects per request
    (a device that overflowed once gets a smaller one). An object too big alone goes alone."""
    current: list[int] = []
    used = 0
    for index, (_, properties) in enumerate(objects):
        cost = budget.cost(properties)
        full = used + cost > budget.bytes or (limit is not None and len(current) >= limit)
        if current and full:
            yield current
            current, used = [], 0
        current.append(index)
        used += cost
    if current:
        yield current
