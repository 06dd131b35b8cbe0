"""Values between bacpypes3 and the gateway: a decoded property becomes a point's value (bool,
float, int or enum code, scaled), and a point's value becomes what WriteProperty sends.

A BACnet binary present-value is the enumeration inactive(0)/active(1); a multi-state one is a
state number from 1; an analog one a Real. Scale and offset apply to numeric points only.
"""

from __future__ import annotations

import math
from typing import Any

from core.model import Value
from drivers.bacnet.config import BacnetPointConfig, ValueType

__all__ = ["RELINQUISH", "decode", "encode", "flags_of", "is_null"]

# The value a linkage restore step writes to relinquish a command (``write(key, None)`` too).
RELINQUISH = "relinquish"


def is_null(value: Any) -> bool:
    return value is None or type(value).__name__ == "Null"


def flags_of(value: Any) -> list[int] | None:
    """Status flags (a bacpypes3 BitString) as four ints, or None."""
    if value is None or is_null(value):
        return None
    try:
        return [int(bit) for bit in list(value)[:4]]
    except (TypeError, ValueError):
        return None


def decode(point: BacnetPointConfig, value: Any) -> Value:
    """The point's value from a decoded property value. Raises ``ValueError`` when the value
    does not fit the point's type (a string where a number was expected)."""
    if is_null(value):
        return None
    vtype = point.value_type
    if vtype is ValueType.BOOL:
        if isinstance(value, str):
            return value == "active"
        return bool(int(value))
    if vtype in (ValueType.INT, ValueType.ENUM):
        number = int(value)
        if point.scale != 1 or point.offset != 0:
            return number * point.scale + point.offset
        return number
    number_f = float(value)
    if not math.isfinite(number_f):
        return math.nan
    if point.scale != 1 or point.offset != 0:
        return number_f * point.scale + point.offset
    return number_f


def encode(point: BacnetPointConfig, value: Value) -> Any:
    """What to write for ``value``: a plain Python number bacpypes3 casts to the property's
    type. Enum points take the code or its label. Raises ``ValueError``."""
    vtype = point.value_type
    if vtype is ValueType.BOOL:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("active", "on", "true", "1"):
                return 1
            if lowered in ("inactive", "off", "false", "0"):
                return 0
            raise ValueError(f"point '{point.id}': {value!r} is not a binary value")
        if value is None:
            raise ValueError(f"point '{point.id}': no value")
        return 1 if value else 0
    if isinstance(value, str) and point.enum:
        for code, label in point.enum.items():
            if label == value:
                return code
        raise ValueError(f"point '{point.id}': {value!r} is not one of {sorted(point.enum.values())}")
    if value is None or isinstance(value, str) and not _numeric(value):
        raise ValueError(f"point '{point.id}': {value!r} is not a number")
    number = float(value)
    if point.scale != 1 or point.offset != 0:
        number = (number - point.offset) / point.scale
    if vtype in (ValueType.INT, ValueType.ENUM):
        return round(number)
    return number


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
