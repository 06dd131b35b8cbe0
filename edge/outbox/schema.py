"""How outbox rows are laid out and encoded on disk.

Telemetry is the bulk of the database, so a row is kept small: the point id is interned into
``points`` and stored as an integer, the value goes into an untyped column (SQLite keeps
integers, floats, text and NULL as they are), and quality, reason and the two value cases
SQLite cannot keep (``bool`` and NaN) share one small integer, ``flags``:

=========  ===========================================================
bits 0-1   ``Quality`` value
bits 2-6   reason code (``REASON_CODES``; append-only, never renumber)
bit 7      the value is a ``bool`` (SQLite stores it as 0/1)
bit 8      the value is a float NaN (SQLite would turn it into NULL)
=========  ===========================================================

Event ``data`` is msgpack. Lanes are stored by their ``Lane`` string value.
"""

from __future__ import annotations

from typing import Final

from core.model import Quality, Reason, Value

__all__ = [
    "BOOL_FLAG",
    "NAN_FLAG",
    "QUALITY_MASK",
    "REASON_CODES",
    "REASON_FLAGS",
    "decode_flags",
    "decode_value",
]

# Stored in every row ever written: a code may be added at the end, never changed or reused.
REASON_CODES: Final[dict[str, int]] = {
    "": 0,
    "comm_failure": 1,
    "device_error": 2,
    "stale": 3,
    "out_of_range": 4,
    "config_error": 5,
    "not_yet_read": 6,
    "out_of_service": 7,
}
_REASON_BY_CODE: Final[dict[int, str]] = {code: name for name, code in REASON_CODES.items()}

QUALITY_MASK: Final = 0b11
_REASON_SHIFT: Final = 2
_REASON_MASK: Final = 0b11111
BOOL_FLAG: Final = 1 << 7
NAN_FLAG: Final = 1 << 8

# Pre-shifted so that the hot path does one dict lookup and one ``|`` per sample. Keyed by the
# enum members; ``Reason`` hashes and compares as its string value, so plain strings work too.
REASON_FLAGS: Final[dict[str, int]] = {
    Reason(name): code << _REASON_SHIFT for name, code in REASON_CODES.items()
}


def decode_flags(flags: int) -> tuple[int, str]:
    """``(quality, reason)`` of a stored row."""
    quality = flags & QUALITY_MASK
    reason = _REASON_BY_CODE.get((flags >> _REASON_SHIFT) & _REASON_MASK, "")
    return quality, reason


def decode_value(raw: object, flags: int) -> Value:
    if flags & BOOL_FLAG:
        return bool(raw)
    if flags & NAN_FLAG:
        return float("nan")
    if raw is None or isinstance(raw, int | float | str):
        return raw
    # Only an older or foreign writer could have put a blob here; keep it visible, not lost.
    if isinstance(raw, bytes):
        return raw.hex()
    return str(raw)


def _check_quality_fits() -> None:
    # Three quality levels fit in two bits; a fourth member would silently corrupt flags.
    if max(Quality) > QUALITY_MASK:
        raise AssertionError("Quality no longer fits in the outbox flags")
    missing = {r.value for r in Reason} - REASON_CODES.keys()
    if missing:
        raise AssertionError(f"core.model.Reason members without an outbox code: {sorted(missing)}")


_check_quality_fits()
