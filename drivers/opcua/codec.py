"""Pure conversions between OPC UA values and the gateway's: StatusCode → quality and reason,
a received value → an engineering value (scale, offset, range checks), and an engineering value
→ the raw value of the point's Variant type for a write. No I/O, no asyncua.

StatusCode severity is its top two bits: 00 good, 01 uncertain, 10/11 bad (OPC UA Part 4, 7.39).
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from dataclasses import dataclass

from core.model import Quality, Reason, Value
from drivers.opcua.config import DataType, OpcUaPointConfig

__all__ = [
    "VARIANT_TYPE_NAMES",
    "Converter",
    "deadband_raw",
    "encode",
    "quality_of",
]

# The asyncua ``ua.VariantType`` member for each point type.
VARIANT_TYPE_NAMES: dict[DataType, str] = {
    DataType.BOOL: "Boolean",
    DataType.SBYTE: "SByte",
    DataType.BYTE: "Byte",
    DataType.INT16: "Int16",
    DataType.UINT16: "UInt16",
    DataType.INT32: "Int32",
    DataType.UINT32: "UInt32",
    DataType.INT64: "Int64",
    DataType.UINT64: "UInt64",
    DataType.FLOAT: "Float",
    DataType.DOUBLE: "Double",
    DataType.STRING: "String",
}

_INT_RANGES: dict[DataType, tuple[int, int]] = {
    DataType.SBYTE: (-(2**7), 2**7 - 1),
    DataType.BYTE: (0, 2**8 - 1),
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}

# Bad codes that mean "the server cannot reach its own source" vs "this node is wrong".
_COMM_CODES = frozenset(
    {
        0x80050000,  # BadCommunicationError
        0x800A0000,  # BadTimeout
        0x80310000,  # BadNoCommunication
        0x808A0000,  # BadNotConnected
        0x80AE0000,  # BadConnectionClosed
        0x800D0000,  # BadServerNotConnected
        0x800E0000,  # BadServerHalted
        0x808B0000,  # BadDeviceFailure
        0x808C0000,  # BadSensorFailure
    }
)
_CONFIG_CODES = frozenset(
    {
        0x80330000,  # BadNodeIdInvalid
        0x80340000,  # BadNodeIdUnknown
        0x80350000,  # BadAttributeIdInvalid
        0x803A0000,  # BadNotReadable
        0x80740000,  # BadTypeMismatch
        0x803E0000,  # BadNotFound
        0x806F0000,  # BadNoMatch (a browse path that leads nowhere)
        0x80600000,  # BadBrowseNameInvalid
    }
)
_WAITING = 0x80320000  # BadWaitingForInitialData
_OUT_OF_RANGE = 0x803C0000  # BadOutOfRange
_UNCERTAIN_LAST_USABLE = 0x40900000  # UncertainLastUsableValue
_UNCERTAIN_EU_EXCEEDED = 0x40940000  # UncertainEngineeringUnitsExceeded
_SEVERITY_MASK = 0xC0000000
# Bits 0..15 of a StatusCode are info bits (limits, overflow); the code is the top 16.
_CODE_MASK = 0xFFFF0000


def quality_of(status: int) -> tuple[Quality, Reason]:
    """The quality and reason of a value that came with StatusCode ``status``."""
    severity = status & _SEVERITY_MASK
    if severity == 0:
        return Quality.GOOD, Reason.NONE
    code = status & _CODE_MASK
    if severity == 0x40000000:
        if code == _UNCERTAIN_LAST_USABLE:
            return Quality.UNCERTAIN, Reason.STALE
        if code == _UNCERTAIN_EU_EXCEEDED:
            return Quality.UNCERTAIN, Reason.OUT_OF_RANGE
        return Quality.UNCERTAIN, Reason.DEVICE_ERROR
    if code in _COMM_CODES:
        return Quality.BAD, Reason.COMM_FAILURE
    if code in _CONFIG_CODES:
        return Quality.BAD, Reason.CONFIG_ERROR
    if code == _WAITING:
        return Quality.BAD, Reason.NOT_YET_READ
    if code == _OUT_OF_RANGE:
        return Quality.BAD, Reason.OUT_OF_RANGE
    return Quality.BAD, Reason.DEVICE_ERROR


_GOOD = Quality.GOOD
_NO_REASON = Reason.NONE


@dataclass(frozen=True, slots=True)
class Converter:
    """How one point's received values become engineering values, compiled once per point."""

    scale: float
    offset: float
    low: float
    high: float
    checked: bool  # a range to check, or a scale that could make NaN/inf visible

    @classmethod
    def of(cls, point: OpcUaPointConfig) -> Converter:
        low = -math.inf if point.valid_min is None else float(point.valid_min)
        high = math.inf if point.valid_max is None else float(point.valid_max)
        checked = point.valid_min is not None or point.valid_max is not None
        return cls(point.scale, point.offset, low, high, checked)

    def __call__(self, raw: object) -> tuple[Value, Quality, Reason]:
        """``(value, quality, reason)`` of one received value (quality before the StatusCode)."""
        # The common case first, without the isinstance chain: an unscaled, unchecked float.
        if type(raw) is float and not self.checked and self.scale == 1 and self.offset == 0:
            if math.isfinite(raw):
                return raw, _GOOD, _NO_REASON
            return raw, Quality.BAD, Reason.OUT_OF_RANGE
        if isinstance(raw, bool) or raw is None or isinstance(raw, str):
            return raw, Quality.GOOD, Reason.NONE
        if isinstance(raw, int | float):
            value: int | float = raw
            if self.scale != 1 or self.offset != 0:
                value = raw * self.scale + self.offset
            if isinstance(value, float) and not math.isfinite(value):
                return value, Quality.BAD, Reason.OUT_OF_RANGE
            if self.checked and not (self.low <= value <= self.high):
                return value, Quality.BAD, Reason.OUT_OF_RANGE
            return value, Quality.GOOD, Reason.NONE
        if isinstance(raw, dt.datetime):
            return raw.isoformat(), Quality.GOOD, Reason.NONE
        if isinstance(raw, bytes):
            return raw.hex(), Quality.GOOD, Reason.NONE
        text = getattr(raw, "Text", None)  # LocalizedText
        if isinstance(text, str):
            return text, Quality.GOOD, Reason.NONE
        # Arrays, structures: a point is one scalar; say so rather than guess.
        return None, Quality.BAD, Reason.CONFIG_ERROR


def encode(point: OpcUaPointConfig, value: Value) -> bool | int | float | str:
    """The raw value to write for engineering value ``value`` (inverse scale, then the point's
    type). Raises ``ValueError`` for a value the type cannot hold."""
    data_type = point.type
    if data_type is None:
        raise ValueError(f"point '{point.id}' has no 'type'; cannot write it")
    if value is None:
        raise ValueError(f"point '{point.id}': cannot write null")
    if data_type is DataType.BOOL:
        if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
            return bool(value)
        raise ValueError(f"point '{point.id}' is bool; {value!r} is not")
    if data_type is DataType.STRING:
        if not isinstance(value, str):
            raise ValueError(f"point '{point.id}' is string; {value!r} is not")
        return value
    if isinstance(value, str):
        value = _enum_code(point, value)
    if isinstance(value, bool):
        value = int(value)
    raw = (value - point.offset) / point.scale if (point.scale != 1 or point.offset != 0) else value
    if data_type in (DataType.FLOAT, DataType.DOUBLE):
        raw = float(raw)
        if data_type is DataType.FLOAT and math.isfinite(raw):
            _check_float32(point, raw)
        return raw
    as_int = round(raw)
    if abs(raw - as_int) > 1e-6 * max(1.0, abs(raw)):
        raise ValueError(
            f"point '{point.id}' is {data_type.value}; {value!r} is not a whole raw value ({raw})"
        )
    low, high = _INT_RANGES[data_type]
    if not low <= as_int <= high:
        raise ValueError(
            f"point '{point.id}' is {data_type.value} ({low}..{high}); raw {as_int} does not fit"
        )
    return as_int


def deadband_raw(point: OpcUaPointConfig, deadband_abs: float | None) -> float | None:
    """The absolute data-change deadband in the server's units (the report policy's is in
    engineering units), or None when the point has none or is not numeric."""
    if not deadband_abs or point.type in (DataType.BOOL, DataType.STRING) or point.enum:
        return None
    return deadband_abs / abs(point.scale) if point.scale else None


def _enum_code(point: OpcUaPointConfig, label: str) -> int:
    for code, name in (point.enum or {}).items():
        if name == label:
            return code
    raise ValueError(f"point '{point.id}': {label!r} is not one of its enum labels")


def _check_float32(point: OpcUaPointConfig, raw: float) -> None:
    try:
        struct.pack("<f", raw)
    except OverflowError as exc:
        raise ValueError(f"point '{point.id}' is float; {raw} does not fit in 32 bits") from exc
