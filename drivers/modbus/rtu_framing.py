"""Modbus RTU framing, pure: CRC-16, request frames out, answer frames found in a byte stream.

An RTU frame is ``unit, PDU, CRC-16 (low byte first)``. On a real line frames are delimited by
3.5 character times of silence, but what reaches us through a USB adapter, a pty or a TCP
serial server comes in arbitrary chunks, so the answer is found by its length instead: the
function code (and for reads the byte count) says how long the frame is, and the CRC says
whether it is one.

``scan_response`` looks for the answer to one known request. It walks the buffer one byte at a
time, so that noise before the answer, a frame with a bad CRC or a half frame costs only the
bytes it occupies (resynchronisation). A frame with a good CRC that is not the answer (another
unit, another function, a byte count or echo that does not fit) is recognised, counted and
skipped; only the answer ends the scan. A candidate that needs more bytes than have arrived
keeps the buffer from that position on, so the caller can append and scan again.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import FramingError
from drivers.modbus.serial_pdu import Request, decode_response, matches, response_pdu_length

__all__ = ["MAX_FRAME", "RtuScan", "crc16", "decode_frame", "encode_request", "scan_response", "with_crc"]

MAX_FRAME = 256  # unit + 253-byte PDU + CRC (Modbus over Serial Line v1.02 §2.5.1)


def _table() -> tuple[int, ...]:
    out = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        out.append(crc)
    return tuple(out)


_CRC_TABLE = _table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF), table-driven.

    Over a whole frame including its CRC (low byte first) the result is 0.
    """
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def with_crc(body: bytes) -> bytes:
    crc = crc16(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def encode_request(request: Request) -> bytes:
    """The RTU frame of ``request``: unit, PDU, CRC."""
    return with_crc(bytes((request.unit,)) + request.pdu)


@dataclass(frozen=True, slots=True)
class RtuScan:
    """What one scan found.

    ``pdu`` is the answer's PDU (function code first) or None. ``consumed`` is how many bytes
    of the buffer the caller may drop: through the end of the answer when found, otherwise up
    to the first position that may still start a frame once more bytes arrive.
    ``crc_errors`` counts frames of the expected unit and function with a bad CRC, and
    ``foreign`` frames with a good CRC that are not the answer, both in the dropped part.
    """

    pdu: bytes | None
    consumed: int
    crc_errors: int = 0
    foreign: int = 0


def scan_response(buffer: bytes | bytearray, request: Request) -> RtuScan:
    """Find the answer to ``request`` in ``buffer`` (see the module docstring)."""
    n = len(buffer)
    keep: int | None = None
    crc_errors = 0
    foreign = 0
    unit = request.unit
    function = request.function
    for i in range(n):
        if n - i < 2:
            if keep is None:
                keep = i
            break
        length = response_pdu_length(buffer, i + 1)
        if length == 0:
            continue
        if length < 0 or i + length + 3 > n:
            if keep is None:
                keep = i
            continue
        source = buffer[i]
        if not 1 <= source <= 247:
            continue  # answers never come from the broadcast or the reserved addresses
        end = i + length + 3
        if crc16(buffer[i:end]) != 0:
            if keep is None and source == unit and buffer[i + 1] & 0x7F == function:
                crc_errors += 1
            continue
        if source == unit and matches(request, buffer, i + 1, length):
            return RtuScan(bytes(buffer[i + 1 : end - 2]), end, crc_errors, foreign)
        if keep is None:
            foreign += 1
    return RtuScan(None, n if keep is None else keep, crc_errors, foreign)


def decode_frame(frame: bytes, request: Request) -> list[int]:
    """Values of one complete answer frame to ``request`` (tests and tools; the links scan).

    Raises ``FramingError`` for a bad CRC or a frame that is not the answer, ``DeviceError``
    for an exception response.
    """
    if len(frame) < 4 or crc16(frame) != 0:
        raise FramingError(f"unit {request.unit} {request.what}: bad CRC or short frame")
    if frame[0] != request.unit:
        raise FramingError(f"unit {request.unit} {request.what}: answer from unit {frame[0]}")
    return decode_response(request, bytes(frame[1:-2]))
