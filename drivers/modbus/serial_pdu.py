"""Modbus PDUs for every link (RTU, ASCII, RTU over TCP, Modbus TCP): requests out, answers checked.

Pure: bytes in, values out, no I/O. A ``Request`` knows what a correct answer to it looks like
(function code, byte count, echoed address and value), so the framings can tell the answer
from a reply meant for someone else, and ``decode_response`` can turn it into register values
or the project's errors:

- an exception response -> ``DeviceError(code=...)``
- a well-formed frame whose PDU does not fit the request -> ``FramingError``

Function codes: 01/02/03/04 reads, 05 write coil, 06 write register, 15 write coils, 16 write
registers (Modbus Application Protocol v1.1b3 §6).

The builders take ``tcp=True`` for Modbus TCP, where the unit id is a whole byte and 0 is no
broadcast: a device addressed directly answers to 0 or 255 (Modbus Messaging on TCP/IP v1.0b
§4.4.2), so neither is refused there.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import DeviceError, FramingError
from drivers.modbus.types import Table

__all__ = [
    "EXCEPTION_NAMES",
    "Request",
    "decode_response",
    "matches",
    "read_request",
    "response_pdu_length",
    "write_coil_request",
    "write_coils_request",
    "write_register_request",
    "write_registers_request",
]

READ_FUNCTIONS: dict[Table, int] = {
    Table.COIL: 1,
    Table.DISCRETE_INPUT: 2,
    Table.HOLDING: 3,
    Table.INPUT: 4,
}
_READ_CODES = frozenset(READ_FUNCTIONS.values())
_ECHO_CODES = frozenset({5, 6, 15, 16})  # answers echo address + value/count: 5-byte PDU
_MAX_READ = {1: 2000, 2: 2000, 3: 125, 4: 125}

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


@dataclass(frozen=True, slots=True)
class Request:
    """One request PDU for ``unit`` and what its answer must look like.

    ``answer_bytes`` is the byte count a read answer carries; ``echo`` the four bytes (address
    and value or count) a write answer repeats.
    """

    unit: int
    pdu: bytes
    what: str
    count: int = 0
    answer_bytes: int = 0
    echo: bytes = b""

    @property
    def function(self) -> int:
        return self.pdu[0]

    @property
    def broadcast(self) -> bool:
        return self.unit == 0

    @property
    def is_write(self) -> bool:
        return self.function in _ECHO_CODES

    @property
    def response_pdu_size(self) -> int:
        """Bytes of a normal answer's PDU (function code included)."""
        return 2 + self.answer_bytes if self.function in _READ_CODES else 5


def _check_unit(unit: int, tcp: bool) -> None:
    if tcp:
        if not 0 <= unit <= 255:
            raise ValueError(f"unit id {unit} is outside 0..255")
    elif not 0 <= unit <= 247:
        raise ValueError(f"unit id {unit} is outside 0..247 (248-255 are reserved on a serial line)")


def read_request(unit: int, table: Table, start: int, count: int, *, tcp: bool = False) -> Request:
    function = READ_FUNCTIONS[table]
    _check_unit(unit, tcp)
    if unit == 0 and not tcp:
        raise ValueError("unit 0 is the broadcast address: it cannot be read")
    if not 1 <= count <= _MAX_READ[function] or not 0 <= start <= 0xFFFF or start + count > 0x10000:
        raise ValueError(f"cannot read {count} of {table} from {start}")
    answer = (count + 7) // 8 if table.is_bits else 2 * count
    pdu = struct.pack(">BHH", function, start, count)
    return Request(unit, pdu, f"read {table} {start}+{count}", count=count, answer_bytes=answer)


def write_coil_request(unit: int, address: int, value: bool, *, tcp: bool = False) -> Request:
    _check_unit(unit, tcp)
    pdu = struct.pack(">BHH", 5, address, 0xFF00 if value else 0x0000)
    return Request(unit, pdu, f"write coil {address}", echo=pdu[1:5])


def write_register_request(unit: int, address: int, value: int, *, tcp: bool = False) -> Request:
    _check_unit(unit, tcp)
    pdu = struct.pack(">BHH", 6, address, value & 0xFFFF)
    return Request(unit, pdu, f"write register {address}", echo=pdu[1:5])


def write_coils_request(unit: int, address: int, values: Sequence[bool], *, tcp: bool = False) -> Request:
    _check_unit(unit, tcp)
    count = len(values)
    if not 1 <= count <= 1968:
        raise ValueError(f"one FC 15 write carries 1..1968 coils, not {count}")
    packed = bytearray((count + 7) // 8)
    for i, value in enumerate(values):
        if value:
            packed[i >> 3] |= 1 << (i & 7)  # first coil in the lowest bit of the first byte
    pdu = struct.pack(">BHHB", 15, address, count, len(packed)) + packed
    return Request(unit, pdu, f"write coils {address}+{count}", echo=pdu[1:5])


def write_registers_request(unit: int, address: int, values: Sequence[int], *, tcp: bool = False) -> Request:
    _check_unit(unit, tcp)
    count = len(values)
    if not 1 <= count <= 123:
        raise ValueError(f"one FC 16 write carries 1..123 registers, not {count}")
    pdu = struct.pack(f">BHHB{count}H", 16, address, count, 2 * count, *(v & 0xFFFF for v in values))
    return Request(unit, pdu, f"write registers {address}+{count}", echo=pdu[1:5])


def response_pdu_length(data: bytes | bytearray, at: int) -> int:
    """Length of the answer PDU starting at ``data[at]`` (its function code).

    Returns 0 when the function code is not one a master could be answered with (the byte
    cannot start an answer), and -1 when more bytes are needed to know.
    """
    function = data[at]
    if function in _READ_CODES:
        if at + 1 >= len(data):
            return -1
        return 2 + data[at + 1]
    if function in _ECHO_CODES:
        return 5
    if function & 0x80 and (function & 0x7F) in _READ_CODES | _ECHO_CODES:
        return 2
    return 0


def matches(request: Request, pdu: bytes | bytearray, start: int, length: int) -> bool:
    """Whether ``pdu[start:start + length]`` is plausibly the answer to ``request``: its
    function code (or the exception of it), and for a normal answer its byte count or echo."""
    function = pdu[start]
    if function == request.function | 0x80:
        return length == 2
    if function != request.function or length != request.response_pdu_size:
        return False
    if request.is_write:
        return pdu[start + 1 : start + 5] == request.echo
    return pdu[start + 1] == request.answer_bytes


def decode_response(request: Request, pdu: bytes) -> list[int]:
    """Register values (bits as 0/1) of a read answer, ``[]`` for a write answer.

    Raises ``DeviceError`` for an exception response and ``FramingError`` for an answer that
    does not fit the request.
    """
    if not pdu:
        raise FramingError(f"unit {request.unit} {request.what}: empty answer")
    function = pdu[0]
    if function == request.function | 0x80:
        if len(pdu) != 2:
            raise FramingError(f"unit {request.unit} {request.what}: exception answer of {len(pdu)} bytes")
        code = pdu[1]
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        raise DeviceError(f"unit {request.unit} {request.what}: exception {code} ({name})", code=code)
    if function != request.function:
        raise FramingError(f"unit {request.unit} {request.what}: answer has function code {function}")
    if request.is_write:
        if len(pdu) != 5 or pdu[1:5] != request.echo:
            raise FramingError(f"unit {request.unit} {request.what}: the answer does not echo the request")
        return []
    if len(pdu) < 2 or pdu[1] != request.answer_bytes or len(pdu) != 2 + request.answer_bytes:
        raise FramingError(
            f"unit {request.unit} {request.what}: expected {request.answer_bytes} data bytes, "
            f"got a {len(pdu)}-byte answer"
        )
    data = pdu[2:]
    if function in (1, 2):
        return [(data[i >> 3] >> (i & 7)) & 1 for i in range(request.count)]
    return list(struct.unpack(f">{request.count}H", data))
