"""A small pure codec for ReadPropertyMultiple (service choice 14, ANSI/ASHRAE 135 clause 15.7):
the request's service data, the ACK's service data, and the application-tagged primitive values
that points read (clause 20.2).

bacpypes3 builds a Python object per tag, per element and per sequence of an answer and casts
each value through the property's datatype; for a poll of plain present-values and status flags
that costs several hundred microseconds a point. This module reads and writes the same bytes
with ``struct`` and slices. It understands the values points carry — null, boolean, unsigned,
signed, real, double, character string (UTF-8, UCS-2, UCS-4, ISO 8859-1), bit string and
enumerated — and raises :class:`Unsupported` for anything else (constructed values, several
values in one result, dates, object identifiers), so the caller can hand that answer to
bacpypes3 instead. Malformed bytes raise :class:`~core.errors.FramingError`; nothing else
escapes.

Decoded values are plain Python: ``None``, ``bool``, ``int``, ``float``, ``str``, a tuple of
0/1 for a bit string, or :class:`PropertyAccessError` for an error result.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from core.errors import FramingError

__all__ = [
    "ERROR_CLASSES",
    "ERROR_CODES",
    "SERVICE_CHOICE",
    "AckObject",
    "PropertyAccessError",
    "RequestObject",
    "ResultRow",
    "Tagged",
    "Unsupported",
    "Value",
    "decode_ack",
    "decode_request",
    "encode_ack",
    "encode_request",
    "encode_value",
]

SERVICE_CHOICE = 14  # readPropertyMultiple, confirmed service

# Application tag numbers (clause 20.2.1.4)
NULL, BOOLEAN, UNSIGNED, SIGNED, REAL, DOUBLE, OCTETS, CHARACTERS, BITS, ENUMERATED = range(10)

# Error class and code names the driver reacts to (clause 21, BACnetErrorClass/ErrorCode);
# others are shown as their number.
ERROR_CLASSES: dict[int, str] = {
    0: "device",
    1: "object",
    2: "property",
    3: "resources",
    4: "security",
    5: "services",
    6: "vt",
    7: "communication",
}
ERROR_CODES: dict[int, str] = {
    0: "other",
    3: "device-busy",
    27: "read-access-denied",
    29: "service-request-denied",
    31: "unknown-object",
    32: "unknown-property",
    36: "unsupported-object-type",
    42: "invalid-array-index",
    45: "optional-functionality-not-supported",
    47: "datatype-not-supported",
    50: "property-is-not-an-array",
}


class Unsupported(FramingError):
    """Well-formed as far as read, but holding something this codec does not decode."""


@dataclass(frozen=True, slots=True)
class PropertyAccessError:
    """A result's ``propertyAccessError``: error class and code numbers."""

    error_class: int
    error_code: int

    @property
    def reason(self) -> str:
        return ERROR_CODES.get(self.error_code, str(self.error_code))

    @property
    def class_name(self) -> str:
        return ERROR_CLASSES.get(self.error_class, str(self.error_class))


Value: TypeAlias = None | bool | int | float | str | tuple[int, ...] | PropertyAccessError
# (object type, instance, property, array index, value)
ResultRow: TypeAlias = tuple[int, int, int, int | None, Value]
# (object type, instance, [(property, array index)])
RequestObject: TypeAlias = tuple[int, int, Sequence[tuple[int, int | None]]]
# An application tag number and the value to encode with it (for enumerated vs unsigned).
Tagged: TypeAlias = tuple[int, object]
# (object type, instance, [(property, array index, Tagged value or PropertyAccessError)])
AckObject: TypeAlias = tuple[int, int, Sequence[tuple[int, int | None, "Tagged | PropertyAccessError"]]]

_REAL = struct.Struct(">f")
_DOUBLE = struct.Struct(">d")
_U32 = struct.Struct(">I")
_CHARSETS = {0: "utf-8", 3: "utf-32-be", 4: "utf-16-be", 5: "latin-1"}
_ENCODINGS = {"utf-8": 0, "utf-32-be": 3, "utf-16-be": 4, "latin-1": 5}


# -- tags --------------------------------------------------------------------------------------


_OPENING, _CLOSING = -1, -2


def _tag(data: bytes, pos: int) -> tuple[int, bool, int, int]:
    """Read the tag at ``pos``: (tag number, context class, length, position after the tag
    header). ``length`` is the content length (an application boolean's value), or
    ``_OPENING``/``_CLOSING`` for a context opening/closing tag. Raises ``FramingError``."""
    end = len(data)
    if pos >= end:
        raise FramingError("truncated: tag expected")
    first = data[pos]
    pos += 1
    number = first >> 4
    context = bool(first & 0x08)
    lvt = first & 0x07
    if number == 15:
        if pos >= end:
            raise FramingError("truncated extended tag number")
        number = data[pos]
        pos += 1
        if number == 255:
            raise FramingError("reserved tag number 255")
    if lvt == 5:
        if pos >= end:
            raise FramingError("truncated length")
        lvt = data[pos]
        pos += 1
        if lvt == 254:
            if pos + 2 > end:
                raise FramingError("truncated length")
            lvt = (data[pos] << 8) | data[pos + 1]
            pos += 2
        elif lvt == 255:
            if pos + 4 > end:
                raise FramingError("truncated length")
            lvt = _U32.unpack_from(data, pos)[0]
            pos += 4
    elif lvt >= 6:
        if not context:
            raise FramingError("opening/closing tag with application class")
        lvt = _OPENING if lvt == 6 else _CLOSING
    return number, context, lvt, pos


def _header(number: int, context: bool, length: int) -> bytes:
    first = 0x08 if context else 0x00
    extra = b""
    if number < 15:
        first |= number << 4
    else:
        first |= 0xF0
        extra = bytes((number,))
    if length < 5:
        return bytes((first | length,)) + extra
    first |= 5
    if length < 254:
        return bytes((first,)) + extra + bytes((length,))
    if length < 65536:
        return bytes((first,)) + extra + bytes((254, length >> 8, length & 0xFF))
    return bytes((first,)) + extra + bytes((255,)) + _U32.pack(length)


def _opening(number: int) -> bytes:
    return bytes((number << 4 | 0x0E,)) if number < 15 else bytes((0xFE, number))


def _closing(number: int) -> bytes:
    return bytes((number << 4 | 0x0F,)) if number < 15 else bytes((0xFF, number))


def _is_tag(data: bytes, pos: int, number: int, lvt: int) -> bool:
    """Whether the context tag at ``pos`` is ``number`` with opening (6) / closing (7) ``lvt``."""
    if pos >= len(data):
        return False
    first = data[pos]
    if number < 15:
        return first == (number << 4 | 0x08 | lvt)
    return first == (0xF8 | lvt) and pos + 1 < len(data) and data[pos + 1] == number


def _content(data: bytes, pos: int, length: int) -> bytes:
    end = pos + length
    if end > len(data):
        raise FramingError("truncated content")
    return data[pos:end]


def _unsigned(octets: bytes) -> int:
    if not octets:
        raise FramingError("empty unsigned")
    return int.from_bytes(octets, "big")


def _unsigned_bytes(number: int) -> bytes:
    if number < 0:
        raise ValueError(f"unsigned {number} < 0")
    return number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big")


def _signed_bytes(number: int) -> bytes:
    size = 1
    while not -(1 << (8 * size - 1)) <= number < (1 << (8 * size - 1)):
        size += 1
    return number.to_bytes(size, "big", signed=True)


def _context_unsigned(data: bytes, pos: int, number: int) -> tuple[int, int]:
    """A context-tagged unsigned (or enumerated, object identifier) ``number`` at ``pos``."""
    tag, context, length, pos = _tag(data, pos)
    if not context or tag != number or length < 0:
        raise FramingError(f"context tag {number} expected")
    if length > 8:
        raise FramingError(f"context tag {number}: {length} octets")
    return _unsigned(_content(data, pos, length)), pos + length


# -- values --------------------------------------------------------------------------------------


def _decode_value(data: bytes, pos: int) -> tuple[Value, int]:
    """One application-tagged value at ``pos``."""
    tag, context, length, pos = _tag(data, pos)
    if context:
        raise Unsupported("constructed or context-tagged value")
    if tag == BOOLEAN:
        if length > 1:
            raise FramingError(f"boolean value {length}")
        return bool(length), pos
    octets = _content(data, pos, length)
    pos += length
    if tag == REAL:
        if length != 4:
            raise FramingError(f"real of {length} octets")
        return _REAL.unpack(octets)[0], pos
    if tag in (UNSIGNED, ENUMERATED):
        return _unsigned(octets), pos
    if tag == SIGNED:
        if not octets:
            raise FramingError("empty signed")
        return int.from_bytes(octets, "big", signed=True), pos
    if tag == BITS:
        if not octets or octets[0] > 7 or (len(octets) == 1 and octets[0]):
            raise FramingError("bad bit string")
        bits = [(byte >> (7 - i)) & 1 for byte in octets[1:] for i in range(8)]
        return tuple(bits[: len(bits) - octets[0]]), pos
    if tag == NULL:
        if length:
            raise FramingError("null with content")
        return None, pos
    if tag == DOUBLE:
        if length != 8:
            raise FramingError(f"double of {length} octets")
        return _DOUBLE.unpack(octets)[0], pos
    if tag == CHARACTERS:
        if not octets:
            raise FramingError("character string without a character set")
        charset = _CHARSETS.get(octets[0])
        if charset is None:
            raise Unsupported(f"character set {octets[0]}")
        try:
            return octets[1:].decode(charset), pos
        except UnicodeDecodeError as exc:
            raise Unsupported(f"character string not {charset}") from exc
    raise Unsupported(f"application tag {tag}")


def encode_value(tag: int, value: object) -> bytes:
    """One application-tagged value. Raises ``ValueError`` for a value the tag cannot hold."""
    if tag == NULL:
        return b"\x00"
    if tag == BOOLEAN:
        return b"\x11" if value else b"\x10"
    if tag == REAL:
        return b"\x44" + _REAL.pack(float(value))  # type: ignore[arg-type]
    if tag == DOUBLE:
        return b"\x55\x08" + _DOUBLE.pack(float(value))  # type: ignore[arg-type]
    if tag in (UNSIGNED, ENUMERATED):
        octets = _unsigned_bytes(int(value))  # type: ignore[call-overload]
    elif tag == SIGNED:
        octets = _signed_bytes(int(value))  # type: ignore[call-overload]
    elif tag == CHARACTERS:
        octets = b"\x00" + str(value).encode("utf-8")
    elif tag == BITS:
        bits = [1 if bit else 0 for bit in value]  # type: ignore[attr-defined]
        unused = (8 - len(bits) % 8) % 8
        padded = bits + [0] * unused
        octets = bytes([unused]) + bytes(
            sum(bit << (7 - i) for i, bit in enumerate(padded[k : k + 8])) for k in range(0, len(padded), 8)
        )
    else:
        raise ValueError(f"application tag {tag} is not encoded here")
    return _header(tag, False, len(octets)) + octets


# -- ReadPropertyMultiple request ----------------------------------------------------------------


def _object_id(object_type: int, instance: int) -> bytes:
    if not 0 <= object_type < 1024 or not 0 <= instance < (1 << 22):
        raise ValueError(f"object ({object_type}, {instance}) out of range")
    return _U32.pack(object_type << 22 | instance)


def encode_request(objects: Iterable[RequestObject]) -> bytes:
    """The service data of a ReadPropertyMultiple-Request."""
    out = bytearray()
    for object_type, instance, properties in objects:
        out += b"\x0c" + _object_id(object_type, instance) + b"\x1e"
        for prop, index in properties:
            number = _unsigned_bytes(prop)
            out += _header(0, True, len(number)) + number
            if index is not None:
                octets = _unsigned_bytes(index)
                out += _header(1, True, len(octets)) + octets
        out += b"\x1f"
    return bytes(out)


def decode_request(data: bytes) -> list[RequestObject]:
    """A ReadPropertyMultiple-Request's service data. Raises ``FramingError``."""
    objects: list[RequestObject] = []
    pos, end = 0, len(data)
    while pos < end:
        oid, pos = _context_unsigned(data, pos, 0)
        if not _is_tag(data, pos, 1, 6):
            raise FramingError("listOfPropertyReferences expected")
        pos += 1
        properties: list[tuple[int, int | None]] = []
        while not _is_tag(data, pos, 1, 7):
            prop, pos = _context_unsigned(data, pos, 0)
            index: int | None = None
            if pos < end and data[pos] >> 4 == 1 and data[pos] & 0x08 and data[pos] & 0x07 < 6:
                index, pos = _context_unsigned(data, pos, 1)
            properties.append((prop, index))
        pos += 1
        objects.append((oid >> 22, oid & 0x3FFFFF, properties))
    if not objects:
        raise FramingError("no read access specification")
    return objects


# -- ReadPropertyMultiple ACK ------------------------------------------------------------------


def decode_ack(data: bytes) -> list[ResultRow]:
    """A ReadPropertyMultiple-ACK's service data as rows. Raises ``Unsupported`` for a value
    this codec does not decode and ``FramingError`` for malformed data."""
    rows: list[ResultRow] = []
    append = rows.append
    pos, end = 0, len(data)
    while pos < end:
        # objectIdentifier [0] is always 4 octets: 0x0C
        if data[pos] != 0x0C or pos + 5 > end:
            raise FramingError("objectIdentifier [0] expected")
        oid = _U32.unpack_from(data, pos + 1)[0]
        object_type, instance = oid >> 22, oid & 0x3FFFFF
        pos += 5
        if pos < end and data[pos] == 0x1E:  # listOfResults [1] (optional)
            pos += 1
            while True:
                if pos >= end:
                    raise FramingError("listOfResults not closed")
                if data[pos] == 0x1F:
                    pos += 1
                    break
                if data[pos] == 0x29 and pos + 1 < end:  # [2], one octet: the common case
                    prop = data[pos + 1]
                    pos += 2
                else:
                    prop, pos = _context_unsigned(data, pos, 2)
                index: int | None = None
                if pos < end and (data[pos] & 0xF8) == 0x38:  # propertyArrayIndex [3]
                    index, pos = _context_unsigned(data, pos, 3)
                if pos >= end:
                    raise FramingError("readResult expected")
                marker = data[pos]
                if marker == 0x4E:  # propertyValue [4]
                    if data[pos + 1 : pos + 2] == b"\x44" and pos + 6 <= end:  # a Real
                        value = _REAL.unpack_from(data, pos + 2)[0]
                        pos += 6
                    else:
                        value, pos = _decode_value(data, pos + 1)
                    if pos >= end:
                        raise FramingError("propertyValue not closed")
                    if data[pos] != 0x4F:
                        raise Unsupported("propertyValue holds more than one value")
                    pos += 1
                elif marker == 0x5E:  # propertyAccessError [5]
                    error_class, pos = _application_enumerated(data, pos + 1)
                    error_code, pos = _application_enumerated(data, pos)
                    if pos >= end or data[pos] != 0x5F:
                        raise FramingError("propertyAccessError not closed")
                    pos += 1
                    value = PropertyAccessError(error_class, error_code)
                else:
                    raise FramingError("readResult [4] or [5] expected")
                append((object_type, instance, prop, index, value))
    return rows


def _application_enumerated(data: bytes, pos: int) -> tuple[int, int]:
    tag, context, length, pos = _tag(data, pos)
    if context or tag != ENUMERATED or length > 4:
        raise FramingError("enumerated expected")
    return _unsigned(_content(data, pos, length)), pos + length


def encode_ack(objects: Iterable[AckObject]) -> bytes:
    """The service data of a ReadPropertyMultiple-ACK (each value as ``(tag, value)``)."""
    out = bytearray()
    for object_type, instance, results in objects:
        out += b"\x0c" + _object_id(object_type, instance) + b"\x1e"
        for prop, index, value in results:
            out += encode_result_head(prop, index)
            out += encode_result_value(value)
        out += b"\x1f"
    return bytes(out)


def encode_result_head(prop: int, index: int | None) -> bytes:
    """propertyIdentifier [2] and the optional propertyArrayIndex [3] of one result."""
    number = _unsigned_bytes(prop)
    head = _header(2, True, len(number)) + number
    if index is not None:
        octets = _unsigned_bytes(index)
        head += _header(3, True, len(octets)) + octets
    return head


def encode_result_value(value: Tagged | PropertyAccessError) -> bytes:
    """The readResult of one result: [4] value or [5] error."""
    if isinstance(value, PropertyAccessError):
        return (
            b"\x5e"
            + encode_value(ENUMERATED, value.error_class)
            + encode_value(ENUMERATED, value.error_code)
            + b"\x5f"
        )
    tag, payload = value
    return b"\x4e" + encode_value(tag, payload) + b"\x4f"
