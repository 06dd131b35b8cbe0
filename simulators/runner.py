"""Serve every planned device: one server per endpoint, a ticker stepping the models, and the
control API, all in one ``asyncio.TaskGroup``.

Devices sharing a TCP endpoint are answered by one server under their unit ids, like a
TCP-to-RTU bridge; devices sharing a serial path share one pseudo-terminal, like one RS-485 line.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

from core.model import Clock, SystemClock
from simulators.device import SimulatedDevice
from simulators.modbus_rtu import ModbusRtuServer
from simulators.modbus_tcp import ModbusTcpServer
from simulators.protocol_sims import ProtocolSims, start_protocol_sims
from simulators.rs485_tcp import RtuOverTcpServer
from simulators.site_plan import PlannedDevice

__all__ = ["SimulationRunner"]

_LOG = structlog.get_logger(__name__)


def _control_server(server_class: Any, config: Any) -> Any:
    """A uvicorn server that leaves signals alone: whoever runs the simulators owns them."""

    class QuietServer(server_class):  # type: ignore[misc]
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer(config)


class SimulationRunner:
    """``async with SimulationRunner(plan) as sim:`` serves until the block ends.

    ``tick_s=None`` freezes the physics (values change only by writes and scenarios), which is
    what a test comparing the model with the gateway wants. ``control_port`` starts the HTTP
    control API on ``control_host`` (127.0.0.1 by default; 0 picks a free port).
    """

    def __init__(
        self,
        devices: Sequence[PlannedDevice],
        *,
        clock: Clock | None = None,
        tick_s: float | None = 0.5,
        control_host: str = "127.0.0.1",
        control_port: int | None = None,
        site_path: Path | None = None,
    ) -> None:
        self.planned = tuple(devices)
        self.clock = clock or SystemClock()
        self.tick_s = tick_s
        self.control_host = control_host
        self.control_port = control_port
        # With the site file, devices on non-Modbus buses (26875, OPC UA, ...) are served too.
        self.site_path = site_path
        self.protocol: ProtocolSims = ProtocolSims()
        self.devices: dict[str, SimulatedDevice] = {}
        self.tcp_servers: dict[tuple[str, int], ModbusTcpServer] = {}
        self.rtu_servers: dict[str, ModbusRtuServer] = {}
        self.rtu_tcp_servers: dict[tuple[str, int], RtuOverTcpServer] = {}
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._control: Any = None

    async def __aenter__(self) -> SimulationRunner:
        try:
            await self._start()
        except BaseException:
            self._stop.set()  # or the ticker, already running, would keep the TaskGroup open
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._control is not None:
            self._control.should_exit = True
        await self._stack.aclose()

    async def _start(self) -> None:
        by_tcp: dict[tuple[str, int], dict[int, SimulatedDevice]] = {}
        by_rtu_tcp: dict[tuple[str, int], dict[int, SimulatedDevice]] = {}
        by_rtu: dict[str, dict[int, SimulatedDevice]] = {}
        line_of: dict[object, PlannedDevice] = {}
        for plan in self.planned:
            if plan.id in self.devices:
                raise ValueError(f"device id '{plan.id}' appears twice")
            device = SimulatedDevice.build(
                plan.id,
                plan.profile,
                seed=plan.seed,
                params=plan.params,
                meta={
                    **plan.meta,
                    "unit": plan.unit,
                    "bus": plan.bus,
                    "endpoint": list(plan.endpoint) if plan.is_tcp else plan.endpoint,
                },
            )
            self.devices[plan.id] = device
            line_of.setdefault(plan.endpoint, plan)
            if isinstance(plan.endpoint, str):
                units = by_rtu.setdefault(plan.endpoint, {})
            elif plan.bus_type == "modbus_rtu_tcp":
                units = by_rtu_tcp.setdefault(plan.endpoint, {})
            else:
                units = by_tcp.setdefault(plan.endpoint, {})
            if plan.unit in units:
                raise ValueError(f"{plan.id}: unit {plan.unit} is already taken on {plan.endpoint}")
            units[plan.unit] = device
        for endpoint, units in by_tcp.items():
            server = await self._stack.enter_async_context(ModbusTcpServer(endpoint[0], endpoint[1], units))
            self.tcp_servers[endpoint] = server
        for path, units in by_rtu.items():
            first = line_of[path]
            mode = "ascii" if first.bus_type == "modbus_ascii" else "rtu"
            line: dict[str, Any] = {"mode": mode, **first.line}
            rtu = await self._stack.enter_async_context(ModbusRtuServer(units, link_path=path, **line))
            self.rtu_servers[path] = rtu
        for endpoint, units in by_rtu_tcp.items():
            baud = int(line_of[endpoint].line.get("baudrate", 9600))
            rtu_tcp = RtuOverTcpServer(units, host=endpoint[0], port=endpoint[1], baudrate=baud)
            self.rtu_tcp_servers[endpoint] = await self._stack.enter_async_context(rtu_tcp)
        control_socket: socket.socket | None = None
        if self.control_port is not None:
            # Bound here rather than by uvicorn: a port in use is then a plain OSError for the
            # caller (uvicorn would sys.exit inside its task). Closed after the TaskGroup ends.
            control_socket = socket.create_server((self.control_host, self.control_port))
            self._stack.callback(control_socket.close)
            self.control_port = int(control_socket.getsockname()[1])
        group = await self._stack.enter_async_context(asyncio.TaskGroup())
        if self.site_path is not None:
            from ruamel.yaml import YAML

            raw = YAML(typ="safe").load(self.site_path.read_text(encoding="utf-8"))
            self.protocol = await start_protocol_sims(self._stack, group, self.site_path, raw)
        if self.tick_s is not None:
            self._tasks.append(
                group.create_task(self._tick_loop(self.tick_s, self.clock.monotonic()), name="sim-ticker")
            )
        if control_socket is not None:
            self._start_control(group, control_socket)
        _LOG.info(
            "simulators serving",
            devices=len(self.devices) + len(self.protocol.devices),
            tcp_endpoints=len(self.tcp_servers),
            serial_lines=len(self.rtu_servers),
            control_port=self.control_port,
        )

    def _start_control(self, group: asyncio.TaskGroup, sock: socket.socket) -> None:
        import uvicorn  # here, so that scale runs without the API do not pay for importing it

        from simulators.control_api import build_app

        config = uvicorn.Config(build_app(self), log_level="warning", lifespan="off", access_log=False)
        server = _control_server(uvicorn.Server, config)
        self._control = server
        self._tasks.append(group.create_task(server.serve(sockets=[sock]), name="sim-control-api"))

    @property
    def control_url(self) -> str:
        return f"http://{self.control_host}:{self.control_port}"

    async def _tick_loop(self, tick_s: float, last: float) -> None:
        """Step the models by the time that really passed since ``last`` (the start of serving)."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=tick_s)
            now = self.clock.monotonic()
            self.tick(now - last)
            last = now

    def tick(self, dt_s: float) -> None:
        """Step every model by ``dt_s`` (also callable directly with a frozen runner)."""
        for device in self.devices.values():
            device.tick(dt_s)

    def device(self, device_id: str) -> SimulatedDevice:
        return self.devices[device_id]

    def endpoint_of(self, device_id: str) -> tuple[str, int] | str:
        for plan in self.planned:
            if plan.id == device_id:
                if isinstance(plan.endpoint, tuple) and plan.endpoint in self.rtu_tcp_servers:
                    return (plan.endpoint[0], self.rtu_tcp_servers[plan.endpoint].port)
                if isinstance(plan.endpoint, tuple):
                    return (plan.endpoint[0], self.tcp_servers[plan.endpoint].port)
                return self.rtu_servers[plan.endpoint].slave_path
        raise KeyError(device_id)
