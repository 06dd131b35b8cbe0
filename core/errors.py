"""The project's small error tree. Library exceptions are translated into these at the adapter
boundary (``raise ... from exc``) so that callers never see pymodbus, paho or sqlite types.

::

    GatehouseError
    ├── ConfigError            a site or profile file is wrong; carries every problem found
    ├── TransportError         the bytes did not get there and back (retry, back off)
    │   ├── DeviceTimeout      no answer within the timeout budget
    │   ├── ConnectionLost     could not connect, or the connection dropped
    │   └── FramingError       an answer arrived but could not be parsed
    ├── DeviceError            the device answered and said no (Modbus exception code, reject)
    └── StorageError           the outbox could not do what was asked
        └── QuotaExceeded      the disk quota is full of events; telemetry is refused

Like ``core.model`` this module imports nothing else of the project: every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "ConnectionLost",
    "DeviceError",
    "DeviceTimeout",
    "FramingError",
    "GatehouseError",
    "QuotaExceeded",
    "StorageError",
    "TransportError",
]


class GatehouseError(Exception):
    """Root of every error the project raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One mistake in a configuration file, located as precisely as the YAML allows."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    path: str  # dotted path to the field, e.g. ``devices[3].points[0].address``
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"


class ConfigError(GatehouseError):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems) or "invalid configuration")


class TransportError(GatehouseError):
    """The request or its answer was lost on the way: worth retrying after a pause."""


class DeviceTimeout(TransportError):
    pass


class ConnectionLost(TransportError):
    pass


class FramingError(TransportError):
    pass


class DeviceError(GatehouseError):
    """The device answered with a refusal. Retrying the same request will not help."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class StorageError(GatehouseError):
    pass


class QuotaExceeded(StorageError):
    pass
