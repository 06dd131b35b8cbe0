"""The frames between the gateway and its poll workers: pure encoding, no I/O.

A frame is a 4-byte big-endian length and a msgpack array whose first item says what it is.
Samples travel as flat rows (point, value, quality, receipt time, reason, source time) batched
per coordinator call, so the main process builds exactly the ``Sample`` objects an in-process
coordinator would have handed it.

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

__all__ = [
    "HEADER",
    "MAX_FRAME",
    "FrameError",
    "decode_body",
    "decode_event",
    "decode_samples",
    "encode_error",
    "event_body",
    "frame",
    "raise_error",
    "sample_rows",
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


def sample_rows(samples: Iterable[Sample]) -> list[list[Any]]:
    return [[s.point_id, s.value, int(s.quality), s.receipt_ts, s.reason.value, s.source_ts] for s in samples]


def decode_samples(rows: Any) -> list[Sample]:
    try:
        return [
            Sample(point, value, _QUALITIES[quality], ts, _REASONS[reason], source_ts)
            for point, value, quality, ts, reason, source_ts in rows
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
