"""Modbus RTU on a real pseudo-terminal: the serial scheduler against the emulated RS-485 line.

Also holds the helpers the other serial test files use (``line_bus``, ``Spec``, ``Gateway``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from core.model import Event, Sample, SystemClock
from drivers.base import Driver
from drivers.config_base import BusBase, ReportPolicy
from drivers.modbus.config import ModbusDeviceConfig, ModbusProfile, ModbusProfileDefaults, ModbusRtuBus
from drivers.modbus.serial_bus import open_serial_bus
from drivers.modbus.serial_scheduler import SerialScheduler
from drivers.modbus.types import Table
from drivers.registry import BusContext
from edge.coordinator import DeviceCoordinator
from simulators.device import SimulatedDevice
from simulators.modbus_rtu import ModbusRtuServer
from simulators.profile import PROFILE_DIR, load_profile_file
from simulators.rs485_line import Rs485Line
from tests.support import wait_until

PROFILE = "water-meter"


def modbus_profile(name: str = PROFILE) -> ModbusProfile:
    raw = YAML(typ="safe").load((PROFILE_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    return ModbusProfile.model_validate(raw)


def sim_devices(units: Sequence[int], name: str = PROFILE) -> dict[int, SimulatedDevice]:
    profile = load_profile_file(PROFILE_DIR / f"{name}.yaml")
    return {unit: SimulatedDevice.build(f"dev{unit}", profile, seed=unit) for unit in units}


@dataclass(frozen=True)
class Spec:
    """A resolved device, as ``drivers.registry.DeviceSpec`` asks."""

    id: str
    config: ModbusDeviceConfig
    bus: BusBase
    profile: ModbusProfile
    points: tuple[Any, ...]
    poll_interval_s: float = 0.25
    timeout_ms: int = 100
    retries: int = 1
    defaults: ModbusProfileDefaults = field(default_factory=ModbusProfileDefaults)
    report: ReportPolicy = field(default_factory=ReportPolicy)


def specs(bus: BusBase, units: Sequence[int], *, name: str = PROFILE, **kw: Any) -> list[Spec]:
    profile = modbus_profile(name)
    return [
        Spec(
            f"dev{unit}",
            ModbusDeviceConfig(id=f"dev{unit}", bus=bus.id, unit=unit),
            bus,
            profile,
            tuple(profile.points),
            defaults=profile.defaults,
            **kw,
        )
        for unit in units
    ]


@dataclass
class Gateway:
    """Coordinators over a bus's drivers, recording samples and events (device and bus)."""

    drivers: dict[str, Driver]
    events: list[Event] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    coordinators: dict[str, DeviceCoordinator] = field(default_factory=dict)

    async def sink(self, samples: list[Sample]) -> None:
        self.samples.extend(samples)

    async def event(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self, source: str) -> list[str]:
        return [e.kind for e in self.events if e.source == source]

    @contextlib.asynccontextmanager
    async def running(self, backoff_max_s: float = 60.0) -> AsyncIterator[Gateway]:
        async with asyncio.TaskGroup() as group:
            tasks = []
            for device_id, driver in self.drivers.items():
                coordinator = DeviceCoordinator(
                    device_id=device_id,
                    driver=driver,
                    point_ids={key: f"site/{device_id}/{key}" for g in driver.poll_groups() for key in g.keys}
                    | {"valve_open": f"site/{device_id}/valve_open"},
                    sink=self.sink,
                    events=self.event,
                    clock=SystemClock(),
                    backoff_max_s=backoff_max_s,
                )
                self.coordinators[device_id] = coordinator
                tasks.append(group.create_task(coordinator.run()))
            try:
                yield self
            finally:
                for task in tasks:
                    task.cancel()


def context(gateway: Gateway) -> BusContext:
    return BusContext(events=gateway.event, clock=SystemClock(), site_dir=Path("."), data_dir=Path("."))


def scheduler_of(drivers: dict[str, Driver]) -> SerialScheduler:
    link = next(iter(drivers.values())).link  # type: ignore[attr-defined]
    assert isinstance(link, SerialScheduler)
    return link


def assert_one_request_at_a_time(line: Rs485Line) -> None:
    frames = list(line.frames)
    assert frames
    assert line.collisions == 0
    for before, after in zip(frames, frames[1:], strict=False):
        busy_until = before.response_end if before.response_end is not None else before.request_end
        assert after.request_start >= busy_until - 1e-4, (before, after)


# --- tests -----------------------------------------------------------------------------------------


async def polls_per_s(
    tmp_path: Path, units: Sequence[int], dead: int | None, seconds: float
) -> dict[str, float]:
    """Successful polls per second of each live device over ``seconds`` after a warm-up."""
    link = str(tmp_path / f"ttyRS485-{dead}")
    sims = sim_devices(units)
    if dead is not None:
        sims[dead].faults.inject("comm_loss", {})
    async with ModbusRtuServer(sims, link_path=link, baudrate=115200) as server:
        bus = ModbusRtuBus(id="line1", type="modbus_rtu", port=link, baudrate=115200)
        gateway = Gateway({})
        async with open_serial_bus(bus, specs(bus, units), context(gateway)) as drivers:
            gateway.drivers = dict(drivers)
            async with gateway.running():
                live = [f"dev{u}" for u in units if u != dead]
                await wait_until(
                    lambda: all(gateway.coordinators[d].online for d in live), timeout_s=15, message="online"
                )
                await asyncio.sleep(0.5)  # past the start-up jitter of the first polls
                before = {d: gateway.coordinators[d].stats.polls_ok for d in live}
                started = asyncio.get_running_loop().time()
                await asyncio.sleep(seconds)
                elapsed = asyncio.get_running_loop().time() - started
                rates = {d: (gateway.coordinators[d].stats.polls_ok - before[d]) / elapsed for d in live}
                if dead is not None:
                    assert gateway.coordinators[f"dev{dead}"].online is False
        assert_one_request_at_a_time(server.line)
        if dead is not None:
            probes = sum(1 for f in server.line.frames if f.unit == dead)
            assert 1 <= probes <= 8, probes  # probed once per backoff period, not every poll
    return rates


async def test_eight_devices_one_dead_the_live_ones_keep_their_rate(tmp_path: Path) -> None:
    units = list(range(1, 9))
    # 5 s windows at 4 polls/s: one poll more or less is 5 %, inside the 10 % asked for.
    baseline = await polls_per_s(tmp_path, units[:-1], None, 5.0)
    with_dead = await polls_per_s(tmp_path, units, 8, 5.0)
    for device, rate in baseline.items():
        assert rate > 3.5, baseline  # 0.25 s interval: 4 polls/s
        assert abs(with_dead[device] - rate) <= 0.10 * rate, (device, rate, with_dead[device])


async def test_usb_adapter_loss_one_offline_and_one_online_per_device(tmp_path: Path) -> None:
    link = str(tmp_path / "ttyUSB0")
    units = [1, 2, 3]
    async with ModbusRtuServer(sim_devices(units), link_path=link, baudrate=19200) as server:
        bus = ModbusRtuBus(id="line1", type="modbus_rtu", port=link, baudrate=19200, backoff_max_s=2.0)
        gateway = Gateway({})
        async with open_serial_bus(bus, specs(bus, units), context(gateway)) as drivers:
            gateway.drivers = dict(drivers)
            scheduler = scheduler_of(gateway.drivers)
            async with gateway.running(backoff_max_s=2.0):
                devices = list(gateway.drivers)
                await wait_until(
                    lambda: all(gateway.coordinators[d].online for d in devices), message="online"
                )
                await server.unplug()  # the adapter is pulled: the pty closes and the path vanishes
                await wait_until(lambda: "bus.port_lost" in gateway.kinds("line1"), message="port lost")
                await wait_until(
                    lambda: all(gateway.coordinators[d].online is False for d in devices), message="offline"
                )
                await asyncio.sleep(0.5)  # a few reopen attempts fail while the path is gone
                await server.replug()
                await wait_until(
                    lambda: gateway.kinds("line1").count("bus.port_open") == 2, message="reopened"
                )
                await wait_until(
                    lambda: all(gateway.coordinators[d].online for d in devices), timeout_s=20, message="back"
                )
                polls = {d: gateway.coordinators[d].stats.polls_ok for d in devices}
                await wait_until(
                    lambda: all(gateway.coordinators[d].stats.polls_ok > polls[d] + 2 for d in devices),
                    message="polling resumed",
                )
        assert gateway.kinds("line1") == ["bus.port_open", "bus.port_lost", "bus.port_open"]
        for device in devices:
            assert gateway.kinds(device) == ["device.online", "device.offline", "device.online"]
        assert scheduler.stats.port_losses == 1 and scheduler.stats.reopens == 1
        assert scheduler.stats.fast_failures >= len(devices)


async def test_writes_and_priority_blocks_go_before_telemetry_and_broadcasts_get_no_answer(
    tmp_path: Path,
) -> None:
    link = str(tmp_path / "ttyS1")
    units = [1, 2, 3, 4]
    sims = sim_devices(units)
    async with ModbusRtuServer(sims, link_path=link, baudrate=19200) as server:
        bus = ModbusRtuBus(id="line1", type="modbus_rtu", port=link, baudrate=19200, turnaround_ms=50)
        device_specs = specs(bus, units)
        # Unit 4's status word is a priority point: a block with it jumps the telemetry queue.
        profile = device_specs[3].profile
        points = tuple(p.model_copy(update={"poll_first": p.id == "status"}) for p in profile.points)
        device_specs[3] = Spec("dev4", device_specs[3].config, bus, profile, points)
        gateway = Gateway({})
        async with open_serial_bus(bus, device_specs, context(gateway)) as drivers:
            scheduler = scheduler_of(dict(drivers))
            await wait_until(lambda: scheduler.state == "open", message="open")
            calls = [
                scheduler.read(1, Table.HOLDING, 0, 2),
                scheduler.read(2, Table.HOLDING, 0, 2),
                scheduler.read(3, Table.HOLDING, 0, 2),
                scheduler.read(4, Table.HOLDING, 4, 1),  # the status word: priority
                scheduler.write_coil(2, 0, True),
            ]
            await asyncio.gather(*calls)
            order = [(f.unit, f.function) for f in server.line.frames]
            # Every call was queued before the worker ran: priority first, then round robin.
            assert order[:2] in ([(4, 3), (2, 5)], [(2, 5), (4, 3)]), order
            assert sorted(order[2:]) == [(1, 3), (2, 3), (3, 3)]
            assert scheduler.stats.priority_requests == 2
            # A broadcast: every device takes it, none answers, the line rests for turnaround_ms.
            started = asyncio.get_running_loop().time()
            await scheduler.write_register(0, 9, 7)
            await scheduler.read(1, Table.HOLDING, 0, 1)
            assert asyncio.get_running_loop().time() - started >= 0.05
            assert server.line.frames[-2].fault == "broadcast"
            assert scheduler.stats.broadcasts == 1 and scheduler.stats.timeouts == 0
        assert_one_request_at_a_time(server.line)
        assert Counter(f.function for f in server.line.frames)[6] == 1
