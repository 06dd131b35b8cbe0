"""Central's acknowledgement message (MQTT ``gh/v1/{gw}/ack`` and the HTTPS POST answer). Pure.

msgpack map, keys in this order: ``v`` (1), ``lane``, ``acked`` (highest contiguous sequence
stored, 0 = none), ``missing`` (``[[from, to], ...]`` inclusive ranges above ``acked`` that central
lacks), ``ts`` (central's wall clock, float seconds). See docs/protocol.md.

On the wire this map travels only inside central's signed downlink message
(``cloud_sync.downlink``): a gateway never acts on a bare ack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgpack

from cloud_sync.errors import EnvelopeError
from cloud_sync.ports import Lane
from cloud_sync.wire import Limits, bounded_unpackb

__all__ = ["ACK_VERSION", "MAX_ACK_BYTES", "MAX_MISSING_RANGES", "AckMessage", "decode_ack", "encode_ack"]

ACK_VERSION: Final = 1
MAX_ACK_BYTES: Final = 64 * 1024
# Keeps an ack small; a gateway asks again after it has resent these.
MAX_MISSING_RANGES: Final = 256
_KEYS: Final = ("v", "lane", "acked", "missing", "ts")
_MAX_UINT64: Final = 2**64 - 1
# No container or string in a valid ack is larger than these, so nothing bigger is ever built.
_LIMITS: Final = Limits(array=MAX_MISSING_RANGES, map=len(_KEYS), str=16, bin=0)


@dataclass(frozen=True, slots=True)
class AckMessage:
    lane: Lane
    acked: int
    missing: tuple[tuple[int, int], ...]
    ts: float

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": ACK_VERSION,
            "lane": str(self.lane),
            "acked": self.acked,
            "missing": [[a, b] for a, b in self.missing],
            "ts": float(self.ts),
        }


def encode_ack(ack: AckMessage) -> bytes:
    packed: bytes = msgpack.packb(ack.to_wire(), use_bin_type=True)
    return packed


def _uint(value: Any) -> bool:
    return type(value) is int and 0 <= value <= _MAX_UINT64


def decode_ack(payload: bytes) -> AckMessage:
    if len(payload) > MAX_ACK_BYTES:
        raise EnvelopeError("ack message too large", reason="too_large")
    obj = bounded_unpackb(payload, _LIMITS, "ack")
    if not isinstance(obj, dict) or set(obj) != set(_KEYS):
        raise EnvelopeError(f"ack must be a map with keys {list(_KEYS)}")
    if obj["v"] != ACK_VERSION or type(obj["v"]) is not int:
        raise EnvelopeError(f"unsupported ack version {obj['v']!r}", reason="unsupported_version")
    lane, acked, missing, ts = obj["lane"], obj["acked"], obj["missing"], obj["ts"]
    if lane not in (Lane.EVENT.value, Lane.TELEMETRY.value):
        raise EnvelopeError(f"unknown lane {lane!r}")
    if not _uint(acked):
        raise EnvelopeError("acked is not an unsigned integer")
    if not isinstance(ts, float | int) or isinstance(ts, bool):
        raise EnvelopeError("ts is not a number")
    if not isinstance(missing, list) or len(missing) > MAX_MISSING_RANGES:
        raise EnvelopeError("missing is not an array of at most 256 ranges")
    ranges: list[tuple[int, int]] = []
    floor = acked
    for item in missing:
        if not (isinstance(item, list) and len(item) == 2 and _uint(item[0]) and _uint(item[1])):
            raise EnvelopeError("a missing range is not [from, to]")
        lo, hi = item
        if not floor < lo <= hi:
            raise EnvelopeError("missing ranges must be ascending, disjoint and above acked")
        ranges.append((lo, hi))
        floor = hi
    return AckMessage(lane=Lane(lane), acked=acked, missing=tuple(ranges), ts=float(ts))
