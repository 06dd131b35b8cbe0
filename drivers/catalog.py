"""The protocol packages this gateway ships. Each one's ``plugin`` module registers its bus types
with ``drivers.registry`` when imported; this list is the only place that names them."""

from __future__ import annotations

import importlib

__all__ = ["PACKAGES", "load"]

PACKAGES: tuple[str, ...] = (
    "drivers.modbus",
    "drivers.opcua",
    "drivers.gb26875",
    "drivers.bacnet",
    "drivers.serial_line",
)

_loaded = False


def load() -> None:
    """Import every protocol's plugin module once (idempotent, cheap after the first call)."""
    global _loaded  # noqa: PLW0603 - a process-wide one-time import
    if _loaded:
        return
    _loaded = True
    for package in PACKAGES:
        importlib.import_module(f"{package}.plugin")
