"""The pure part of the serial-line driver: bytes into lines, lines into ``Reading``s.

``LineSplitter`` cuts a byte stream at the terminator. A line that grows past the limit without
a terminator is noise or a wrong terminator setting: it is dropped, and so is everything up to
the next terminator, after which lines are whole again (resynchronisation).

``LineParser`` turns one line of one device into readings: it checks the device's prefix (lines
of other devices on a shared line are not its business), the checksum (a line that fails it is
rejected whole, counted, and logged once per burst of bad lines), then finds each point's text
(a named group of the line pattern, its own pattern, fixed columns or a field) and converts it.
A value that does not convert is a ``Reading`` with bad quality — never an exception — so one
garbled field does not cost the others.

Nothing here reads a clock or does I/O; the parser holds only counters.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from core.model import Quality, Reason, Value
from drivers.base import Reading
from drivers.serial_line.config import (
    ChecksumConfig,
    ChecksumKind,
    LineFormat,
    LineMode,
    LineValueType,
    SerialLinePointConfig,
)

__all__ = [
    "LineParser",
    "LineSplitter",
    "LineStatus",
    "ParseResult",
    "ParserStats",
    "checksum_text",
    "compute_checksum",
    "convert",
]

_LOG = structlog.get_logger(__name__)

# Numbers as instruments print them: optional sign, digits with an optional point, optional
# exponent. Python's float() would also take 'nan', 'infinity' and '1_000', which no device
# means as a reading.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?")
_INTEGER = re.compile(r"[+-]?\d{1,18}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_MAX_NUMBER_CHARS = 64
_TRUE_WORDS = frozenset({"1", "true", "on", "yes", "y", "t"})
_FALSE_WORDS = frozenset({"0", "false", "off", "no", "n", "f"})
# Characters a line may carry at its ends besides the terminator (a CR before an LF terminator,
# NUL padding from printers).
_EDGE_JUNK = "\r\n\x00"


class LineSplitter:
    """Cuts a byte stream into lines at ``terminator``; lines longer than ``max_line_bytes``
    are dropped up to the next terminator."""

    def __init__(self, terminator: bytes, max_line_bytes: int) -> None:
        if not terminator:
            raise ValueError("a terminator has at least one byte")
        self._term = terminator
        self._max = max_line_bytes
        self._buffer = bytearray()
        self._discarding = False
        self.overlong = 0  # lines dropped for having no terminator in time

    def feed(self, data: bytes) -> list[bytes]:
        """The whole lines completed by ``data`` (without their terminator)."""
        buffer = self._buffer
        buffer += data
        lines: list[bytes] = []
        term = self._term
        start = 0
        while True:
            end = buffer.find(term, start)
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            elif end - start <= self._max:
                lines.append(bytes(buffer[start:end]))
            else:
                self.overlong += 1
            start = end + len(term)
        del buffer[:start]
        if len(buffer) > self._max:
            if not self._discarding:
                self.overlong += 1
                self._discarding = True
            # Keep the tail that may be the start of a terminator split across reads.
            del buffer[: len(buffer) - (len(term) - 1)]
        return lines

    def reset(self) -> None:
        """Forget a partial line (before a new command, so a fragment cannot prefix its answer)."""
        self._buffer.clear()
        self._discarding = False

    @property
    def pending(self) -> int:
        return len(self._buffer)


class LineStatus(enum.Enum):
    OK = "ok"  # the line is the device's and passed its checksum; readings follow
    EMPTY = "empty"  # nothing but whitespace
    OTHER_DEVICE = "other_device"  # does not start with the device's prefix
    BAD_CHECKSUM = "bad_checksum"  # rejected whole
    NO_MATCH = "no_match"  # the line pattern did not match (readings only in strict mode)


@dataclass(frozen=True, slots=True)
class ParseResult:
    status: LineStatus
    readings: tuple[Reading, ...] = ()
    # (point key or '', why) for every value that did not convert: for logs and tests.
    problems: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class ParserStats:
    lines: int = 0
    ok: int = 0
    other_device: int = 0
    bad_checksum: int = 0
    no_match: int = 0
    bad_values: int = 0
    checksum_bursts: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


# -- checksums --------------------------------------------------------------------------------


def _crc16_modbus(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def compute_checksum(kind: ChecksumKind, data: bytes) -> int:
    if kind is ChecksumKind.SUM8:
        return sum(data) & 0xFF
    if kind is ChecksumKind.XOR8:
        value = 0
        for byte in data:
            value ^= byte
        return value
    return _crc16_modbus(data)


def checksum_text(config: ChecksumConfig, data: bytes) -> str:
    """The hex text a device appends for ``data`` (what the simulator sends, what we expect)."""
    value = compute_checksum(config.kind, data)
    if config.kind is ChecksumKind.CRC16_MODBUS:
        if config.byte_order == "little":
            value = ((value & 0xFF) << 8) | (value >> 8)
        return f"{value:04X}"
    return f"{value:02X}"


def _hex_value(text: str, digits: int) -> int | None:
    text = text.strip()
    if len(text) != digits or not _HEX.fullmatch(text):
        return None
    return int(text, 16)


# -- value conversion -------------------------------------------------------------------------

_Converted = tuple[Value, Quality, Reason, str]


def _number(point: SerialLinePointConfig, text: str) -> _Converted:
    text = text.strip()
    if len(text) > _MAX_NUMBER_CHARS:
        return None, Quality.BAD, Reason.DEVICE_ERROR, "number too long"
    raw: int | float
    if point.type is LineValueType.INT:
        if not _INTEGER.fullmatch(text):
            return None, Quality.BAD, Reason.DEVICE_ERROR, f"not an integer: {text!r}"
        raw = int(text)
    else:
        if not _NUMBER.fullmatch(text):
            return None, Quality.BAD, Reason.DEVICE_ERROR, f"not a number: {text!r}"
        raw = float(text)
    value: int | float = raw
    if point.scale != 1 or point.offset != 0:
        value = float(raw) * point.scale + point.offset
    if isinstance(value, float) and not math.isfinite(value):
        return math.nan, Quality.BAD, Reason.OUT_OF_RANGE, f"{text!r} is beyond a float"
    low, high = point.valid_min, point.valid_max
    if (low is not None and value < low) or (high is not None and value > high):
        return value, Quality.BAD, Reason.OUT_OF_RANGE, f"{value} outside {low}..{high}"
    return value, Quality.GOOD, Reason.NONE, ""


def _boolean(point: SerialLinePointConfig, text: str, match: re.Pattern[str] | None) -> _Converted:
    if match is not None:
        return match.search(text) is not None, Quality.GOOD, Reason.NONE, ""
    word = text.strip()
    if point.true_values is not None:
        if word in point.true_values:
            return True, Quality.GOOD, Reason.NONE, ""
        if point.false_values is None or word in point.false_values:
            return False, Quality.GOOD, Reason.NONE, ""
        return None, Quality.BAD, Reason.DEVICE_ERROR, f"neither true nor false: {word!r}"
    lowered = word.lower()
    if lowered in _TRUE_WORDS:
        return True, Quality.GOOD, Reason.NONE, ""
    if lowered in _FALSE_WORDS:
        return False, Quality.GOOD, Reason.NONE, ""
    if _NUMBER.fullmatch(word) and len(word) <= _MAX_NUMBER_CHARS:
        return float(word) != 0, Quality.GOOD, Reason.NONE, ""
    return None, Quality.BAD, Reason.DEVICE_ERROR, f"not a boolean: {word!r}"


def _enum(point: SerialLinePointConfig, text: str, labels: dict[str, int]) -> _Converted:
    word = text.strip()
    code = labels.get(word)
    if code is not None:
        return code, Quality.GOOD, Reason.NONE, ""
    if _INTEGER.fullmatch(word):
        return int(word), Quality.GOOD, Reason.NONE, ""
    return None, Quality.BAD, Reason.DEVICE_ERROR, f"unknown state {word!r}"


def convert(
    point: SerialLinePointConfig,
    text: str,
    *,
    match: re.Pattern[str] | None = None,
    labels: dict[str, int] | None = None,
) -> _Converted:
    """(value, quality, reason, why) of ``text`` as ``point``'s type; never raises."""
    kind = point.type
    if kind is LineValueType.STRING:
        return text.strip(), Quality.GOOD, Reason.NONE, ""
    if kind is LineValueType.BOOL:
        return _boolean(point, text, match)
    if kind is LineValueType.ENUM:
        return _enum(point, text, labels if labels is not None else _enum_labels(point))
    return _number(point, text)


def _enum_labels(point: SerialLinePointConfig) -> dict[str, int]:
    """Label -> code, Chinese labels too (a Chinese panel prints 火警, the map says 'fire')."""
    labels: dict[str, int] = {}
    for table in (point.enum, point.enum_zh):
        for code, label in (table or {}).items():
            labels.setdefault(label, code)
    return labels


# -- one device's lines -----------------------------------------------------------------------

# (match of the line pattern, payload, split fields) -> the point's text, or None if absent
_Locate = Callable[[re.Match[str] | None, str, list[str] | None], str | None]


@dataclass(slots=True)
class _CompiledPoint:
    key: str
    point: SerialLinePointConfig
    locate: _Locate
    match: re.Pattern[str] | None
    labels: dict[str, int] = field(default_factory=dict)
    needs_fields: bool = False


def _locator(point: SerialLinePointConfig) -> tuple[_Locate, bool]:
    """A function finding the point's text (line match, payload, fields) and whether it needs
    the split fields."""
    if point.pattern is not None:
        own = re.compile(point.pattern)
        value_group: int | str = "value" if "value" in own.groupindex else (1 if own.groups else 0)

        def by_pattern(_m: re.Match[str] | None, payload: str, _f: list[str] | None) -> str | None:
            found = own.search(payload)
            return None if found is None else found.group(value_group)

        return by_pattern, False
    if point.columns is not None:
        start, end = point.columns

        def by_columns(_m: re.Match[str] | None, payload: str, _f: list[str] | None) -> str | None:
            return payload[start:end] if len(payload) >= end else None

        return by_columns, False
    if point.field is not None:
        index = point.field

        def by_field(_m: re.Match[str] | None, _p: str, fields: list[str] | None) -> str | None:
            assert fields is not None
            return fields[index] if -len(fields) <= index < len(fields) else None

        return by_field, True
    name = point.group_name
    assert name is not None

    def by_group(m: re.Match[str] | None, _p: str, _f: list[str] | None) -> str | None:
        if m is None or name not in m.re.groupindex:
            return None
        return m.group(name)

    return by_group, False


class LineParser:
    """Parses the lines of one device.

    ``strict`` (the default in poll mode): every point gets a reading from every answer, bad
    when its value is not in the line. Otherwise (the default in unsolicited mode) a point not
    in a line keeps its last value: a printer's fault line says nothing about the fire point.
    """

    def __init__(
        self,
        line: LineFormat,
        points: Sequence[SerialLinePointConfig],
        *,
        encoding: str = "ascii",
        address: str | None = None,
        strict: bool | None = None,
        name: str = "",
    ) -> None:
        self._encoding = encoding
        self._prefix = line.address_prefix(address)
        self._pattern = None if line.pattern is None else re.compile(line.pattern)
        self._separator = line.separator
        self._checksum = line.checksum
        self._delimiter = (
            None
            if line.checksum is None or line.checksum.by_group or line.checksum.delimiter is None
            else line.checksum.delimiter.encode(encoding)
        )
        self._strict = line.mode is LineMode.POLL if strict is None else strict
        self._name = name
        self._points: list[_CompiledPoint] = []
        for point in points:
            locate, needs_fields = _locator(point)
            match = None if point.match is None else re.compile(point.match)
            self._points.append(
                _CompiledPoint(point.id, point, locate, match, _enum_labels(point), needs_fields)
            )
        self._any_fields = any(p.needs_fields for p in self._points)
        self.stats = ParserStats()
        self._bad_run = 0

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self._points)

    def missing_groups(self) -> list[str]:
        """Point keys whose group the line pattern does not have (a configuration mistake)."""
        groups = self._pattern.groupindex if self._pattern is not None else {}
        return [
            p.key for p in self._points if p.point.group_name is not None and p.point.group_name not in groups
        ]

    def belongs(self, raw: bytes) -> bool:
        """Whether a line is this device's (its prefix), without parsing it."""
        if self._prefix is None:
            return True
        return raw.lstrip(b"\r\n\x00").startswith(self._prefix.encode(self._encoding, errors="replace"))

    def parse(self, raw: bytes) -> ParseResult:
        """One line (without terminator) into readings. Never raises for any input."""
        self.stats.lines += 1
        text = raw.decode(self._encoding, errors="replace").strip(_EDGE_JUNK)
        if not text.strip():
            return ParseResult(LineStatus.EMPTY)
        if self._prefix is not None and not text.startswith(self._prefix):
            self.stats.other_device += 1
            return ParseResult(LineStatus.OTHER_DEVICE)
        payload = text
        line_match: re.Match[str] | None = None
        if self._checksum is not None:
            checked = self._check(raw.strip(_EDGE_JUNK.encode()), text)
            if checked is None:
                return self._bad_checksum(text)
            payload, line_match = checked
            self._checksum_ok()
        if line_match is None and self._pattern is not None:
            line_match = self._pattern.search(payload)
        if self._pattern is not None and line_match is None:
            self.stats.no_match += 1
            if not self._strict:
                return self._loose(payload, None, LineStatus.NO_MATCH)
            readings = tuple(self._read_point(p, None, payload, None) for p in self._points)
            return ParseResult(LineStatus.NO_MATCH, tuple(r for r, _ in readings), self._problems(readings))
        self.stats.ok += 1
        if not self._strict:
            return self._loose(payload, line_match, LineStatus.OK)
        fields = self._split(payload)
        readings = tuple(self._read_point(p, line_match, payload, fields) for p in self._points)
        return ParseResult(LineStatus.OK, tuple(r for r, _ in readings), self._problems(readings))

    # -- helpers ------------------------------------------------------------------------------

    def _loose(self, payload: str, line_match: re.Match[str] | None, status: LineStatus) -> ParseResult:
        """Unsolicited mode: readings only for the points the line carries."""
        fields = self._split(payload)
        out: list[tuple[Reading, str]] = []
        for point in self._points:
            if point.locate(line_match, payload, fields) is None:
                continue
            out.append(self._read_point(point, line_match, payload, fields))
        return ParseResult(status, tuple(r for r, _ in out), self._problems(out))

    def _split(self, payload: str) -> list[str] | None:
        if not self._any_fields:
            return None
        return payload.split(self._separator) if self._separator is not None else payload.split()

    def _read_point(
        self, point: _CompiledPoint, line_match: re.Match[str] | None, payload: str, fields: list[str] | None
    ) -> tuple[Reading, str]:
        text = point.locate(line_match, payload, fields)
        if text is None:
            return Reading(point.key, None, Quality.BAD, Reason.DEVICE_ERROR), "not in the line"
        value, quality, reason, why = convert(point.point, text, match=point.match, labels=point.labels)
        return Reading(point.key, value, quality, reason), why

    def _problems(self, readings: Sequence[tuple[Reading, str]]) -> tuple[tuple[str, str], ...]:
        problems = tuple((r.key, why) for r, why in readings if r.quality is not Quality.GOOD)
        self.stats.bad_values += len(problems)
        return problems

    def _check(self, raw: bytes, text: str) -> tuple[str, re.Match[str] | None] | None:
        """(payload, line match) when the checksum holds, else None."""
        config = self._checksum
        assert config is not None
        if self._delimiter is not None:
            at = raw.rfind(self._delimiter)
            if at < 0:
                return None
            covered_end = at + len(self._delimiter) if config.include_delimiter else at
            given_text = raw[at + len(self._delimiter) :].decode("ascii", errors="replace")
            given = _hex_value(given_text, config.hex_digits)
            covered = raw[config.skip : covered_end]
            if given is None or given != int(checksum_text(config, covered), 16):
                return None
            return raw[:at].decode(self._encoding, errors="replace"), None
        # The checksum is a group of the line pattern: it covers what comes before the group.
        if self._pattern is None or config.group is None:
            return None
        found = self._pattern.search(text)
        if found is None or found.group(config.group) is None:
            return None
        given = _hex_value(found.group(config.group), config.hex_digits)
        covered = text[config.skip : found.start(config.group)].encode(self._encoding, errors="replace")
        if given is None or given != int(checksum_text(config, covered), 16):
            return None
        return text, found

    def _bad_checksum(self, text: str) -> ParseResult:
        self.stats.bad_checksum += 1
        if self._bad_run == 0:
            self.stats.checksum_bursts += 1
            _LOG.warning("serial_line.bad_checksum", device=self._name, line=text[:80])
        self._bad_run += 1
        return ParseResult(LineStatus.BAD_CHECKSUM)

    def _checksum_ok(self) -> None:
        if self._bad_run:
            _LOG.info("serial_line.checksum_recovered", device=self._name, rejected=self._bad_run)
            self._bad_run = 0
