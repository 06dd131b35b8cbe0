"""Serial-line devices over real pseudo-terminals, from a site file through ``load_site`` and
``build_devices`` to the coordinators' samples: a polled analyser, two addressed level
transmitters sharing a line, a fire panel's printer port in GB18030, and faults."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.model import Event, Quality, Sample, SystemClock, Value
from drivers.serial_line.device import SerialLineDevice
from edge.config.loader import load_site
from edge.config.site import Site
from edge.wiring import DeviceSet, build_devices
from simulators.models.water_tank import WaterTankModel
from simulators.serial_line_device import (
    SerialLineSimulator,
    fire_panel_printer,
    level_transmitter,
    water_quality_analyser,
)
from tests.support import wait_until

SITE = """
site: {{id: estate}}
gateway: {{id: gw-1, data_dir: {data}}}
buses:
  - {{id: wq-port, type: serial_line, port: "{wq}", timeout_ms: 500, inter_command_gap_ms: 5,
      backoff_max_s: 1}}
  - {{id: level-line, type: serial_line, port: "{level}", terminator: "\\r", timeout_ms: 300,
      inter_command_gap_ms: 5, retries: 0}}
  - {{id: printer, type: serial_line, port: "{printer}", encoding: gb18030, baudrate: 9600}}
devices:
  - {{id: wq-1, bus: wq-port, profile: water-quality-analyser-ascii, poll_interval_s: 0.2}}
  - {{id: tank-level-1, bus: level-line, profile: level-transmitter-ascii, address: "01",
      poll_interval_s: 0.2}}
  - {{id: tank-level-2, bus: level-line, profile: level-transmitter-ascii, address: "02",
      poll_interval_s: 0.2}}
  - {{id: panel-b, bus: printer, profile: fire-panel-printer, building: B}}
"""


@dataclass
class Sinks:
    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    async def sample(self, batch: list[Sample]) -> None:
        self.samples.extend(batch)

    async def event(self, event: Event) -> None:
        self.events.append(event)

    def last(self, point_id: str) -> Sample | None:
        for sample in reversed(self.samples):
            if sample.point_id == point_id:
                return sample
        return None

    def kinds(self, source: str) -> list[str]:
        return [e.kind for e in self.events if e.source == source]


@dataclass
class Estate:
    site: Site
    devices: DeviceSet
    sinks: Sinks
    analyser: SerialLineSimulator
    levels: SerialLineSimulator
    printer: SerialLineSimulator
    tank: WaterTankModel


def write_site(tmp_path: Path, **overrides: str) -> Path:
    paths = {name: str(tmp_path / f"tty-{name}") for name in ("wq", "level", "printer")}
    paths.update(overrides)
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(data=tmp_path / "data", **paths), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def estate(tmp_path: Path) -> AsyncIterator[Estate]:
    tank = WaterTankModel(seed=5)  # not stepped: the values the simulators answer stay fixed
    one, two = level_transmitter(tank, "01"), level_transmitter(tank, "02")
    async with (
        SerialLineSimulator(water_quality_analyser(tank), link=tmp_path / "tty-wq") as analyser,
        SerialLineSimulator(
            lambda command: one(command) or two(command), link=tmp_path / "tty-level", terminator=b"\r"
        ) as levels,
        SerialLineSimulator(
            fire_panel_printer(), link=tmp_path / "tty-printer", encoding="gb18030"
        ) as printer,
    ):
        site = load_site(write_site(tmp_path))
        sinks = Sinks()
        async with (
            build_devices(site, sink=sinks.sample, events=sinks.event, clock=SystemClock()) as ds,
            asyncio.TaskGroup() as tg,
        ):
            tasks = [tg.create_task(c.run(), name=f"coord:{i}") for i, c in ds.coordinators.items()]
            try:
                yield Estate(site, ds, sinks, analyser, levels, printer, tank)
            finally:
                for task in tasks:
                    task.cancel()


def good_value(sinks: Sinks, point_id: str) -> Value:
    sample = sinks.last(point_id)
    return sample.value if sample is not None and sample.quality is Quality.GOOD else None


async def test_polled_devices_give_the_models_values(tmp_path: Path) -> None:
    async with estate(tmp_path) as e:
        v = e.tank.values()
        want = {
            "estate/wq-1/turbidity_ntu": round(float(v["turbidity_ntu"] or 0), 2),
            "estate/wq-1/residual_chlorine_mgl": round(float(v["residual_chlorine_mgl"] or 0), 2),
            "estate/wq-1/ph": round(float(v["ph"] or 0), 2),
            "estate/tank-level-1/level_m": round(float(v["level_m"] or 0), 3),
            "estate/tank-level-2/level_m": round(float(v["level_m"] or 0), 3),
            "estate/tank-level-2/water_temp_c": round(float(v["water_temp_c"] or 0), 1),
        }
        await wait_until(
            lambda: all(good_value(e.sinks, p) == w for p, w in want.items()),
            timeout_s=20,
            message=f"samples {want}",
        )
        for device in ("wq-1", "tank-level-1", "tank-level-2"):
            assert e.sinks.kinds(device)[:1] == ["device.online"]
        assert "bus.port_open" in e.sinks.kinds("level-line")
        # Both transmitters were asked, in turn, on their shared line.
        await wait_until(lambda: len(e.levels.commands) >= 6, timeout_s=20)
        asked = [c for _, c in e.levels.commands]
        assert {"#01RD", "#02RD"} <= set(asked)


async def test_printer_lines_arrive_pushed_in_gb18030(tmp_path: Path) -> None:
    async with estate(tmp_path) as e:
        await wait_until(lambda: "device.online" in e.sinks.kinds("panel-b"), timeout_s=20)
        e.printer.print_line("*** 火灾报警控制器 打印开始 ***")  # a header: no points in it
        e.printer.print_event("火警", 1, 23, "B座3层", "感烟")
        await wait_until(lambda: good_value(e.sinks, "estate/panel-b/fire") is True, timeout_s=20)
        assert good_value(e.sinks, "estate/panel-b/last_event") == 1
        assert good_value(e.sinks, "estate/panel-b/last_loop") == 1
        assert good_value(e.sinks, "estate/panel-b/last_address") == 23
        assert good_value(e.sinks, "estate/panel-b/last_location") == "B座3层"
        assert good_value(e.sinks, "estate/panel-b/last_device_type") == "感烟"
        # A fault elsewhere does not clear the fire; the reset does.
        e.printer.print_event("故障", 2, 7, "B座1层", "手报")
        await wait_until(lambda: good_value(e.sinks, "estate/panel-b/fault") is True, timeout_s=20)
        assert good_value(e.sinks, "estate/panel-b/fire") is True
        assert good_value(e.sinks, "estate/panel-b/last_event") == 2
        e.printer.print_line("2026-12-04 03:20:41 复位")
        await wait_until(lambda: good_value(e.sinks, "estate/panel-b/fire") is False, timeout_s=20)
        assert good_value(e.sinks, "estate/panel-b/fault") is False


async def test_garbage_bad_checksums_and_partial_lines_do_not_stop_polling(tmp_path: Path) -> None:
    async with estate(tmp_path) as e:
        ph = "estate/wq-1/ph"
        await wait_until(lambda: good_value(e.sinks, ph) is not None, timeout_s=20)
        driver = e.devices.drivers["wq-1"]
        assert isinstance(driver, SerialLineDevice)
        e.analyser.inject("garbage", count=40)
        e.analyser.inject("bad_checksum", count=4)
        e.analyser.inject("partial", count=2)
        await wait_until(lambda: driver.parser.stats.bad_checksum >= 4, timeout_s=20)
        e.analyser.clear()
        e.printer.send_raw(b"\xff\xfe\x00garbage without end" * 100)  # over-long, no terminator
        e.printer.send_raw(b"\r\n")
        e.printer.print_event("火警", 3, 5)
        await wait_until(lambda: good_value(e.sinks, "estate/panel-b/last_loop") == 3, timeout_s=20)
        mark = len(e.sinks.samples)
        await wait_until(
            lambda: any(s.point_id == ph and s.quality is Quality.GOOD for s in e.sinks.samples[mark:]),
            timeout_s=20,
        )
        assert e.site is not None and e.devices.coordinators["wq-1"].online is True


async def test_a_silent_transmitter_goes_offline_alone(tmp_path: Path) -> None:
    async with estate(tmp_path) as e:
        await wait_until(lambda: "device.online" in e.sinks.kinds("tank-level-2"), timeout_s=20)
        e.levels.commands.clear()
        # Transmitter 02 stops answering (its address is never answered any more).
        tank = e.tank
        only_one = level_transmitter(tank, "01")
        e.levels.responder = only_one  # the wire goes quiet for 02 only
        await wait_until(lambda: "device.offline" in e.sinks.kinds("tank-level-2"), timeout_s=20)
        assert "device.offline" not in e.sinks.kinds("tank-level-1")
        polls_before = e.devices.coordinators["tank-level-1"].stats.polls_ok
        await wait_until(
            lambda: e.devices.coordinators["tank-level-1"].stats.polls_ok >= polls_before + 5, timeout_s=20
        )


def test_site_checks_reject_shared_printers_and_missing_groups(tmp_path: Path) -> None:
    path = write_site(tmp_path)
    text = path.read_text(encoding="utf-8")
    text += (
        "  - {id: panel-c, bus: printer, profile: fire-panel-printer}\n"
        "  - {id: wq-2, bus: wq-port, profile: water-quality-analyser-ascii,\n"
        "     points: [{id: colour, group: colour_pcu}]}\n"
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    messages = "\n".join(str(p) for p in caught.value.problems)
    assert "prints with no prefix too" in messages
    assert "reads group 'colour_pcu'" in messages


def test_a_poll_device_without_a_command_is_a_config_error(tmp_path: Path) -> None:
    path = write_site(tmp_path)
    text = path.read_text(encoding="utf-8")
    text += "  - {id: raw-1, bus: wq-port, line: {mode: poll}, points: [{id: v, field: 0}]}\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    assert "poll mode needs a 'command'" in str(caught.value)


async def test_the_simulate_starter_serves_a_sites_serial_lines(tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    from simulators.protocol_sims import ProtocolSims
    from simulators.serial_line_device import start_serial_line

    path = write_site(tmp_path)
    raw = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    buses = {b["id"]: b for b in raw["buses"]}
    sims = ProtocolSims()
    async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tg:
        for bus_id in ("wq-port", "level-line", "printer"):
            devices = [d for d in raw["devices"] if d["bus"] == bus_id]
            await start_serial_line(stack, tg, tmp_path, buses[bus_id], devices, sims)
        assert set(sims.devices) == {"wq-1", "tank-level-1", "tank-level-2", "panel-b"}
        site = load_site(path)
        sinks = Sinks()
        async with build_devices(site, sink=sinks.sample, events=sinks.event, clock=SystemClock()) as ds:
            tasks = [tg.create_task(c.run()) for c in ds.coordinators.values()]
            await wait_until(
                lambda: good_value(sinks, "estate/tank-level-2/level_m") is not None, timeout_s=20
            )
            await wait_until(lambda: good_value(sinks, "estate/wq-1/ph") is not None, timeout_s=20)
            await sims.devices["wq-1"].inject("ph_abnormal", {"value": 9.2})
            await wait_until(
                lambda: abs(float(good_value(sinks, "estate/wq-1/ph") or 0) - 9.2) <= 0.011, timeout_s=20
            )
            await wait_until(lambda: "device.online" in sinks.kinds("panel-b"), timeout_s=20)
            await sims.devices["panel-b"].inject("fire", {"loop": 2, "address": 17})
            await wait_until(lambda: good_value(sinks, "estate/panel-b/fire") is True, timeout_s=20)
            assert good_value(sinks, "estate/panel-b/last_address") == 17
            await sims.devices["tank-level-1"].inject("silent", {})
            await wait_until(lambda: "device.offline" in sinks.kinds("tank-level-1"), timeout_s=20)
            assert "device.offline" not in sinks.kinds("tank-level-2")
            for task in tasks:
                task.cancel()
