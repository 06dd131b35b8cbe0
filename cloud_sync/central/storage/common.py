"""What both storage backends share: small pure helpers and the shapes their queries return."""

from __future__ import annotations

import math
from typing import Any, Final

__all__ = ["ALARM_STATS_BY", "finite", "missing_ranges", "state_versions"]

ALARM_STATS_BY: Final = ("class", "priority", "estate", "gateway", "state", "day", "hour")
_VERSION_KEYS: Final = ("firmware_version", "config_version", "site_name", "version")


def state_versions(state: dict[str, Any]) -> dict[str, str]:
    """What a gateway's state message says about itself (firmware/config version, site name)."""
    out: dict[str, str] = {}
    for key in _VERSION_KEYS:
        value = state.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            out[key] = str(value)[:100]
    if "firmware_version" not in out and "version" in out:
        out["firmware_version"] = out["version"]
    out.pop("version", None)
    return out


def finite(value: Any) -> Any:
    # JSON has no NaN or infinity; a value that is not a number is reported as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def missing_ranges(acked: int, seqs: list[int], limit: int) -> list[tuple[int, int]]:
    """Gaps below the highest stored seq, as inclusive ranges, given the seqs stored above ``acked``."""
    missing: list[tuple[int, int]] = []
    expected = acked + 1
    for seq in seqs:
        if seq > expected:
            missing.append((expected, seq - 1))
            if len(missing) >= limit:
                break
        expected = seq + 1
    return missing
