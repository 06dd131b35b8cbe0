"""``ModbusTcpLink``: one TCP connection to one host:port, shared by every unit id behind it.

A TCP-to-RTU bridge forwards to an RS-485 line that carries one request at a time, so the link
holds an ``asyncio.Lock`` for the whole of a request including its retries: exactly one request
is in flight, and devices behind the same bridge take turns (the "one scheduler per shared
port" rule). A plain Modbus TCP device is served the same way.

Timeouts and retries belong to the link, not to pymodbus: pymodbus is built with ``retries=0``
and a response timeout longer than ours, and each attempt runs under ``asyncio.timeout``. A
silent device therefore costs exactly ``timeout_ms × (retries + 1)``.

What happens to a late answer after a timeout: pymodbus stamps every request with a new MBAP
transaction id and its framer skips frames whose id is not the outstanding one, and our
cancelled wait leaves pymodbus' response future cancelled, so a late answer is dropped rather
than taken as the answer to the next request (see ``tests/integration/drivers``). The
connection is therefore kept after a timeout, except after ``reset_after_timeouts`` timed-out
requests in a row with nothing answered in between, which is how a half-open connection (a
bridge that rebooted without closing it) shows itself.

Errors, translated from pymodbus at this boundary:

- could not connect, or the connection dropped during a request -> ``ConnectionLost``
- no answer within the timeout, on every attempt -> ``DeviceTimeout``
- an exception response -> ``DeviceError(code=exception code)``, except the two a gateway
  sends about the line behind it: 11 (target device failed to respond) counts as a timeout
  (retried, then ``DeviceTimeout``) and 10 (gateway path unavailable) as ``ConnectionLost``
- an answer that cannot be parsed or has the wrong size -> ``FramingError`` (the connection is
  then reset, since the byte stream can no longer be trusted)
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import structlog
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException

from core.errors import ConnectionLost, DeviceError, DeviceTimeout, FramingError
from drivers.base import raise_if_cancelling
from drivers.modbus.types import Table

__all__ = ["LinkStats", "ModbusTcpLink"]

_LOG = structlog.get_logger(__name__)

# Modbus exception codes, for messages (Modbus Application Protocol v1.1b3 §7).
_EXCEPTION_NAMES = {
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


_READ_METHODS = {
    Table.HOLDING: "read_holding_registers",  # FC 03
    Table.INPUT: "read_input_registers",  # FC 04
    Table.COIL: "read_coils",  # FC 01
    Table.DISCRETE_INPUT: "read_discrete_inputs",  # FC 02
}


_GATEWAY_PATH_UNAVAILABLE = 10
_GATEWAY_TARGET_FAILED = 11


@dataclass(slots=True)
class LinkStats:
    """Counters for diagnostics and benchmarks; they only ever grow."""

    requests: int = 0
    attempts: int = 0
    timeouts: int = 0
    connects: int = 0
    connection_losses: int = 0
    framing_errors: int = 0
    exception_responses: int = 0


class ModbusTcpLink:
    """An async context manager owning one pymodbus client to ``host:port``.

    Connects lazily on the first request and again after a drop. Every public method is one
    Modbus request and raises only ``core.errors`` types.
    """

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
        self._client: AsyncModbusTcpClient | None = None
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
            self._drop_client()

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _new_client(self) -> AsyncModbusTcpClient:
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            name=self.name,
            # We reconnect lazily ourselves; pymodbus' background reconnect would race us.
            reconnect_delay=0,
            # Our own asyncio.timeout fires first; this only bounds pymodbus' internal waits.
            timeout=self._timeout_s + 1.0,
            retries=0,
        )
        _install_hooks(client)
        return client

    async def _ensure_connected(self) -> AsyncModbusTcpClient:
        if self._closed:
            raise ConnectionLost(f"link {self.name} is closed")
        client = self._client
        if client is not None and client.connected:
            return client
        self._drop_client()
        client = self._new_client()
        self.stats.connects += 1
        try:
            connected = await client.connect()
        except BaseException:
            client.close()  # cancelled or timed out half-way: leave no socket behind
            raise
        if not connected:
            client.close()
            raise ConnectionLost(f"cannot connect to {self.name}")
        _LOG.debug("modbus.connected", link=self.name)
        self._client = client
        return client

    # --- requests -----------------------------------------------------------------------------

    async def read(self, unit: int, table: Table, start: int, count: int) -> list[int]:
        """Read ``count`` registers (or bits, as 0/1) of ``table`` from ``start``."""
        method = _READ_METHODS[table]

        def call(client: AsyncModbusTcpClient) -> Any:
            return getattr(client, method)(start, count=count, device_id=unit)

        response = await self._request(unit, method, call)
        if table.is_bits:
            return _bits(response, count, self.name)
        return _registers(response, count, self.name)

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        """FC 05."""
        await self._request(unit, "write_coil", lambda c: c.write_coil(address, value, device_id=unit))

    async def write_coils(self, unit: int, address: int, values: Sequence[bool]) -> None:
        """FC 15."""
        bits = list(values)
        await self._request(unit, "write_coils", lambda c: c.write_coils(address, bits, device_id=unit))

    async def write_register(self, unit: int, address: int, value: int) -> None:
        """FC 06."""
        await self._request(
            unit, "write_register", lambda c: c.write_register(address, value, device_id=unit)
        )

    async def write_registers(self, unit: int, address: int, values: Sequence[int]) -> None:
        """FC 16."""
        regs = list(values)
        await self._request(
            unit, "write_registers", lambda c: c.write_registers(address, regs, device_id=unit)
        )

    async def _request(self, unit: int, what: str, call: Callable[[AsyncModbusTcpClient], Any]) -> Any:
        async with self._lock:
            self.stats.requests += 1
            bridge_answered = False
            for attempt in range(self.retries + 1):
                self.stats.attempts += 1
                connecting = True
                try:
                    async with asyncio.timeout(self._timeout_s):
                        client = await self._ensure_connected()
                        connecting = False
                        response = await call(client)
                        raise_if_cancelling()
                except TimeoutError as exc:
                    if connecting:
                        # Nothing was sent: the host is unreachable, not the device silent.
                        self.stats.connection_losses += 1
                        message = f"cannot connect to {self.name} within {self.timeout_ms} ms"
                        raise ConnectionLost(message) from exc
                    self.stats.timeouts += 1
                    _LOG.debug("modbus.timeout", link=self.name, unit=unit, request=what, attempt=attempt)
                    continue
                except ConnectionLost:
                    self.stats.connection_losses += 1
                    self._drop_client()
                    raise
                except FramingError:
                    self.stats.framing_errors += 1
                    self._drop_client()
                    raise
                except ConnectionException as exc:
                    self.stats.connection_losses += 1
                    self._drop_client()
                    raise ConnectionLost(f"{self.name}: {exc}") from exc
                except ModbusException as exc:
                    self.stats.framing_errors += 1
                    self._drop_client()
                    raise FramingError(f"{self.name} unit {unit} {what}: {exc}") from exc
                self._timeouts_in_a_row = 0
                if response is None or not hasattr(response, "isError"):
                    raise FramingError(f"{self.name} unit {unit} {what}: no usable answer")
                if not response.isError():
                    return response
                code = int(getattr(response, "exception_code", 0))
                name = _EXCEPTION_NAMES.get(code, "unknown exception")
                if code == _GATEWAY_TARGET_FAILED:
                    # A TCP-to-RTU bridge answering for a silent device behind it: the device
                    # timed out, it did not refuse, so this is retried and ends as a timeout.
                    self.stats.timeouts += 1
                    bridge_answered = True
                    continue
                self.stats.exception_responses += 1
                if code == _GATEWAY_PATH_UNAVAILABLE:
                    raise ConnectionLost(f"{self.name} unit {unit} {what}: exception {code} ({name})")
                raise DeviceError(f"{self.name} unit {unit} {what}: exception {code} ({name})", code=code)
            if not bridge_answered:
                self._timeouts_in_a_row += 1
                if self._timeouts_in_a_row >= self.reset_after_timeouts:
                    # Probably a half-open connection: start afresh on the next request.
                    self._timeouts_in_a_row = 0
                    self._drop_client()
            raise DeviceTimeout(
                f"{self.name} unit {unit} {what}: no answer within {self.timeout_ms} ms "
                f"after {self.retries + 1} attempt(s)"
                + (" (the gateway reported the target device silent)" if bridge_answered else "")
            )


def _registers(response: Any, count: int, name: str) -> list[int]:
    registers = list(getattr(response, "registers", ()) or ())
    if len(registers) != count:
        raise FramingError(f"{name}: asked for {count} registers, got {len(registers)}")
    return registers


def _bits(response: Any, count: int, name: str) -> list[int]:
    bits = getattr(response, "bits", None) or []
    # Bit answers are padded to whole bytes; anything shorter than asked is a broken answer.
    if len(bits) < count:
        raise FramingError(f"{name}: asked for {count} bits, got {len(bits)}")
    return [1 if b else 0 for b in bits[:count]]


def _install_hooks(client: AsyncModbusTcpClient) -> None:
    """Make pymodbus fail an outstanding request at once on a drop or an unparseable answer.

    Left alone, pymodbus 3.16 lets a request whose connection dropped wait out its whole timeout,
    and an answer it cannot decode raises inside ``data_received`` (asyncio then closes the
    transport), again leaving the request to time out. Both hooks resolve the transaction
    manager's ``response_future`` (pymodbus internals, pinned by the integration tests) with
    our own error instead.
    """
    ctx = client.ctx
    original_callback_data = ctx.callback_data

    def fail_outstanding(error: Exception) -> None:
        future = getattr(ctx, "response_future", None)
        if isinstance(future, asyncio.Future) and not future.done():
            future.set_exception(error)

    def on_connect(connected: bool) -> None:
        if not connected:
            where = f"{client.comm_params.host}:{client.comm_params.port}"
            fail_outstanding(ConnectionLost(f"{where} dropped the connection"))

    def callback_data(data: bytes, addr: tuple[str, int] | None = None) -> int:
        # A Modbus TCP frame always has protocol id 0; pymodbus would otherwise wait forever.
        if len(data) >= 4 and data[2:4] != b"\x00\x00":
            fail_outstanding(FramingError(f"protocol id {data[2:4].hex()} is not Modbus"))
            return len(data)
        try:
            return int(original_callback_data(data, addr))
        except (ModbusException, struct.error, ValueError, IndexError, KeyError) as exc:
            error = FramingError(f"cannot parse the answer: {exc}")
            error.__cause__ = exc
            fail_outstanding(error)
            return len(data)

    ctx.trace_connect = on_connect
    ctx.callback_data = callback_data  # type: ignore[method-assign]
