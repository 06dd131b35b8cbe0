"""GB/T 26875.3-2011 application data units and information objects (pure, no I/O).

An application data unit is ``type flag(1) | object count(1) | objects``; every object in one
unit has the unit's type. Multi-byte integers are little-endian. Most objects end in a 6-byte
time tag (the panel's own clock, often wrong: keep it, never judge an event by it).

===  =====================================  ===============================================
type what                                   body (then the time tag, unless noted)
===  =====================================  ===============================================
1    fire-system status                     sys_type sys_addr status(2)
2    component status                       sys_type sys_addr comp_type comp_addr(4)
                                            status(2) description(31, GB18030)
3    component analog value                 sys_type sys_addr comp_type comp_addr(4)
                                            analog_type value(int16)
4    fire-system operation record           sys_type sys_addr flags operator
5    fire-system software version           sys_type sys_addr main sub (no time tag in the
                                            standard; some devices add one: both are read)
8    fire-system time                       time tag only
21   transmission-device status             flags
24   transmission-device operation          flags operator
28   transmission-device time               time tag only
90   clock synchronisation (command 1)      time tag only
===  =====================================  ===============================================

A unit of another type, or whose length does not fit its count, is kept whole as
:class:`UnknownObjects` (raw bytes) for the caller to log: never an error. Only a unit too
short to carry its own header raises :class:`AduError` (a ``FramingError``).

The status, operation and transmission-device bits are named by :class:`StatusBit`,
:class:`OperationBit` and :class:`UitdBit`. Bit 0 of a status word reads "normal (1) / test
(0)" in the standard, yet real panels send 0 there with real fires: :func:`fire` never looks
at it, and :func:`in_test` is for devices whose site config says they use it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from drivers.gb26875.frame import Gb26875FramingError, TimeFormat, TimeTag, pack_time, unpack_time

__all__ = [
    "DESCRIPTION_LEN",
    "Adu",
    "AduError",
    "AnalogValue",
    "ComponentStatus",
    "InfoObject",
    "OperationBit",
    "OperationRecord",
    "SoftwareVersion",
    "StatusBit",
    "SystemStatus",
    "TimeObject",
    "TypeFlag",
    "UitdBit",
    "UitdOperation",
    "UitdStatus",
    "UnknownObjects",
    "decode_adu",
    "decode_description",
    "encode_adu",
    "encode_description",
    "fire",
    "in_test",
]

DESCRIPTION_LEN = 31


class TypeFlag(enum.IntEnum):
    SYSTEM_STATUS = 1
    COMPONENT_STATUS = 2
    ANALOG_VALUE = 3
    OPERATION = 4
    SOFTWARE_VERSION = 5
    SYSTEM_TIME = 8
    UITD_STATUS = 21
    UITD_OPERATION = 24
    UITD_TIME = 28
    SYNC_CLOCK = 90


class StatusBit(enum.IntEnum):
    """Bits of the status word of types 1 (system) and 2 (component); 8.. are type 1 only."""

    NORMAL = 0  # 1 normal, 0 test: honoured only where the site says so
    FIRE = 1
    FAULT = 2
    DISABLED = 3
    SUPERVISORY = 4
    STARTED = 5
    FEEDBACK = 6
    DELAY = 7
    MAIN_POWER_FAULT = 8
    BACKUP_POWER_FAULT = 9
    BUS_FAULT = 10
    MANUAL = 11  # 1 manual, 0 automatic
    CONFIG_CHANGED = 12
    RESET = 13


class OperationBit(enum.IntEnum):
    """Bits of the operation flags of types 4 and 24."""

    RESET = 0
    SILENCE = 1
    MANUAL_ALARM = 2
    ALARM_CLEARED = 3
    SELF_TEST = 4
    CONFIRM = 5
    TEST = 6


class UitdBit(enum.IntEnum):
    """Bits of the transmission-device status (type 21). Names after 0 are *unconfirmed*."""

    NORMAL = 0
    FIRE = 1
    FAULT = 2
    MAIN_POWER_FAULT = 3
    BACKUP_POWER_FAULT = 4
    CENTRE_LINK_FAULT = 5
    PANEL_LINK_FAULT = 6


def fire(status: int) -> bool:
    """The fire bit, whatever bit 0 says (see the module docstring)."""
    return bool(status & 0x0002)


def in_test(status: int) -> bool:
    """Bit 0 clear: the standard's "test" reading, for devices configured to use it."""
    return not status & 0x0001


@dataclass(frozen=True, slots=True)
class SystemStatus:
    sys_type: int
    sys_addr: int
    status: int
    time: TimeTag


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    sys_type: int
    sys_addr: int
    comp_type: int
    comp_addr: int
    status: int
    description: str
    time: TimeTag


@dataclass(frozen=True, slots=True)
class AnalogValue:
    sys_type: int
    sys_addr: int
    comp_type: int
    comp_addr: int
    analog_type: int
    value: int  # signed raw value; the scale depends on analog_type
    time: TimeTag


@dataclass(frozen=True, slots=True)
class OperationRecord:
    sys_type: int
    sys_addr: int
    flags: int
    operator: int
    time: TimeTag


@dataclass(frozen=True, slots=True)
class SoftwareVersion:
    sys_type: int
    sys_addr: int
    main: int
    sub: int
    time: TimeTag | None = None


@dataclass(frozen=True, slots=True)
class TimeObject:
    """Types 8, 28 and 90: a time tag alone."""

    time: TimeTag


@dataclass(frozen=True, slots=True)
class UitdStatus:
    flags: int
    time: TimeTag


@dataclass(frozen=True, slots=True)
class UitdOperation:
    flags: int
    operator: int
    time: TimeTag


@dataclass(frozen=True, slots=True)
class UnknownObjects:
    """A unit this codec does not read (its type, or a length that does not fit its count)."""

    count: int
    raw: bytes  # the objects, after type flag and count
    reason: str


InfoObject = (
    SystemStatus
    | ComponentStatus
    | AnalogValue
    | OperationRecord
    | SoftwareVersion
    | TimeObject
    | UitdStatus
    | UitdOperation
    | UnknownObjects
)


class AduError(Gb26875FramingError):
    """Application data too short to hold its own type flag and count."""


@dataclass(frozen=True, slots=True)
class Adu:
    type_flag: int
    objects: tuple[InfoObject, ...]

    @property
    def unknown(self) -> bool:
        return any(isinstance(o, UnknownObjects) for o in self.objects)


def encode_description(text: str) -> bytes:
    """``text`` in GB18030, cut at a character boundary to fit 31 bytes, NUL-padded."""
    out = b""
    for ch in text:
        enc = ch.encode("gb18030")
        if len(out) + len(enc) > DESCRIPTION_LEN:
            break
        out += enc
    return out.ljust(DESCRIPTION_LEN, b"\0")


def decode_description(raw: bytes) -> str:
    """The text up to the first NUL (some devices pad with spaces: those go too)."""
    return raw.split(b"\0", 1)[0].decode("gb18030", errors="replace").rstrip(" ")


_T = 6  # time tag length
_SYS = struct.Struct("<BBH")
_COMP = struct.Struct("<BBBIH31s")
_ANALOG = struct.Struct("<BBBIBh")
_OP = struct.Struct("<BBBB")
_SIZES: dict[int, tuple[int, ...]] = {
    TypeFlag.SYSTEM_STATUS: (4 + _T,),
    TypeFlag.COMPONENT_STATUS: (40 + _T,),
    TypeFlag.ANALOG_VALUE: (10 + _T,),
    TypeFlag.OPERATION: (4 + _T,),
    TypeFlag.SOFTWARE_VERSION: (4, 4 + _T),
    TypeFlag.SYSTEM_TIME: (_T,),
    TypeFlag.UITD_STATUS: (1 + _T,),
    TypeFlag.UITD_OPERATION: (2 + _T,),
    TypeFlag.UITD_TIME: (_T,),
    TypeFlag.SYNC_CLOCK: (_T,),
}


def decode_adu(data: bytes, fmt: TimeFormat = TimeFormat.BINARY) -> Adu | None:
    """The unit in ``data``; None for an empty unit (a confirm, a heartbeat). Raises
    :class:`AduError` only for a single byte, which cannot be a unit."""
    if not data:
        return None
    if len(data) < 2:
        raise AduError(f"application data of {len(data)} byte(s) has no object count")
    type_flag, count = data[0], data[1]
    sizes = _SIZES.get(type_flag)
    if sizes is None:
        return Adu(type_flag, (UnknownObjects(count, data[2:], f"type {type_flag} is not decoded"),))
    body_len = len(data) - 2
    size = 0
    for s in sizes:
        if s * count == body_len:
            size = s
            break
    if not size or not count:
        reason = f"{count} object(s) of type {type_flag} do not fill {body_len} bytes"
        return Adu(type_flag, (UnknownObjects(count, data[2:], reason),))
    decode = _DECODERS[type_flag]
    return Adu(type_flag, tuple(decode(data, 2 + i * size, size, fmt) for i in range(count)))


def _tag(data: bytes, end: int, fmt: TimeFormat) -> TimeTag:
    return unpack_time(data[end - _T : end], fmt)


def _d_system(data: bytes, at: int, size: int, fmt: TimeFormat) -> InfoObject:
    st, sa, status = _SYS.unpack_from(data, at)
    return SystemStatus(st, sa, status, _tag(data, at + size, fmt))


def _d_component(data: bytes, at: int, size: int, fmt: TimeFormat) -> InfoObject:
    st, sa, ct, ca, status, text = _COMP.unpack_from(data, at)
    return ComponentStatus(st, sa, ct, ca, status, decode_description(text), _tag(data, at + size, fmt))


def _d_analog(data: bytes, at: int, size: int, fmt: TimeFormat) -> InfoObject:
    st, sa, ct, ca, analog_type, value = _ANALOG.unpack_from(data, at)
    return AnalogValue(st, sa, ct, ca, analog_type, value, _tag(data, at + size, fmt))


def _d_operation(data: bytes, at: int, size: int, fmt: TimeFormat) -> InfoObject:
    st, sa, flags, operator = _OP.unpack_from(data, at)
    return OperationRecord(st, sa, flags, operator, _tag(data, at + size, fmt))


def _d_version(data: bytes, at: int, size: int, fmt: TimeFormat) -> InfoObject:
    st, sa, main, sub = _OP.unpack_from(data, at)
    return SoftwareVersion(st, sa, main, sub, _tag(data, at + size, fmt) if size > 4 else None)


def _d_uitd_status(data: bytes, at: int, size: int, fmt: TimeFormat) -> InfoObject:
    return UitdStatus(data[at], _tag(data, at + size, fmt))


def _d_uitd_operation(data: bytes, at: int, size: int, fmt: TimeFormat) -> InfoObject:
    return UitdOperation(data[at], data[at + 1], _tag(data, at + size, fmt))


def _d_time(data: bytes, at: int, size: int, fmt: TimeFormat) -> InfoObject:
    return TimeObject(_tag(data, at + size, fmt))


_DECODERS: dict[int, Callable[[bytes, int, int, TimeFormat], InfoObject]] = {
    TypeFlag.SYSTEM_STATUS: _d_system,
    TypeFlag.COMPONENT_STATUS: _d_component,
    TypeFlag.ANALOG_VALUE: _d_analog,
    TypeFlag.OPERATION: _d_operation,
    TypeFlag.SOFTWARE_VERSION: _d_version,
    TypeFlag.SYSTEM_TIME: _d_time,
    TypeFlag.UITD_STATUS: _d_uitd_status,
    TypeFlag.UITD_OPERATION: _d_uitd_operation,
    TypeFlag.UITD_TIME: _d_time,
    TypeFlag.SYNC_CLOCK: _d_time,
}
# Plain int keys: a lookup by the int read from the wire then hashes and compares as int.
_SIZES = {int(k): v for k, v in _SIZES.items()}
_DECODERS = {int(k): v for k, v in _DECODERS.items()}


def encode_adu(type_flag: int, objects: Sequence[InfoObject], fmt: TimeFormat = TimeFormat.BINARY) -> bytes:
    """The unit of ``objects``, all of type ``type_flag``. Raises ``ValueError`` for an object
    that is not of that type or does not fit (count above 255, a field out of range)."""
    if len(objects) > 255:
        raise ValueError("at most 255 objects in one unit")
    if len(objects) == 1 and isinstance(objects[0], UnknownObjects):
        return bytes((type_flag, objects[0].count)) + objects[0].raw
    parts = [bytes((type_flag, len(objects)))]
    for obj in objects:
        parts.append(_encode_one(type_flag, obj, fmt))
    data = b"".join(parts)
    return data


def _encode_one(type_flag: int, obj: InfoObject, fmt: TimeFormat) -> bytes:  # noqa: PLR0911 - one per type
    try:
        if isinstance(obj, SystemStatus) and type_flag == TypeFlag.SYSTEM_STATUS:
            return _SYS.pack(obj.sys_type, obj.sys_addr, obj.status) + pack_time(obj.time, fmt)
        if isinstance(obj, ComponentStatus) and type_flag == TypeFlag.COMPONENT_STATUS:
            text = encode_description(obj.description)
            packed = _COMP.pack(obj.sys_type, obj.sys_addr, obj.comp_type, obj.comp_addr, obj.status, text)
            return packed + pack_time(obj.time, fmt)
        if isinstance(obj, AnalogValue) and type_flag == TypeFlag.ANALOG_VALUE:
            packed = _ANALOG.pack(
                obj.sys_type, obj.sys_addr, obj.comp_type, obj.comp_addr, obj.analog_type, obj.value
            )
            return packed + pack_time(obj.time, fmt)
        if isinstance(obj, OperationRecord) and type_flag == TypeFlag.OPERATION:
            return _OP.pack(obj.sys_type, obj.sys_addr, obj.flags, obj.operator) + pack_time(obj.time, fmt)
        if isinstance(obj, SoftwareVersion) and type_flag == TypeFlag.SOFTWARE_VERSION:
            tail = b"" if obj.time is None else pack_time(obj.time, fmt)
            return _OP.pack(obj.sys_type, obj.sys_addr, obj.main, obj.sub) + tail
        if isinstance(obj, UitdStatus) and type_flag == TypeFlag.UITD_STATUS:
            return bytes((obj.flags,)) + pack_time(obj.time, fmt)
        if isinstance(obj, UitdOperation) and type_flag == TypeFlag.UITD_OPERATION:
            return bytes((obj.flags, obj.operator)) + pack_time(obj.time, fmt)
        if isinstance(obj, TimeObject) and type_flag in (
            TypeFlag.SYSTEM_TIME,
            TypeFlag.UITD_TIME,
            TypeFlag.SYNC_CLOCK,
        ):
            return pack_time(obj.time, fmt)
    except struct.error as exc:
        raise ValueError(f"{obj} does not fit its fields: {exc}") from exc
    raise ValueError(f"{type(obj).__name__} cannot be sent as type {type_flag}")
