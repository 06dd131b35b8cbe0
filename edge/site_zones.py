"""The site file's ``zones:`` section (names of fire/linkage zones), validated by its owner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.config.checks import Issue

__all__ = ["check_zones"]


def check_zones(raw: Any, *, base_dir: Path) -> list[Issue]:
    """Located problems of the ``zones:`` section (a list of zone mappings)."""
    del raw, base_dir
    return []
