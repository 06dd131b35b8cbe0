"""The record of devices deleted from the site (R5.3), kept so their history can outlive them.

The batch device screen (``edge.dashboard.routes_devices``) writes it when an administrator
deletes devices; ``edge.retention`` reads it to drop a deleted device's history once
``dashboard.deleted_history_days`` have passed since the deletion. It lives on its own so that
retention does not have to import the dashboard.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import structlog

__all__ = ["DELETED_FILE", "deleted_devices", "record_deleted"]

_LOG = structlog.get_logger(__name__)
DELETED_FILE = "deleted-devices.json"


def deleted_devices(data_dir: Path) -> dict[str, float]:
    """Device id → when it was deleted (wall seconds); empty when nothing was deleted."""
    try:
        raw = json.loads((data_dir / DELETED_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        _LOG.warning("deleted-devices record unreadable", error=str(exc))
        return {}
    return {str(k): float(v) for k, v in raw.items()}


def record_deleted(data_dir: Path, ids: Iterable[str], now: float) -> None:
    """Add ``ids`` (first deletion time wins), replacing the file atomically."""
    record = deleted_devices(data_dir)
    for device in ids:
        record.setdefault(device, now)
    tmp = data_dir / (DELETED_FILE + ".tmp")
    tmp.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
    os.replace(tmp, data_dir / DELETED_FILE)
