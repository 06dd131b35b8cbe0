"""Per-point tests of alarm definitions: thresholds with hysteresis, state bits, enum codes.

Each test is a closure ``(value, raw_active) -> raw_active | None``; ``None`` means the value
cannot be judged (wrong type) and the alarm keeps what it had. Deadband is hysteresis: a high
alarm sets above the setpoint and clears only below ``setpoint - deadband``, so a value hovering
at the setpoint does not chatter. A test is idempotent for a repeated value, which is what lets
the engine skip unchanged samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rules.compiled import AlarmSpec

__all__ = ["TestFn", "threshold_test"]

TestFn = Callable[[Any, bool], bool | None]


def threshold_test(spec: AlarmSpec) -> TestFn | None:
    """(value, currently raw-active) → raw active, or None when the value cannot be judged."""
    sp, db = spec.setpoint, spec.deadband
    kind = spec.kind
    if kind in ("high", "high_high"):
        off = sp - db

        def high(v: Any, raw: bool) -> bool | None:
            if v.__class__ is not float and v.__class__ is not int:
                return None
            return v > sp or (raw and v > off)

        return high
    if kind in ("low", "low_low"):
        on = sp + db

        def low(v: Any, raw: bool) -> bool | None:
            if v.__class__ is not float and v.__class__ is not int:
                return None
            return v < sp or (raw and v < on)

        return low
    if kind == "state":
        when, bit = spec.when, spec.bit
        if bit is None:
            return lambda v, raw: None if v is None else bool(v) is when
        mask = 1 << bit

        def state_bit(v: Any, raw: bool) -> bool | None:
            if isinstance(v, bool) or not isinstance(v, int | float):
                return None
            return bool(int(v) & mask) is when

        return state_bit
    if kind == "enum":
        code = spec.code

        def enum_code(v: Any, raw: bool) -> bool | None:
            if isinstance(v, bool) or not isinstance(v, int | float):
                return None
            return v == code

        return enum_code
    return None
