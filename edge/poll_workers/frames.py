"""The frames between the gateway and its poll workers: pure encoding, no I/O.

A frame is a 4-byte big-endian length and a msgpack array whose first item says what it is.
Samples travel as flat rows (point code, value, quality, receipt time, reason, source time)
batched per coordinator call, a point's id sent once and then only its code, so the main process
builds exactly the ``Sample`` objects an in-process coordinator would have handed it.

Worker → gateway: ``S`` samples, ``E`` an event, ``T`` per-device statistics, ``W`` a write's
result, ``R`` ready (devices built). Gateway → worker: ``W`` a write, ``Q`` quit.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import msgpack

from core.errors import (
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    FramingError,
    GatehouseError,
    TransportError,
)
from core.model import Event, Quality, Reason, Sample
from edge.coordinator import CoordinatorStats

__all__ = [
    "HEADER",
    "apply_stats_row",
    "stats_row",
    "PointCodes",
    "PointNames",
    "MAX_FRAME",
    "FrameError",
    "decode_body",
    "decode_event",
    "encode_error",
    "event_body",
    "frame",
    "raise_error",
]

HEADER: Final = struct.Struct(">I")
# A batch of a few thousand samples is well under a megabyte; anything larger is a broken stream.
MAX_FRAME: Final = 16 * 1024 * 1024

_QUALITIES: Final = tuple(Quality)
_REASONS: Final = {r.value: r for r in Reason}


class FrameError(GatehouseError):
    """A frame that cannot be read: the stream is no longer trusted and the worker is restarted."""


def frame(body: Sequence[Any]) -> bytes:
    data: bytes = msgpack.packb(body, use_bin_type=True)
    return HEADER.pack(len(data)) + data


def decode_body(data: bytes) -> list[Any]:
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise FrameError(f"unreadable frame: {exc}") from exc
    if not isinstance(body, list) or not body or not isinstance(body[0], str):
        raise FrameError("a frame must be a list starting with its kind")
    return body


class PointCodes:
    """The worker's side of point ids on the wire: each id travels once as text, then as its
    number. Fewer bytes to pack and, in the gateway, the same ``str`` object for a point every
    time instead of a new one per sample."""

    __slots__ = ("_codes",)

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def samples_body(self, samples: Iterable[Sample]) -> list[Any]:
        """``["S", [[code, new point id], ...], rows]`` with rows of (code, value, quality,
        receipt time, reason, source time)."""
        codes = self._codes
        new: list[list[Any]] = []
        rows: list[list[Any]] = []
        for s in samples:
            code = codes.get(s.point_id)
            if code is None:
                code = codes[s.point_id] = len(codes)
                new.append([code, s.point_id])
            rows.append([code, s.value, int(s.quality), s.receipt_ts, s.reason.value, s.source_ts])
        return ["S", new, rows]


class PointNames:
    """The gateway's side of :class:`PointCodes`: one table per worker process."""

    __slots__ = ("_names",)

    def __init__(self) -> None:
        self._names: list[str] = []

    def samples(self, body: Sequence[Any]) -> list[Sample]:
        try:
            _, new, rows = body
            names = self._names
            for code, point_id in new:
                if code != len(names) or not isinstance(point_id, str):
                    raise FrameError(f"point code {code} out of order")
                names.append(point_id)
            return [
                Sample(names[code], value, _QUALITIES[quality], ts, _REASONS[reason], source_ts)
                for code, value, quality, ts, reason, source_ts in rows
            ]
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise FrameError(f"bad sample rows: {exc}") from exc


def event_body(event: Event) -> list[Any]:
    return ["E", event.kind, event.source, event.ts, event.data]


def decode_event(body: Sequence[Any]) -> Event:
    try:
        _, kind, source, ts, data = body
    except ValueError as exc:
        raise FrameError("bad event frame") from exc
    if not isinstance(kind, str) or not isinstance(source, str) or not isinstance(data, Mapping):
        raise FrameError("bad event frame")
    return Event(kind, source, float(ts), dict(data))


# A write's failure crosses the process boundary as (class name, message, code) and is raised
# again as the same class, so the rules and the dashboard see what an in-process write raises.
_ERRORS: Final[dict[str, type[Exception]]] = {
    cls.__name__: cls
    for cls in (DeviceTimeout, ConnectionLost, FramingError, TransportError, KeyError, ValueError)
}


def encode_error(exc: BaseException) -> list[Any]:
    if isinstance(exc, DeviceError):
        return ["DeviceError", str(exc), exc.code]
    name = type(exc).__name__ if type(exc).__name__ in _ERRORS else "TransportError"
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return [name, str(message), None]


def raise_error(error: Sequence[Any]) -> None:
    name, message, code = error
    if name == "DeviceError":
        raise DeviceError(str(message), code=code if isinstance(code, int) else None)
    raise _ERRORS.get(str(name), TransportError)(str(message))


_STATS_FIELDS: Final = (
    "polls_ok",
    "polls_failed",
    "reads_ok",
    "reads_failed",
    "device_errors",
    "skipped_ticks",
    "last_latency_s",
    "last_ok_wall",
)


def stats_row(stats: CoordinatorStats, online: bool | None) -> list[Any]:
    """A device's statistics as a ``T`` frame carries them, with whether it is online."""
    return [*(getattr(stats, f) for f in _STATS_FIELDS), list(stats.lateness_s), online]


def apply_stats_row(stats: CoordinatorStats, row: Sequence[Any]) -> bool | None:
    """Copy a ``stats_row`` into ``stats``; returns the online flag."""
    try:
        *values, lateness, online = row
        if len(values) != len(_STATS_FIELDS):
            raise FrameError("bad statistics row")
        for name, value in zip(_STATS_FIELDS, values, strict=True):
            setattr(stats, name, value)
        stats.lateness_s.clear()
        stats.lateness_s.extend(lateness)
    except (TypeError, ValueError) as exc:
        raise FrameError(f"bad statistics row: {exc}") from exc
    return None if online is None else bool(online)
