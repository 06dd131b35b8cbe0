"""Bounded msgpack reading for untrusted bytes: the signed outer layer and flat scalar maps. Pure.

A generic ``msgpack.unpackb`` builds whatever the bytes describe before anyone can look at it:
one byte per empty map or array becomes a Python object of 56–64 bytes, so an 8 MiB payload of
nested containers costs hundreds of MiB before it is rejected for having the wrong shape. The
layers a receiver reads *before* it has checked a signature are therefore read here without
building anything it did not ask for:

* :func:`split_signed` reads ``[magic, bin, bin(64)]`` byte by byte (every ``str``/``bin`` length
  format accepted, as docs/protocol.md requires) and returns slices of the input;
* :func:`scalar_map` reads a map whose keys and values must all be scalars (nil, bool, int,
  float, str, bin): it looks at each value's type byte first and refuses a container or an ext
  type without unpacking it.

:func:`bounded_unpackb` is ``unpackb`` with every ``max_*_len`` set by the caller, for the layers
that may hold containers (an ack's ``missing`` ranges, a verified batch's columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgpack

from cloud_sync.errors import EnvelopeError

__all__ = ["Limits", "bounded_unpackb", "scalar_map", "split_signed"]

_SIGNATURE_BYTES: Final = 64
# Type bytes of maps, arrays and ext types (fix, 16 and 32 forms; fixext and ext 8/16/32).
_CONTAINER_OR_EXT: Final = frozenset(
    [*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF, 0xC7, 0xC8, 0xC9, *range(0xD4, 0xD9)]
)
_STR_TYPES: Final = frozenset([*range(0xA0, 0xC0), 0xD9, 0xDA, 0xDB])


@dataclass(frozen=True, slots=True)
class Limits:
    """Largest container and string sizes ``bounded_unpackb`` accepts (each per object)."""

    array: int = 0
    map: int = 0
    str: int = 0
    bin: int = 0


def _malformed(message: str) -> EnvelopeError:
    return EnvelopeError(message, reason="malformed")


def _read_len(data: bytes, pos: int, width: int) -> tuple[int, int]:
    end = pos + width
    if end > len(data):
        raise _malformed("truncated length")
    return int.from_bytes(data[pos:end], "big"), end


def _read_str_or_bin(data: bytes, pos: int, *, want_str: bool) -> tuple[bytes, int]:
    """The content of the ``str`` (or ``bin``) at ``pos`` and the position after it."""
    if pos >= len(data):
        raise _malformed("truncated")
    tag = data[pos]
    pos += 1
    if want_str and 0xA0 <= tag <= 0xBF:
        size = tag & 0x1F
    elif want_str and tag in (0xD9, 0xDA, 0xDB):
        size, pos = _read_len(data, pos, {0xD9: 1, 0xDA: 2, 0xDB: 4}[tag])
    elif not want_str and tag in (0xC4, 0xC5, 0xC6):
        size, pos = _read_len(data, pos, {0xC4: 1, 0xC5: 2, 0xC6: 4}[tag])
    else:
        raise _malformed(f"expected {'str' if want_str else 'bin'}, found type byte 0x{tag:02x}")
    end = pos + size
    if end > len(data):
        raise _malformed("truncated content")
    return data[pos:end], end


def split_signed(payload: bytes, magic: str) -> tuple[bytes, bytes]:
    """``[magic (str), signed_bytes (bin), signature (bin, 64 bytes)]`` → (signed_bytes, signature).

    Nothing may follow the array. Raises :class:`EnvelopeError` (``malformed``) otherwise.
    """
    if not payload or payload[0] != 0x93:
        raise _malformed("not a msgpack array of 3 elements")
    found, pos = _read_str_or_bin(payload, 1, want_str=True)
    if found != magic.encode("ascii"):
        raise _malformed(f"unknown magic {found[:16]!r}")
    signed, pos = _read_str_or_bin(payload, pos, want_str=False)
    signature, pos = _read_str_or_bin(payload, pos, want_str=False)
    if len(signature) != _SIGNATURE_BYTES:
        raise _malformed("signature is not 64 bytes")
    if pos != len(payload):
        raise _malformed("bytes after the message")
    return signed, signature


def scalar_map(data: bytes, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    """A msgpack map of exactly ``keys`` in this order, every value a scalar, nothing after it."""
    unpacker = msgpack.Unpacker(
        raw=False,
        strict_map_key=True,
        max_buffer_size=max(len(data), 1),
        max_str_len=len(data),
        max_bin_len=len(data),
        max_array_len=0,
        max_map_len=len(keys),
        max_ext_len=0,
    )
    unpacker.feed(data)
    try:
        count = unpacker.read_map_header()
        if count != len(keys):
            raise _malformed(f"{what} has {count} entries, {len(keys)} expected")
        result: dict[str, Any] = {}
        for want in keys:
            if data[unpacker.tell()] not in _STR_TYPES:
                raise _malformed(f"{what}: a key is not a str")
            key = unpacker.unpack()
            if key != want:
                raise _malformed(f"{what}: key {key!r} where {want!r} belongs")
            if data[unpacker.tell()] in _CONTAINER_OR_EXT:
                raise _malformed(f"{what}: {want} is not a scalar")
            result[want] = unpacker.unpack()
        if unpacker.tell() != len(data):
            raise _malformed(f"bytes after the {what}")
    except IndexError as exc:  # data[tell()] past the end: truncated
        raise _malformed(f"{what} is truncated") from exc
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise _malformed(f"{what} is not a msgpack map: {exc}") from exc
    return result


def bounded_unpackb(data: bytes, limits: Limits, what: str, *, max_containers: int | None = None) -> Any:
    """Exactly one msgpack object within ``limits`` (ext types never), or ``EnvelopeError``.

    ``max_containers`` also bounds how many maps and arrays may be built in all: per-container
    limits alone still let nested containers multiply (an array of arrays of empty maps).
    """
    hooks: dict[str, Any] = {}
    if max_containers is not None:
        left = max_containers

        def spend(obj: Any) -> Any:
            nonlocal left
            left -= 1
            if left < 0:
                raise EnvelopeError(f"{what} holds more than {max_containers} maps and arrays")
            return obj

        hooks = {"list_hook": spend, "object_hook": spend}
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=limits.str,
            max_bin_len=limits.bin,
            max_array_len=limits.array,
            max_map_len=limits.map,
            max_ext_len=0,
            **hooks,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        # ExtraData, FormatError, StackError, "incomplete input" and the size limits land here.
        raise _malformed(f"{what} is not one msgpack object within the limits: {exc}") from exc
