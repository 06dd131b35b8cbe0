"""Modbus TCP's MBAP framing, pure: request frames out, answer frames cut from a byte stream.

An MBAP frame is ``transaction id, protocol id (0), length, unit id`` (two bytes each but the
unit id, big-endian) followed by the PDU; the length counts the unit id and the PDU (Modbus
Messaging on TCP/IP v1.0b §3.1.3). TCP delivers the stream in arbitrary chunks, so a chunk may
end inside a frame or hold several.

Unlike a serial line there is nothing to resynchronise on: a header whose protocol id is not 0,
or whose length cannot hold a PDU of 1..253 bytes, means the stream is not (or no longer)
Modbus, and the only way back is a new connection. That check is also what bounds the buffer a
caller keeps: what is left after the complete frames is always shorter than ``MAX_ADU``.

Two ways in: ``split_frames`` copies the frames out of a chunk, and ``frame_end`` only says where
the frame at an offset ends, for a caller that reads frames in place from its own buffer (the
TCP link, which must not allocate per read).

Which frame answers which request (the transaction id, the unit) is the caller's business; the
transaction id is what lets it drop an answer that arrives after its request was given up.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = [
    "HEADER",
    "MAX_ADU",
    "MAX_PDU",
    "Frame",
    "NotModbusTcp",
    "Split",
    "encode",
    "frame_end",
    "split_frames",
]

HEADER = struct.Struct(">HHHB")
MAX_PDU = 253  # the serial line's limit, which Modbus TCP keeps so bridges can forward it
MAX_ADU = HEADER.size + MAX_PDU  # 260
_MIN_LENGTH = 2  # unit id + function code
_MAX_LENGTH = 1 + MAX_PDU
_FIXED = struct.Struct(">HHH")  # what a header must hold before it can be judged


class NotModbusTcp(ValueError):
    """A header that cannot start a Modbus TCP frame; the message says why."""


class Frame(NamedTuple):
    tid: int
    unit: int
    pdu: bytes


class Split(NamedTuple):
    """What ``split_frames`` found.

    ``frames`` are the complete frames in order; ``consumed`` the bytes they occupy (the rest is
    a partial frame to keep for the next chunk). ``error`` says why the byte at ``consumed``
    cannot start a Modbus TCP frame, or is None.
    """

    frames: list[Frame]
    consumed: int
    error: str | None


def encode(tid: int, unit: int, pdu: bytes) -> bytes:
    """The MBAP frame carrying ``pdu`` for ``unit`` as transaction ``tid``."""
    if not 1 <= len(pdu) <= MAX_PDU:
        raise ValueError(f"a Modbus PDU is 1..{MAX_PDU} bytes, not {len(pdu)}")
    return HEADER.pack(tid, 0, len(pdu) + 1, unit) + pdu


def frame_end(buffer: bytes | bytearray, at: int, end: int) -> int:
    """Where the frame starting at ``buffer[at]`` ends, if ``buffer[at:end]`` holds all of it.

    0 when more bytes are needed (a frame never ends at 0); ``NotModbusTcp`` when its header
    cannot be Modbus TCP. Nothing is copied, so a caller can read frames where they lie.
    """
    if end - at < _FIXED.size:
        return 0
    # Protocol id and length are judged as soon as they are in, not when the frame is
    # complete: a peer that is not Modbus must not make us wait for (or buffer) its bytes.
    _tid, protocol, length = _FIXED.unpack_from(buffer, at)
    if protocol != 0:
        raise NotModbusTcp(f"protocol id {protocol:#06x} is not Modbus")
    if not _MIN_LENGTH <= length <= _MAX_LENGTH:
        raise NotModbusTcp(f"MBAP length {length} is outside {_MIN_LENGTH}..{_MAX_LENGTH}")
    stop = at + _FIXED.size + length
    return stop if stop <= end else 0


def split_frames(buffer: bytes | bytearray) -> Split:
    """Cut the complete frames from the start of ``buffer`` (see the module docstring)."""
    frames: list[Frame] = []
    at = 0
    size = len(buffer)
    try:
        while stop := frame_end(buffer, at, size):
            tid = buffer[at] << 8 | buffer[at + 1]
            frames.append(Frame(tid, buffer[at + 6], bytes(buffer[at + 7 : stop])))
            at = stop
    except NotModbusTcp as exc:
        return Split(frames, at, str(exc))
    return Split(frames, at, None)
