"""Configuration models of plain serial-line devices: the ``serial_line`` bus, the line format a
profile describes (poll command or unsolicited lines, pattern, checksum), devices and points.

A serial-line device prints text lines, on its own (a fire panel's printer port) or in answer
to an ASCII command (``READ\\r`` to a water-quality analyser). The profile's ``line`` block says
how its lines look; a device may override any field of it under its own ``line`` and gives its
``address`` when several devices share one line. Each point says where its value is in the line:
a named group of the line's ``pattern``, its own ``pattern``, fixed ``columns`` or a ``field``
after splitting the line.
"""

from __future__ import annotations

import enum
import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from drivers.config_base import (
    Access,
    BusBase,
    ConfigModel,
    DeviceBase,
    PointBase,
    ProfileBase,
    make_patch_model,
)

__all__ = [
    "ChecksumConfig",
    "ChecksumKind",
    "LineFormat",
    "LineFormatPatch",
    "LineMode",
    "SerialLineBus",
    "SerialLineDeviceConfig",
    "SerialLinePointConfig",
    "SerialLinePointPatch",
    "SerialLineProfile",
    "LineValueType",
    "effective_format",
    "terminator_bytes",
]

# The three line ends devices use; anything else must be one byte (see ``terminator_bytes``).
_STANDARD_TERMINATORS = ("\r\n", "\n", "\r")
_HEX_BYTE = re.compile(r"^0[xX]([0-9a-fA-F]{2})$")
# In GB18030 every byte from 0x30 up can be the second or fourth byte of a multi-byte character
# (GB 18030-2005 §6), so only a terminator below 0x30 can never occur inside a character.
_GB18030_SAFE_BELOW = 0x30


class LineValueType(enum.StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"
    ENUM = "enum"


class LineMode(enum.StrEnum):
    POLL = "poll"  # send ``command``, parse the one-line answer
    UNSOLICITED = "unsolicited"  # every line the device prints is parsed as it arrives


class ChecksumKind(enum.StrEnum):
    SUM8 = "sum8"  # sum of the covered bytes mod 256, two hex digits
    XOR8 = "xor8"  # XOR of the covered bytes, two hex digits
    CRC16_MODBUS = "crc16_modbus"  # CRC-16/MODBUS of the covered bytes, four hex digits


def terminator_bytes(terminator: str) -> bytes:
    """The bytes of a configured terminator: ``\\r\\n``, ``\\n``, ``\\r``, one character
    (written ``"\\x03"`` in YAML) or ``0xNN``."""
    hex_match = _HEX_BYTE.match(terminator)
    if hex_match:
        return bytes((int(hex_match.group(1), 16),))
    if terminator in _STANDARD_TERMINATORS:
        return terminator.encode("ascii")
    if len(terminator) == 1 and ord(terminator) < 256:
        return bytes((ord(terminator),))
    raise ValueError(r"a terminator is \r\n, \n, \r, one byte (e.g. '\x03') or 0xNN")


def _compiles(pattern: str | None, what: str) -> str | None:
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{what} is not a valid regular expression: {exc}") from exc
    return pattern


def _only_address_placeholder(text: str | None, what: str) -> str | None:
    if text is not None:
        try:
            text.format(address="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{what} may contain only the placeholder {{address}} (write {{{{ for a literal '{{'): {exc}"
            ) from exc
    return text


class ChecksumConfig(ConfigModel):
    """Where a line's checksum is and what it covers. The checksum is hex text, either after
    the last ``delimiter`` (``...PH=7.12*5A``) or in a named ``group`` of the line's pattern;
    it covers the bytes from ``skip`` up to the delimiter (or the group's start)."""

    kind: ChecksumKind
    delimiter: str | None = Field(
        default="*", min_length=1, description="the checksum follows the last of these"
    )
    group: str | None = Field(
        default=None, description="named group of the line pattern holding the checksum"
    )
    skip: int = Field(
        default=0, ge=0, le=16, description="leading bytes not covered (a '$' or ':' start mark)"
    )
    include_delimiter: bool = Field(default=False, description="the delimiter itself is covered")
    byte_order: Literal["big", "little"] = Field(
        default="big", description="crc16_modbus: 'big' prints the value, 'little' the bytes as sent on RTU"
    )

    @model_validator(mode="after")
    def _one_place(self) -> ChecksumConfig:
        if self.group is not None and "delimiter" in self.model_fields_set and self.delimiter is not None:
            raise ValueError("give 'delimiter' or 'group', not both")
        return self

    @property
    def by_group(self) -> bool:
        return self.group is not None

    @property
    def hex_digits(self) -> int:
        return 4 if self.kind is ChecksumKind.CRC16_MODBUS else 2


class LineFormat(ConfigModel):
    """How one model of device talks: poll or unsolicited, its command and its lines."""

    mode: LineMode = LineMode.POLL
    command: str | None = Field(
        default=None,
        min_length=1,
        description=r"poll mode: what to send, e.g. 'READ\r'; '{address}' is replaced",
    )
    prefix: str | None = Field(
        default=None,
        description="a line is this device's when it starts with this ('{address}' is replaced); "
        "default: the device's address when it has one",
    )
    pattern: str | None = Field(
        default=None, description="regular expression searched in the line; named groups"
    )
    separator: str | None = Field(
        default=None,
        min_length=1,
        description="splits the line for 'field' points; default runs of whitespace",
    )
    checksum: ChecksumConfig | None = None
    silence_timeout_s: float | None = Field(
        default=None, gt=0, le=86400, description="unsolicited: offline after this long without a line"
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        return _compiles(value, "pattern")

    @field_validator("command", "prefix")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        return _only_address_placeholder(value, "this text")

    @model_validator(mode="after")
    def _shape(self) -> LineFormat:
        if self.mode is LineMode.POLL and self.command is None:
            raise ValueError("poll mode needs a 'command' to send")
        if self.mode is LineMode.POLL and self.silence_timeout_s is not None:
            raise ValueError("'silence_timeout_s' is for unsolicited mode (a polled device times out)")
        if self.checksum is not None and self.checksum.by_group:
            groups = re.compile(self.pattern).groupindex if self.pattern else {}
            if self.checksum.group not in groups:
                raise ValueError(f"checksum group '{self.checksum.group}' is not a named group of 'pattern'")
        return self

    def address_prefix(self, address: str | None) -> str | None:
        """The prefix lines of the device at ``address`` start with, or None for every line."""
        if self.prefix is not None:
            return self.prefix.format(address=address or "")
        return address

    def command_for(self, address: str | None) -> str | None:
        return None if self.command is None else self.command.format(address=address or "")


class LineFormatPatch(ConfigModel):
    """A device's change to its profile's line format: only the fields it names change (an
    explicit ``checksum: null`` removes the profile's checksum)."""

    mode: LineMode | None = None
    command: str | None = None
    prefix: str | None = None
    pattern: str | None = None
    separator: str | None = None
    checksum: ChecksumConfig | None = None
    silence_timeout_s: float | None = None


def effective_format(profile_line: LineFormat | None, patch: LineFormatPatch | None) -> LineFormat:
    """The profile's line format with the device's changes; raises ``ValueError`` (pydantic's
    ``ValidationError``) when the result does not hold together."""
    base: dict[str, Any] = {} if profile_line is None else profile_line.model_dump(exclude_unset=True)
    if patch is not None:
        base.update({name: getattr(patch, name) for name in patch.model_fields_set})
    return LineFormat.model_validate(base)


class SerialLinePointConfig(PointBase):
    """One value in a device's lines: where it is (one of ``group``, ``pattern``, ``columns``,
    ``field``; none means the group named like the point) and how to read it."""

    type: LineValueType = LineValueType.FLOAT
    group: str | None = Field(default=None, description="named group of the line's pattern")
    pattern: str | None = Field(
        default=None, description="own regular expression; its group 'value', else group 1, else the match"
    )
    columns: tuple[int, int] | None = Field(
        default=None, description="[start, end): 0-based character columns, end excluded"
    )
    field: int | None = Field(
        default=None, ge=-64, le=255, description="index after splitting the line (negative from the end)"
    )
    match: str | None = Field(default=None, description="bool: true when this regular expression is found")
    true_values: list[str] | None = Field(default=None, description="bool: texts meaning true")
    false_values: list[str] | None = Field(
        default=None, description="bool: texts meaning false (with true_values: any other text is bad)"
    )

    @field_validator("pattern", "match")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        return _compiles(value, "this")

    @model_validator(mode="after")
    def _shape(self) -> SerialLinePointConfig:
        places = [n for n in ("group", "pattern", "columns", "field") if getattr(self, n) is not None]
        if len(places) > 1:
            raise ValueError(f"say where the value is once: {' and '.join(places)} both given")
        if self.columns is not None:
            start, end = self.columns
            if start < 0 or end <= start or end > 4096:
                raise ValueError("columns are [start, end) with 0 <= start < end <= 4096")
        if self.type is not LineValueType.BOOL:
            for name in ("match", "true_values", "false_values"):
                if getattr(self, name) is not None:
                    raise ValueError(f"'{name}' is for type 'bool'")
        elif self.match is not None and (self.true_values is not None or self.false_values is not None):
            raise ValueError("a bool point uses 'match' or 'true_values'/'false_values', not both")
        if self.false_values is not None and self.true_values is None:
            raise ValueError("'false_values' needs 'true_values'")
        if self.access is not Access.READ:
            raise ValueError("serial-line points are read-only (access 'r')")
        return self

    @property
    def group_name(self) -> str | None:
        """The pattern group this point reads, or None if it finds its value otherwise."""
        if self.pattern is not None or self.columns is not None or self.field is not None:
            return None
        return self.group or self.id


SerialLinePointPatch: Any = make_patch_model(SerialLinePointConfig)


class SerialLineProfile(ProfileBase):
    """A serial-line device model: how its lines look and which values they carry."""

    protocol: Literal["serial_line"]
    line: LineFormat
    points: list[SerialLinePointConfig] = Field(min_length=1)


class SerialLineDeviceConfig(DeviceBase):
    essential_keys: ClassVar[frozenset[str]] = DeviceBase.essential_keys | {"address", "line"}

    address: str | None = Field(
        default=None, min_length=1, max_length=32, description="the device's address on a shared line"
    )
    line: LineFormatPatch | None = Field(default=None, description="changes to the profile's line format")
    points: list[SerialLinePointPatch] = Field(default_factory=list)


class SerialLineBus(BusBase):
    """One serial port carrying text lines."""

    type: Literal["serial_line"]
    port: str = Field(description="serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    baudrate: int = Field(default=9600, ge=50, le=921600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    terminator: str = Field(
        default="\r\n", description=r"'\r\n', '\n', '\r', one byte like '\x03', or '0xNN'"
    )
    encoding: Literal["ascii", "utf-8", "gb18030"] = "ascii"
    inter_command_gap_ms: int = Field(default=50, ge=0, le=10000, description="quiet time between commands")
    max_line_bytes: int = Field(default=1024, ge=16, le=65536, description="longer lines are discarded")

    @field_validator("terminator")
    @classmethod
    def _terminator(cls, value: str) -> str:
        terminator_bytes(value)
        return value

    @model_validator(mode="after")
    def _terminator_fits_encoding(self) -> SerialLineBus:
        term = terminator_bytes(self.terminator)
        if self.encoding == "gb18030" and any(b >= _GB18030_SAFE_BELOW for b in term):
            raise ValueError(
                "with encoding gb18030 the terminator must be a control byte below 0x30: "
                "higher bytes occur inside Chinese characters"
            )
        if self.encoding == "utf-8" and any(b >= 0x80 for b in term):
            raise ValueError("with encoding utf-8 the terminator must be an ASCII byte")
        return self

    @property
    def terminator_bytes(self) -> bytes:
        return terminator_bytes(self.terminator)
