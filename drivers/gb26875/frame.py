"""GB/T 26875.3-2011 framing: the ``@@ … ##`` frame, its time tag, and a streaming decoder.

Pure code, no I/O. A frame is::

    @@ | serial(2 LE) | version(main, user) | time tag(6) | source(6) | destination(6)
       | data length N (2 LE, <= 1024) | command(1) | application data (N) | checksum(1) | ##

30 + N bytes; the checksum is the sum of the bytes from the serial number through the end of
the application data, mod 256. The application data (type flag, count, information objects)
is ``drivers.gb26875.objects``' business: this module hands it over as bytes, so a vendor's
variant framing (one uses ``0x68 … 0x16``) replaces :class:`StandardFraming` through the
:class:`Framing` protocol and keeps the object codec.

The streaming decoder never raises on data: it returns frames, and :class:`Rejected` items for
candidates that failed (checksum, end marker, length), each carrying a ``FramingError``
subclass. It resynchronises on the next ``@@`` one byte after a failed candidate, so a good
frame that follows garbage is always found, even when the garbage ends in a ``@@`` whose
length field promises more bytes than will ever come (it looks ahead for a complete, valid
frame further on instead of waiting for ever).
"""

from __future__ import annotations

import calendar
import enum
import struct
import time
from dataclasses import dataclass
from typing import Protocol

from core.errors import FramingError

__all__ = [
    "HEADER_LEN",
    "MAX_DATA_LEN",
    "OVERHEAD",
    "ChecksumError",
    "Command",
    "Decoded",
    "EndMarkerError",
    "Frame",
    "Framing",
    "Gb26875FramingError",
    "LengthError",
    "Rejected",
    "StandardDecoder",
    "StandardFraming",
    "StreamDecoder",
    "TimeFormat",
    "TimeTag",
    "TruncatedFrame",
    "checksum",
    "pack_time",
    "unpack_time",
]

START = b"@@"
END = b"##"
HEADER_LEN = 27  # start through command
OVERHEAD = 30  # header + checksum + end marker
MAX_DATA_LEN = 1024
_HEADER = struct.Struct("<HBB6s6s6sHB")  # after the start marker


class Command(enum.IntEnum):
    CONTROL = 1  # e.g. clock synchronisation, from the centre
    SEND = 2  # data sent by the side that starts the exchange
    CONFIRM = 3
    REQUEST = 4
    RESPONSE = 5
    DENY = 6


class TimeFormat(enum.StrEnum):
    """How the six time-tag bytes are written: binary per the standard, BCD by some vendors."""

    BINARY = "binary"
    BCD = "bcd"


class Gb26875FramingError(FramingError):
    """A 26875 frame candidate that could not be taken."""


class ChecksumError(Gb26875FramingError):
    pass


class EndMarkerError(Gb26875FramingError):
    pass


class LengthError(Gb26875FramingError):
    pass


class TruncatedFrame(Gb26875FramingError):
    pass


@dataclass(frozen=True, slots=True)
class TimeTag:
    """A time tag as written by the panel: its local wall time, which is often wrong.

    Fields are taken as written; a tag that names no real time (month 13, a BCD nibble above
    9, shown as -1) is kept and :meth:`to_epoch` returns None for it.
    """

    second: int
    minute: int
    hour: int
    day: int
    month: int
    year: int  # full year, e.g. 2021

    def to_epoch(self, utc_offset_s: float) -> float | None:
        """Seconds since the epoch, reading the tag as local time ``utc_offset_s`` east of UTC."""
        if not (
            0 <= self.second <= 59
            and 0 <= self.minute <= 59
            and 0 <= self.hour <= 23
            and 1 <= self.month <= 12
            and 1 <= self.day <= calendar.monthrange(max(self.year, 1), self.month)[1]
        ):
            return None
        fields = (self.year, self.month, self.day, self.hour, self.minute, self.second)
        return calendar.timegm((*fields, 0, 0, 0)) - utc_offset_s

    @classmethod
    def from_epoch(cls, ts: float, utc_offset_s: float) -> TimeTag:
        t = time.gmtime(ts + utc_offset_s)
        return cls(t.tm_sec, t.tm_min, t.tm_hour, t.tm_mday, t.tm_mon, t.tm_year)


_BCD_DECODE = tuple(
    ((b >> 4) * 10 + (b & 0x0F)) if (b >> 4) <= 9 and (b & 0x0F) <= 9 else -1 for b in range(256)
)


def unpack_time(raw: bytes | bytearray | memoryview, fmt: TimeFormat = TimeFormat.BINARY) -> TimeTag:
    """Six bytes (second, minute, hour, day, month, year - 2000) as a :class:`TimeTag`."""
    if fmt is TimeFormat.BINARY:
        return TimeTag(raw[0], raw[1], raw[2], raw[3], raw[4], raw[5] + 2000)
    d = _BCD_DECODE
    year = d[raw[5]]
    return TimeTag(d[raw[0]], d[raw[1]], d[raw[2]], d[raw[3]], d[raw[4]], year + 2000 if year >= 0 else -1)


def pack_time(tag: TimeTag, fmt: TimeFormat = TimeFormat.BINARY) -> bytes:
    """The six bytes of ``tag``. Raises ``ValueError`` for a field the format cannot hold."""
    fields = (tag.second, tag.minute, tag.hour, tag.day, tag.month, tag.year - 2000)
    if fmt is TimeFormat.BINARY:
        return bytes(fields)  # ValueError outside 0..255
    if any(not 0 <= f <= 99 for f in fields):
        raise ValueError(f"time tag {tag} does not fit BCD")
    return bytes((f // 10) << 4 | f % 10 for f in fields)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame; ``data`` is the application data unit, undecoded."""

    serial: int
    command: int
    source: bytes  # 6 bytes as on the wire
    destination: bytes
    time: TimeTag
    data: bytes = b""
    version: tuple[int, int] = (1, 1)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A frame candidate the decoder dropped, and why."""

    error: Gb26875FramingError


Decoded = Frame | Rejected


class StreamDecoder(Protocol):
    """Feed it bytes as they arrive; it returns the frames (and rejects) completed so far."""

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | Rejected]: ...

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        ...


class Framing(Protocol):
    """What carries frames on the wire: the standard ``@@`` framing or a vendor's variant."""

    @property
    def name(self) -> str: ...

    def encode(self, frame: Frame) -> bytes: ...

    def decoder(self) -> StreamDecoder: ...


def checksum(data: bytes | bytearray | memoryview) -> int:
    return sum(data) & 0xFF


class StandardFraming:
    """The ``@@ … ##`` framing of GB/T 26875.3-2011, with binary or BCD time tags."""

    name = "gb26875"

    def __init__(self, time_format: TimeFormat = TimeFormat.BINARY) -> None:
        self.time_format = time_format

    def encode(self, frame: Frame) -> bytes:
        """The wire bytes of ``frame``. Raises ``ValueError`` for a field that does not fit."""
        if len(frame.data) > MAX_DATA_LEN:
            raise ValueError(f"application data of {len(frame.data)} bytes exceeds {MAX_DATA_LEN}")
        if len(frame.source) != 6 or len(frame.destination) != 6:
            raise ValueError("source and destination addresses are 6 bytes")
        body = _HEADER.pack(
            frame.serial,
            frame.version[0],
            frame.version[1],
            pack_time(frame.time, self.time_format),
            frame.source,
            frame.destination,
            len(frame.data),
            frame.command,
        )
        body += frame.data
        return START + body + bytes((checksum(body),)) + END

    def decoder(self) -> StandardDecoder:
        return StandardDecoder(self.time_format)

    def decode(self, raw: bytes) -> Frame:
        """Exactly one frame from ``raw``. Raises a ``Gb26875FramingError`` subclass."""
        if len(raw) < OVERHEAD or raw[:2] != START:
            raise TruncatedFrame(f"not a frame: {len(raw)} bytes, starts {raw[:2].hex()}")
        n = raw[24] | raw[25] << 8
        if n > MAX_DATA_LEN:
            raise LengthError(f"data length {n} exceeds {MAX_DATA_LEN}")
        if len(raw) != OVERHEAD + n:
            raise TruncatedFrame(f"frame of {len(raw)} bytes, its length field says {OVERHEAD + n}")
        result = _check_and_parse(raw, 0, n, self.time_format)
        if isinstance(result, Gb26875FramingError):
            raise result
        return result


def _check_and_parse(buf: bytes | bytearray, p: int, n: int, fmt: TimeFormat) -> Frame | Gb26875FramingError:
    """The frame at ``p`` with data length ``n`` (all of it in ``buf``), or why not."""
    end = p + OVERHEAD + n
    if buf[end - 2] != 0x23 or buf[end - 1] != 0x23:
        return EndMarkerError(f"no '##' at the end of a {OVERHEAD + n}-byte frame")
    expected = buf[end - 3]
    got = sum(buf[p + 2 : end - 3]) & 0xFF
    if got != expected:
        return ChecksumError(f"checksum {expected:#04x} in the frame, {got:#04x} computed")
    serial, vmain, vuser, raw_time, src, dst, _, command = _HEADER.unpack_from(buf, p + 2)
    return Frame(
        serial,
        command,
        src,
        dst,
        unpack_time(raw_time, fmt),
        bytes(buf[p + HEADER_LEN : end - 3]),
        (vmain, vuser),
    )


class StandardDecoder:
    """Streaming decoder of the standard framing (see the module docstring)."""

    def __init__(self, time_format: TimeFormat = TimeFormat.BINARY) -> None:
        self._fmt = time_format
        self._buf = bytearray()
        self.skipped_bytes = 0  # bytes outside any frame, for statistics

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | Rejected]:
        buf = self._buf
        buf += data
        out: list[Frame | Rejected] = []
        pos = 0
        size = len(buf)
        while True:
            p = buf.find(START, pos)
            if p < 0:
                # Keep a trailing '@': it may be the first half of the next start marker.
                keep = size - 1 if size > pos and buf[size - 1] == 0x40 else size
                self.skipped_bytes += keep - pos
                pos = keep
                break
            self.skipped_bytes += p - pos
            if size - p < HEADER_LEN:
                pos = p
                break
            n = buf[p + 24] | buf[p + 25] << 8
            if n > MAX_DATA_LEN:
                out.append(Rejected(LengthError(f"data length {n} exceeds {MAX_DATA_LEN}")))
                pos = p + 1
                continue
            if p + OVERHEAD + n > size:
                later = _complete_frame_after(buf, p + 1, self._fmt)
                if later is None:
                    pos = p
                    break
                out.append(Rejected(TruncatedFrame("a frame broke off; a complete one follows it")))
                pos = later
                continue
            result = _check_and_parse(buf, p, n, self._fmt)
            if isinstance(result, Frame):
                out.append(result)
                pos = p + OVERHEAD + n
            else:
                out.append(Rejected(result))
                pos = p + 1
        if pos:
            del buf[:pos]
        return out


def _complete_frame_after(buf: bytearray, start: int, fmt: TimeFormat) -> int | None:
    """Where the first complete, valid frame at or after ``start`` begins, if any.

    Asked only while an earlier candidate waits for bytes: a sender that broke off a frame and
    started again must not have its next good frame held up behind the broken one.
    """
    size = len(buf)
    q = buf.find(START, start)
    while 0 <= q <= size - OVERHEAD:
        n = buf[q + 24] | buf[q + 25] << 8
        if (
            n <= MAX_DATA_LEN
            and q + OVERHEAD + n <= size
            and isinstance(_check_and_parse(buf, q, n, fmt), Frame)
        ):
            return q
        q = buf.find(START, q + 1)
    return None
