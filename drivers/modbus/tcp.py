"""``ModbusTcpLink``: one TCP connection to one host:port, shared by every unit id behind it.

A TCP-to-RTU bridge forwards to an RS-485 line that carries one request at a time, so the link
holds an ``asyncio.Lock`` for the whole of a request including its retries: exactly one request
is in flight, and devices behind the same bridge take turns (the "one scheduler per shared
port" rule). A plain Modbus TCP device is served the same way.

Why our own client rather than pymodbus': at 500 devices the gateway spent about 100 KB and a
good part of its CPU per device on pymodbus' per-connection objects and per-request machinery,
none of which this one-request-at-a-time link needs. What is left is an asyncio protocol
that cuts MBAP frames (``mbap``) and the PDU codec the serial links already use
(``serial_pdu``), so the TCP and serial paths agree on what a correct answer is.

Why an ``asyncio.BufferedProtocol`` reading into a 512-byte buffer of its own: with a plain
``asyncio.Protocol`` the event loop ``recv``s up to 256 KiB for every read, a 256 KiB
allocation (then shrunk) per answer of some 70 bytes. memray counted 6.2 GB of it in 45 s at
500 devices. The socket now reads into the connection's buffer, frames are cut where they lie,
and the only copy is the PDU handed to the waiting request. A frame cut off by the buffer's end
moves to the front, where all of it fits: the buffer never grows.

Timeouts and retries belong to the link: each attempt runs under ``asyncio.timeout``, so a
silent device costs exactly ``timeout_ms × (retries + 1)``.

What happens to a late answer after a timeout: every request gets a new MBAP transaction id,
and only a frame with the outstanding id (and unit) answers it, so a late answer is dropped
rather than taken as the answer to the next request (see ``tests/integration/drivers``). The
connection is therefore kept after a timeout, except after ``reset_after_timeouts`` timed-out
requests in a row with nothing answered in between, which is how a half-open connection (a
bridge that rebooted without closing it) shows itself.

Errors, translated at this boundary:

- could not connect, or the connection dropped during a request -> ``ConnectionLost`` (a drop
  fails the outstanding request at once rather than letting it wait out its timeout)
- no answer within the timeout, on every attempt -> ``DeviceTimeout``
- an exception response -> ``DeviceError(code=exception code)``, except the two a gateway
  sends about the line behind it: 11 (target device failed to respond) counts as a timeout
  (retried, then ``DeviceTimeout``) and 10 (gateway path unavailable) as ``ConnectionLost``
- an answer that cannot be parsed or has the wrong size, or a frame that is not Modbus TCP
  (protocol id other than 0, impossible length) -> ``FramingError``; the connection is then
  reset, since the byte stream can no longer be trusted
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import structlog

from core.errors import ConnectionLost, DeviceError, DeviceTimeout, FramingError
from drivers.modbus.mbap import MAX_ADU, NotModbusTcp, encode, frame_end
from drivers.modbus.serial_pdu import (
    EXCEPTION_NAMES,
    Request,
    decode_response,
    read_request,
    write_coil_request,
    write_coils_request,
    write_register_request,
    write_registers_request,
)
from drivers.modbus.types import Table

__all__ = ["LinkStats", "ModbusTcpLink"]

_LOG = structlog.get_logger(__name__)

_GATEWAY_PATH_UNAVAILABLE = 10
_GATEWAY_TARGET_FAILED = 11


@dataclass(slots=True)
class LinkStats:
    """Counters for diagnostics and benchmarks; they only ever grow.

    ``dropped_frames`` counts well-formed frames that answered nothing outstanding: late
    answers to a request given up, or frames for another transaction or unit.
    """

    requests: int = 0
    attempts: int = 0
    timeouts: int = 0
    connects: int = 0
    connection_losses: int = 0
    framing_errors: int = 0
    exception_responses: int = 0
    dropped_frames: int = 0


_BUFFER_SIZE = 512
# Pending bytes are always a partial frame moved to the front (shorter than MAX_ADU), so a buffer
# of at least MAX_ADU always has room for the next read and holds any frame whole: it never grows.
assert _BUFFER_SIZE >= MAX_ADU


class _Connection(asyncio.BufferedProtocol):
    """One TCP connection: at most one transaction outstanding, its answer found by tid and unit.

    The socket reads into ``_buffer`` (see the module docstring for why), frames are cut where
    they lie, and ``_end`` marks the bytes of a partial frame waiting at the front.

    Kept small on purpose (slots, futures only while something waits), since a gateway holds
    one per endpoint and may hold hundreds.
    """

    __slots__ = (
        "_buffer",
        "_closed",
        "_end",
        "_name",
        "_stats",
        "_tid",
        "_transport",
        "_unit",
        "_waiter",
        "open",
    )

    def __init__(self, name: str, stats: LinkStats) -> None:
        self._name = name
        self._stats = stats
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray(_BUFFER_SIZE)
        self._end = 0  # bytes pending in _buffer[:_end]: a partial frame, or nothing
        self._tid = 0
        self._unit = -1
        self._waiter: asyncio.Future[bytes] | None = None
        self._closed: asyncio.Future[None] | None = None
        # False from the moment we give the connection up or it drops: never send on it again.
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._transport = None
        self._end = 0
        self._fail(ConnectionLost(f"{self._name} dropped the connection"))
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def get_buffer(self, sizehint: int) -> bytearray | memoryview:
        if not self._end:
            # The usual case, a whole answer per read: the buffer itself, no view to allocate.
            return self._buffer
        return memoryview(self._buffer)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        buffer = self._buffer
        end = self._end + nbytes
        at = 0
        try:
            while stop := frame_end(buffer, at, end):
                tid = buffer[at] << 8 | buffer[at + 1]
                waiter = self._waiter
                if (
                    waiter is not None
                    and tid == self._tid
                    and buffer[at + 6] == self._unit
                    and not waiter.done()
                ):
                    waiter.set_result(bytes(buffer[at + 7 : stop]))
                    self._waiter = None
                else:
                    self._stats.dropped_frames += 1
                at = stop
        except NotModbusTcp as exc:
            self._end = 0
            self._fail(FramingError(f"{self._name}: {exc}"))
            self.close()
            return
        if at and at < end:
            # A partial frame behind complete ones moves to the front, where there is room for
            # all of it; rare (answers come one at a time) and under MAX_ADU bytes.
            buffer[: end - at] = buffer[at:end]
        self._end = end - at

    def exchange(self, unit: int, pdu: bytes) -> asyncio.Future[bytes]:
        """Send ``pdu`` to ``unit`` as a new transaction; the future gets the answer's PDU."""
        transport = self._transport
        if transport is None or not self.open:
            raise ConnectionLost(f"{self._name} dropped the connection")
        # 1..65535: a fresh id per request is what tells a late answer from the current one.
        self._tid = tid = self._tid % 0xFFFF + 1
        self._unit = unit
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        transport.write(encode(tid, unit, pdu))
        return waiter

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            # abort, not close: a request given up may leave unsent bytes, and a peer that no
            # longer reads must not keep the socket (and us, in aclose) waiting for them.
            self._transport.abort()

    async def wait_closed(self) -> None:
        if self._transport is None:
            return
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
        await self._closed

    def _fail(self, error: Exception) -> None:
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


class ModbusTcpLink:
    """An async context manager owning one TCP connection to ``host:port``.

    Connects lazily on the first request and again after a drop. Every public method is one
    Modbus request and raises only ``core.errors`` types (and ``ValueError`` for a request no
    device could be sent).
    """

    __slots__ = (
        "_closed",
        "_connection",
        "_lock",
        "_timeout_s",
        "_timeouts_in_a_row",
        "host",
        "name",
        "port",
        "reset_after_timeouts",
        "retries",
        "stats",
        "timeout_ms",
    )

    def __init__(
        self,
        host: str,
        port: int = 502,
        *,
        timeout_ms: int = 1000,
        retries: int = 1,
        reset_after_timeouts: int = 3,
        name: str | None = None,
    ) -> None:
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be > 0")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.host = host
        self.port = port
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.reset_after_timeouts = reset_after_timeouts
        self.name = name or f"{host}:{port}"
        self.stats = LinkStats()
        self._timeout_s = timeout_ms / 1000.0
        self._lock = asyncio.Lock()
        self._connection: _Connection | None = None
        self._timeouts_in_a_row = 0
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> ModbusTcpLink:
        self._closed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        async with self._lock:
            self._closed = True
            connection = self._connection
            self._drop_connection()
            if connection is not None:
                # The socket is closed by the event loop a moment later; waiting for it means
                # no socket outlives the link (and no ResourceWarning when the loop ends).
                await connection.wait_closed()

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.open

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _connect(self) -> _Connection:
        if self._closed:
            raise ConnectionLost(f"link {self.name} is closed")
        self._drop_connection()
        self.stats.connects += 1
        connection = _Connection(self.name, self.stats)
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: connection, self.host, self.port)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {self.name}") from exc
        _LOG.debug("modbus.connected", link=self.name)
        self._connection = connection
        return connection

    # --- requests -----------------------------------------------------------------------------

    async def read(self, unit: int, table: Table, start: int, count: int) -> list[int]:
        """Read ``count`` registers (or bits, as 0/1) of ``table`` from ``start``."""
        return await self._request(read_request(unit, table, start, count, tcp=True))

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        """FC 05."""
        await self._request(write_coil_request(unit, address, value, tcp=True))

    async def write_coils(self, unit: int, address: int, values: Sequence[bool]) -> None:
        """FC 15."""
        await self._request(write_coils_request(unit, address, values, tcp=True))

    async def write_register(self, unit: int, address: int, value: int) -> None:
        """FC 06."""
        await self._request(write_register_request(unit, address, value, tcp=True))

    async def write_registers(self, unit: int, address: int, values: Sequence[int]) -> None:
        """FC 16."""
        await self._request(write_registers_request(unit, address, values, tcp=True))

    async def _request(self, request: Request) -> list[int]:
        stats = self.stats
        async with self._lock:
            stats.requests += 1
            bridge_answered = False
            for attempt in range(self.retries + 1):
                stats.attempts += 1
                connecting = True
                try:
                    async with asyncio.timeout(self._timeout_s):
                        connection = self._connection
                        if connection is None or not connection.open:
                            connection = await self._connect()
                        connecting = False
                        pdu = await connection.exchange(request.unit, request.pdu)
                except TimeoutError as exc:
                    if connecting:
                        # Nothing was sent: the host is unreachable, not the device silent.
                        stats.connection_losses += 1
                        message = f"cannot connect to {self.name} within {self.timeout_ms} ms"
                        raise ConnectionLost(message) from exc
                    stats.timeouts += 1
                    _LOG.debug(
                        "modbus.timeout",
                        link=self.name,
                        unit=request.unit,
                        request=request.what,
                        attempt=attempt,
                    )
                    continue
                except ConnectionLost:
                    stats.connection_losses += 1
                    self._drop_connection()
                    raise
                except FramingError:
                    stats.framing_errors += 1
                    self._drop_connection()
                    raise
                self._timeouts_in_a_row = 0
                if len(pdu) == 2 and pdu[0] == request.function | 0x80:
                    code = pdu[1]
                    if code == _GATEWAY_TARGET_FAILED:
                        # A TCP-to-RTU bridge answering for a silent device behind it: the device
                        # timed out, it did not refuse, so this is retried and ends as a timeout.
                        stats.timeouts += 1
                        bridge_answered = True
                        continue
                    stats.exception_responses += 1
                    name = EXCEPTION_NAMES.get(code, "unknown exception")
                    message = f"{self.name} unit {request.unit} {request.what}: exception {code} ({name})"
                    if code == _GATEWAY_PATH_UNAVAILABLE:
                        raise ConnectionLost(message)
                    raise DeviceError(message, code=code)
                try:
                    return decode_response(request, pdu)
                except FramingError as exc:
                    stats.framing_errors += 1
                    self._drop_connection()
                    raise FramingError(f"{self.name} {exc}") from exc
            if not bridge_answered:
                self._timeouts_in_a_row += 1
                if self._timeouts_in_a_row >= self.reset_after_timeouts:
                    # Probably a half-open connection: start afresh on the next request.
                    self._timeouts_in_a_row = 0
                    self._drop_connection()
            raise DeviceTimeout(
                f"{self.name} unit {request.unit} {request.what}: no answer within {self.timeout_ms} ms "
                f"after {self.retries + 1} attempt(s)"
                + (" (the gateway reported the target device silent)" if bridge_answered else "")
            )
