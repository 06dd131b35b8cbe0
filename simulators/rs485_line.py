"""An emulated RS-485 line: the devices on it, wire time at the configured baud, a frame log,
and line faults. The pty server (``simulators.modbus_rtu``) and the RTU-over-TCP server
(``simulators.rs485_tcp``) only move bytes in and out of it.

Wire time: a request is taken to start on the wire when its first bytes reach the simulator
and to end ``len × character time`` later. The addressed device answers after the request's
end, t3.5 of silence (how an RTU slave knows the frame ended; ASCII frames end at LF), its
turnaround and any ``slow`` fault; the answer is written out only when its last byte would have
left the wire. So a master can never go faster than the line would let it.

Every request is logged (``frames``): unit, function, request start/end, answer start/end
(None for no answer), and whether it arrived while the line was still busy with the previous
exchange (``collision``) — which is how tests prove that there is never more than one request
outstanding on the line.
"""

from __future__ import annotations

import asyncio
import binascii
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from simulators.device import SimulatedDevice, exception_pdu
from simulators.faults import noise, plan

__all__ = ["FrameRecord", "LineFaults", "Rs485Line", "crc16", "with_crc"]

_LOG = structlog.get_logger(__name__)

_EARLY_WAKE_S = 0.0012
_FIXED_REQUEST = {1: 8, 2: 8, 3: 8, 4: 8, 5: 8, 6: 8}


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF), bit by bit."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    crc = crc16(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def _lrc(data: bytes) -> int:
    return (-sum(data)) & 0xFF


def _ascii_frame(body: bytes) -> bytes:
    return b":" + binascii.hexlify(body + bytes((_lrc(body),))).upper() + b"\r\n"


def rtu_request_length(buffer: bytearray) -> int | None:
    """Length of the RTU request frame at the start of ``buffer``; None if more bytes are needed."""
    if len(buffer) < 2:
        return None
    function = buffer[1]
    if function in _FIXED_REQUEST:
        return _FIXED_REQUEST[function]
    if function in (15, 16):
        if len(buffer) < 7:
            return None
        return 9 + buffer[6]
    return 4  # unknown function: address + function + CRC, so that we answer ILLEGAL_FUNCTION


@dataclass(slots=True)
class FrameRecord:
    """One request on the line and what came of it (loop times, seconds)."""

    unit: int
    function: int
    request_start: float
    request_end: float
    response_start: float | None = None
    response_end: float | None = None
    collision: bool = False
    fault: str = ""


@dataclass(slots=True)
class LineFaults:
    """Faults of the line (not of one device), each for the next N answers."""

    crc_burst: int = 0  # answers sent with a broken CRC (LRC in ASCII)
    garbage: int = 0  # answers preceded by noise bytes
    garbage_bytes: int = 7
    partial: int = 0  # answers cut off half way
    wrong_unit: int = 0  # answers carrying another unit id (and a good CRC)
    extra_turnaround_ms: float = 0.0  # slow turnaround for every device, while set


class Rs485Line:
    """The devices on one line and the line's timing; ``send`` is set by the transport."""

    def __init__(
        self,
        units: Mapping[int, SimulatedDevice],
        *,
        mode: str = "rtu",
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
        turnaround_ms: float = 2.0,
        seed: int = 0,
        log_size: int = 50_000,
    ) -> None:
        if mode not in ("rtu", "ascii"):
            raise ValueError(f"mode is 'rtu' or 'ascii', not {mode!r}")
        self.units = dict(units)
        self.mode = mode
        self.baudrate = baudrate
        bits = 1 + bytesize + (0 if parity == "N" else 1) + stopbits
        self.char_s = bits / baudrate
        self.silence_s = 3.5 * self.char_s if baudrate <= 19200 else 0.00175
        self.turnaround_s = turnaround_ms / 1000.0
        self.rng = random.Random(seed)
        self.faults = LineFaults()
        self.frames: deque[FrameRecord] = deque(maxlen=log_size)
        self.collisions = 0
        self.requests = 0
        self.send: Callable[[bytes], None] = lambda data: None
        self._buffer = bytearray()
        self._chunk_start = 0.0
        self._busy_until = 0.0
        self._pending: list[asyncio.TimerHandle] = []

    # --- input ----------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        now = asyncio.get_running_loop().time()
        if not self._buffer:
            self._chunk_start = now
        self._buffer += data
        if self.mode == "rtu":
            self._drain_rtu()
        else:
            self._drain_ascii()

    def reset(self) -> None:
        """Forget partial input and answers not yet sent (the adapter was unplugged)."""
        self._buffer.clear()
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        self._busy_until = 0.0

    def _drain_rtu(self) -> None:
        buffer = self._buffer
        while True:
            length = rtu_request_length(buffer)
            if length is None or len(buffer) < length:
                return
            frame = bytes(buffer[:length])
            if crc16(frame) != 0:
                del buffer[0]  # resynchronise: the frame started somewhere later
                continue
            del buffer[:length]
            self._request(frame[0], frame[1:-2], length)

    def _drain_ascii(self) -> None:
        buffer = self._buffer
        while True:
            start = buffer.find(b":")
            if start < 0:
                buffer.clear()
                return
            end = buffer.find(b"\r\n", start)
            if end < 0:
                del buffer[:start]
                return
            text = bytes(buffer[start + 1 : end])
            length = end + 2 - start
            del buffer[: end + 2]
            try:
                raw = binascii.unhexlify(text)
            except (binascii.Error, ValueError):
                continue
            if len(raw) < 3 or sum(raw) & 0xFF:
                continue
            self._request(raw[0], raw[1:-1], length)

    # --- answering ------------------------------------------------------------------------------

    def _request(self, unit: int, pdu: bytes, length: int) -> None:
        loop = asyncio.get_running_loop()
        start = self._chunk_start
        end = start + length * self.char_s
        self._chunk_start = end  # a second frame in the same chunk follows this one on the wire
        self.requests += 1
        record = FrameRecord(unit, pdu[0] if pdu else 0, start, end)
        if start < self._busy_until - 1e-4:
            record.collision = True
            self.collisions += 1
            _LOG.warning("rs485.collision", unit=unit, busy_for_ms=(self._busy_until - start) * 1000)
        self.frames.append(record)
        self._busy_until = max(self._busy_until, end)
        device = self.units.get(unit)
        if device is None:
            if unit == 0:  # broadcast: every device acts, none answers
                record.fault = "broadcast"
                for each in self.units.values():
                    if not each.faults.comm_loss:
                        each.handle_pdu(pdu)
            return
        answer = plan(device.faults)
        if not answer.send or device.faults.comm_loss:
            record.fault = "silent"
            return
        response = (
            exception_pdu(pdu[0], answer.exception_code)
            if answer.exception_code is not None
            else device.handle_pdu(pdu)
        )
        out = self._frame(unit, response, corrupt=answer.corrupt, record=record)
        gap = self.silence_s if self.mode == "rtu" else 0.0
        turnaround = self.turnaround_s + answer.delay_s + self.faults.extra_turnaround_ms / 1000.0
        response_start = max(end + gap, loop.time()) + turnaround
        response_end = response_start + len(out) * self.char_s
        record.response_start = response_start
        record.response_end = response_end
        self._busy_until = max(self._busy_until, response_end)
        # The event loop wakes up to 1 ms late (epoll counts whole milliseconds): wake a little
        # early and wait out the rest exactly, so the answer is neither early nor late.
        handle = loop.call_at(response_end - _EARLY_WAKE_S, self._emit_at, out, response_end)
        self._pending.append(handle)

    def _frame(self, unit: int, response: bytes, *, corrupt: bool, record: FrameRecord) -> bytes:
        faults = self.faults
        if faults.wrong_unit > 0:
            faults.wrong_unit -= 1
            unit = unit % 247 + 1
            record.fault = "wrong_unit"
        body = bytes((unit,)) + response
        if self.mode == "rtu":
            out = with_crc(body)
            if corrupt or faults.crc_burst > 0:
                out = out[:-2] + bytes((out[-2] ^ 0xFF, out[-1]))
        else:
            out = _ascii_frame(body)
            if corrupt or faults.crc_burst > 0:
                out = out[:-4] + (b"00" if out[-4:-2] != b"00" else b"11") + b"\r\n"
        if corrupt or faults.crc_burst > 0:
            record.fault = "bad_crc"
            faults.crc_burst = max(0, faults.crc_burst - 1)
        if faults.partial > 0:
            faults.partial -= 1
            out = out[: max(1, len(out) // 2)]
            record.fault = "partial"
        if faults.garbage > 0:
            faults.garbage -= 1
            out = noise(self.rng, faults.garbage_bytes) + out
            record.fault = record.fault or "garbage"
        return out

    def _emit_at(self, data: bytes, at: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < at:
            pass  # at most _EARLY_WAKE_S of spinning
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        self._pending = [h for h in self._pending if not h.cancelled() and h.when() > self._now()]
        self.send(data)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    # --- for tests and benches ------------------------------------------------------------------

    def max_outstanding(self) -> int:
        """The most requests ever on the line at once: 1 unless a request came while the
        previous exchange was still going (then 2 or more)."""
        return 2 if self.collisions else (1 if self.frames else 0)
