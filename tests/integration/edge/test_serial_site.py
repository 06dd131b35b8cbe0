"""A site with Modbus TCP, RTU, ASCII and RTU-over-TCP buses passes the loader, is served by
`gatehouse simulate`'s runner (ptys for the serial lines, a TCP server for RTU over TCP), and
every device's values reach the gateway's sink through the registry-built drivers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.model import Event, Quality, Sample, SystemClock
from edge.app import Gateway
from edge.config.loader import load_site
from edge.wiring import build_devices
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.support import free_port, wait_until

SITE = """\
site: {{id: serial-estate}}
gateway: {{id: gw-serial, data_dir: data}}
buses:
  - {{id: lan, type: modbus_tcp, host: 127.0.0.1, port: {tcp}}}
  - {{id: rs485-1, type: modbus_rtu, port: dev/rs485-1, baudrate: 19200, parity: E, timeout_ms: 300}}
  - {{id: rs485-2, type: modbus_ascii, port: dev/rs485-2, baudrate: 9600, timeout_ms: 500}}
  - {{id: dtu, type: modbus_rtu_tcp, host: 127.0.0.1, port: {rtu_tcp}, baudrate: 9600, timeout_ms: 500}}
devices:
  - {{id: meter-lan, bus: lan, unit: 1, profile: eastron-sdm630, poll_interval_s: 0.5}}
  - {{id: meter-a, bus: rs485-1, unit: 1, profile: eastron-sdm630, poll_interval_s: 0.5}}
  - {{id: tank-a, bus: rs485-1, unit: 2, profile: secondary-water-tank, poll_interval_s: 0.5}}
  - {{id: water-b, bus: rs485-2, unit: 3, profile: water-meter, poll_interval_s: 0.5}}
  - {{id: meter-c, bus: dtu, unit: 4, profile: eastron-sdm630, poll_interval_s: 0.5}}
"""


async def test_every_modbus_bus_type_runs_from_one_site_file(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(tcp=free_port(), rtu_tcp=free_port()), encoding="utf-8")
    site = load_site(path)
    assert {d.bus.type for d in site.devices} == {
        "modbus_tcp",
        "modbus_rtu",
        "modbus_ascii",
        "modbus_rtu_tcp",
    }

    good: dict[str, set[str]] = {}
    events: list[Event] = []

    async def sink(samples: list[Sample]) -> None:
        for s in samples:
            if s.quality is Quality.GOOD:
                _, device, point = s.point_id.split("/")
                good.setdefault(device, set()).add(point)

    async def on_event(event: Event) -> None:
        events.append(event)

    plan = read_site_plan(path)
    async with SimulationRunner(plan.devices, tick_s=None) as sim:
        # The serial lines are ptys the simulator links at the paths the site names.
        assert str(sim.endpoint_of("meter-a")).startswith("/dev/pts/")
        async with (
            build_devices(site, sink=sink, events=on_event, clock=SystemClock()) as ds,
            asyncio.TaskGroup() as tg,
        ):
            tasks = [tg.create_task(c.run(), name=f"coord-{i}") for i, c in ds.coordinators.items()]
            try:
                expected = {d.id: {p.id for p in d.points if p.access != "w"} for d in site.devices}
                await wait_until(
                    lambda: all(expected[d] <= good.get(d, set()) for d in expected),
                    timeout_s=60,
                    message="good values from every device",
                )
            finally:
                for task in tasks:
                    task.cancel()
    online = {e.source for e in events if e.kind == "device.online"}
    assert online == {d.id for d in site.devices}
    assert not [e for e in events if e.kind == "device.offline"]


async def test_an_unplugged_serial_port_is_a_point_that_goes_false_and_back(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(tcp=free_port(), rtu_tcp=free_port()), encoding="utf-8")
    site = load_site(path)
    port_point = site.point_id("_bus", "rs485-1")

    def port_state() -> object:
        sample = gw.live.latest.get(port_point)
        return None if sample is None else sample.value

    async with (
        SimulationRunner(read_site_plan(path).devices, tick_s=None) as sim,
        Gateway(site) as gw,
    ):
        run = asyncio.create_task(gw.run(), name="gateway")
        try:
            await wait_until(lambda: port_state() is True, timeout_s=30, message="port open point")
            await wait_until(lambda: gw.live.device_online.get("meter-a") is True, timeout_s=30)
            line = sim.rtu_servers[str(tmp_path / "dev" / "rs485-1")]
            await line.unplug()
            await wait_until(lambda: port_state() is False, timeout_s=30, message="port lost point")
            await line.replug()
            await wait_until(lambda: port_state() is True, timeout_s=30, message="port reopened point")
            await wait_until(lambda: gw.live.device_online.get("meter-a") is True, timeout_s=30)
        finally:
            gw.stop()
            await run
