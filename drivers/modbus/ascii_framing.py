"""Modbus ASCII framing, pure: ``:`` + hex pairs (unit, PDU, LRC) + CR LF.

The LRC is the two's complement of the 8-bit sum of unit and PDU bytes, so the sum of every
decoded byte including the LRC is 0 modulo 256. Hex digits are upper case on the way out;
either case is accepted on the way in.

``scan_response`` looks for the answer to one known request: a ``:`` always starts a new frame
(what came before it is dropped, as the serial line spec says), a frame ends at CR LF, and a
frame with bad hex or a bad LRC is counted and skipped. A frame with a good LRC that is not the
answer (another unit, function, byte count or echo) is counted as foreign and skipped.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from core.errors import FramingError
from drivers.modbus.serial_pdu import Request, decode_response, matches

__all__ = ["MAX_FRAME", "AsciiScan", "decode_frame", "encode_frame", "encode_request", "lrc", "scan_response"]

MAX_FRAME = 513  # ':' + 2 x (unit + 253-byte PDU + LRC) + CR LF


def lrc(data: bytes | bytearray) -> int:
    return (-sum(data)) & 0xFF


def encode_frame(unit: int, pdu: bytes) -> bytes:
    body = bytes((unit,)) + pdu
    return b":" + binascii.hexlify(body + bytes((lrc(body),))).upper() + b"\r\n"


def encode_request(request: Request) -> bytes:
    return encode_frame(request.unit, request.pdu)


@dataclass(frozen=True, slots=True)
class AsciiScan:
    """As ``rtu_framing.RtuScan``: the answer's PDU or None, bytes the caller may drop, and
    frames dropped for a bad LRC or bad hex (``crc_errors``) or for not being the answer."""

    pdu: bytes | None
    consumed: int
    crc_errors: int = 0
    foreign: int = 0


def scan_response(buffer: bytes | bytearray, request: Request) -> AsciiScan:
    """Find the answer to ``request`` in ``buffer`` (see the module docstring)."""
    data = bytes(buffer)
    n = len(data)
    pos = 0
    bad = 0
    foreign = 0
    while True:
        start = data.find(b":", pos)
        if start < 0:
            return AsciiScan(None, n, bad, foreign)
        end = data.find(b"\r\n", start + 1)
        restart = data.find(b":", start + 1, n if end < 0 else end)
        if restart >= 0:
            bad += 1  # a frame cut short by the next one
            pos = restart
            continue
        if end < 0:
            if n - start > MAX_FRAME:
                bad += 1
                pos = start + 1
                continue
            return AsciiScan(None, start, bad, foreign)
        pos = end + 2
        try:
            raw = binascii.unhexlify(data[start + 1 : end])
        except (binascii.Error, ValueError):
            bad += 1
            continue
        if len(raw) < 3 or sum(raw) & 0xFF:
            bad += 1
            continue
        pdu = raw[1:-1]
        if raw[0] == request.unit and matches(request, pdu, 0, len(pdu)):
            return AsciiScan(pdu, pos, bad, foreign)
        foreign += 1


def decode_frame(frame: bytes, request: Request) -> list[int]:
    """Values of one complete ASCII answer frame to ``request`` (tests and tools).

    Raises ``FramingError`` for a malformed frame or bad LRC, ``DeviceError`` for an exception.
    """
    if not (frame.startswith(b":") and frame.endswith(b"\r\n")):
        raise FramingError(f"unit {request.unit} {request.what}: not an ASCII frame")
    try:
        raw = binascii.unhexlify(frame[1:-2])
    except (binascii.Error, ValueError) as exc:
        raise FramingError(f"unit {request.unit} {request.what}: bad hex") from exc
    if len(raw) < 3 or sum(raw) & 0xFF:
        raise FramingError(f"unit {request.unit} {request.what}: bad LRC or short frame")
    if raw[0] != request.unit:
        raise FramingError(f"unit {request.unit} {request.what}: answer from unit {raw[0]}")
    return decode_response(request, raw[1:-1])
