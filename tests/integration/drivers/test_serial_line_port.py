"""The serial-line port scheduler over real ptys: one command on the wire at a time, round robin
with a dead device, timeouts and late answers, the adapter unplugged and plugged back (one bus
and one device event per change), and the silence timeout of an unsolicited device."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConnectionLost, DeviceTimeout
from core.model import Event, Quality, Sample, SystemClock
from drivers.base import LinkState, Reading
from drivers.serial_line.config import LineFormat, SerialLineBus, SerialLinePointConfig
from drivers.serial_line.device import SerialLineDevice
from drivers.serial_line.parser import LineParser
from drivers.serial_line.port import SerialLinePort
from edge.coordinator import DeviceCoordinator
from simulators.serial_line_device import SerialLineSimulator
from tests.support import wait_until

POINTS = [SerialLinePointConfig(id="v", field=1, type="int")]


def bus(path: Path, **kw: Any) -> SerialLineBus:
    return SerialLineBus.model_validate(
        {"id": "line", "type": "serial_line", "port": str(path), "terminator": "\r", "backoff_max_s": 1, **kw}
    )


def echo_device(addresses: set[str]) -> Callable[[str], str | None]:
    """Answers '#NN?' with '>NN <count>' for the addresses it serves; others stay silent."""
    counts: dict[str, int] = {}

    def answer(command: str) -> str | None:
        address = command[1:3]
        if not command.startswith("#") or address not in addresses:
            return None
        counts[address] = counts.get(address, 0) + 1
        return f">{address} {counts[address]}"

    return answer


def polled(
    port: SerialLinePort, device_id: str, address: str, *, timeout_ms: int = 300, retries: int = 0
) -> SerialLineDevice:
    line = LineFormat(mode="poll", command="#{address}?\r", prefix=">{address}")
    parser = LineParser(line, POINTS, address=address, name=device_id)
    return SerialLineDevice(
        device_id,
        port,
        parser,
        line,
        address=address,
        poll_interval_s=0.05,
        timeout_ms=timeout_ms,
        retries=retries,
    )


@contextlib.asynccontextmanager
async def line_with(
    tmp_path: Path, addresses: set[str], **bus_kw: Any
) -> AsyncIterator[tuple[SerialLineSimulator, SerialLinePort, list[Event]]]:
    events: list[Event] = []

    async def sink(event: Event) -> None:
        events.append(event)

    link = tmp_path / "ttyUSB-line"
    async with (
        SerialLineSimulator(echo_device(addresses), link=link, terminator=b"\r") as sim,
        SerialLinePort(bus(link, **bus_kw), events=sink) as port,
    ):
        yield sim, port, events


async def test_round_robin_one_command_at_a_time_with_a_dead_device(tmp_path: Path) -> None:
    async with line_with(tmp_path, {"01", "02", "03"}, inter_command_gap_ms=2) as (sim, port, _):
        devices = [polled(port, f"d{a}", a) for a in ("01", "02", "03", "09")]  # 09 never answers
        answers: dict[str, int] = {d.device_id: 0 for d in devices}
        timeouts: dict[str, int] = {d.device_id: 0 for d in devices}

        async def poll(device: SerialLineDevice) -> None:
            (group,) = device.poll_groups()
            while True:
                try:
                    readings = await device.read(group)
                except DeviceTimeout:
                    timeouts[device.device_id] += 1
                    continue
                assert [r.quality for r in readings] == [Quality.GOOD]
                answers[device.device_id] += 1

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(poll(d)) for d in devices]
            await wait_until(lambda: timeouts["d09"] >= 4, timeout_s=20)
            for task in tasks:
                task.cancel()
        assert port.stats.max_outstanding == 1
        live = [answers[f"d{a}"] for a in ("01", "02", "03")]
        # Each live device gets its turn between two of the dead one's timeouts.
        assert min(live) >= timeouts["d09"] - 1, (answers, timeouts)
        assert max(live) - min(live) <= 1, answers
        # The simulator saw the commands one by one, in turn.
        asked = [c[1:3] for _, c in sim.commands]
        for i in range(len(asked) - 4):
            assert len(set(asked[i : i + 4])) == 4, asked


async def test_timeout_then_the_late_answer_is_dropped(tmp_path: Path) -> None:
    async with line_with(tmp_path, {"01"}) as (sim, port, _):
        device = polled(port, "d01", "01", timeout_ms=200)
        (group,) = device.poll_groups()
        sim.inject("slow", delay_ms=600)
        with pytest.raises(DeviceTimeout):
            await device.read(group)
        await wait_until(lambda: port.stats.dropped_lines >= 1, timeout_s=10)
        sim.clear("slow")
        (reading,) = await device.read(group)
        assert reading.value == 2  # the second answer, not the late first one
        assert port.stats.timeouts == 1


async def test_retries_get_past_a_bad_checksum_burst(tmp_path: Path) -> None:
    link = tmp_path / "tty-wq"
    from simulators.models.water_tank import WaterTankModel
    from simulators.serial_line_device import water_quality_analyser

    tank = WaterTankModel(seed=1)
    async with (
        SerialLineSimulator(water_quality_analyser(tank), link=link) as sim,
        SerialLinePort(bus(link, terminator="\r\n")) as port,
    ):
        line = LineFormat(command="READ\r", pattern=r"PH=(?P<ph>[\d.]+)", checksum={"kind": "sum8"})
        parser = LineParser(line, [SerialLinePointConfig(id="ph")], name="wq")
        device = SerialLineDevice("wq", port, parser, line, timeout_ms=500, retries=2)
        (group,) = device.poll_groups()
        sim.inject("bad_checksum", count=2)
        (reading,) = await device.read(group)
        assert reading.quality is Quality.GOOD and reading.value == pytest.approx(
            float(tank.values()["ph"] or 0)
        )
        assert parser.stats.bad_checksum == 2


async def test_unplugged_adapter_one_offline_and_one_online_event(tmp_path: Path) -> None:
    async with line_with(tmp_path, {"01"}) as (sim, port, bus_events):
        device = polled(port, "d01", "01")
        printer_line = LineFormat(mode="unsolicited", prefix="P")
        printer = SerialLineDevice("printer", port, LineParser(printer_line, POINTS), printer_line)
        device_events: list[Event] = []
        samples: list[Sample] = []

        async def on_event(event: Event) -> None:
            device_events.append(event)

        async def on_samples(batch: list[Sample]) -> None:
            samples.extend(batch)

        coordinators = [
            DeviceCoordinator(
                device_id=d.device_id,
                driver=d,
                point_ids={"v": f"s/{d.device_id}/v"},
                sink=on_samples,
                events=on_event,
                clock=SystemClock(),
                backoff_max_s=0.5,
            )
            for d in (device, printer)
        ]

        def kinds(source: str) -> list[str]:
            return [e.kind for e in device_events if e.source == source]

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(c.run()) for c in coordinators]
            await wait_until(
                lambda: kinds("d01") == ["device.online"] and kinds("printer") == ["device.online"]
            )
            sim.print_line("P 41")
            await wait_until(lambda: any(s.point_id == "s/printer/v" and s.value == 41 for s in samples))
            sim.unplug()
            await wait_until(
                lambda: "device.offline" in kinds("d01") and "device.offline" in kinds("printer")
            )
            sim.replug()
            await wait_until(
                lambda: kinds("d01")[-1:] == ["device.online"] and kinds("printer")[-1:] == ["device.online"]
            )
            mark = len(samples)
            await wait_until(lambda: any(s.point_id == "s/d01/v" and s.good for s in samples[mark:]))
            sim.print_line("P 42")
            await wait_until(lambda: any(s.point_id == "s/printer/v" and s.value == 42 for s in samples))
            for task in tasks:
                task.cancel()
        for source in ("d01", "printer"):
            assert kinds(source) == ["device.online", "device.offline", "device.online"], kinds(source)
        assert [e.kind for e in bus_events] == ["bus.port_open", "bus.port_lost", "bus.port_open"]
        assert bus_events[1].data["port"] == str(tmp_path / "ttyUSB-line")
        assert port.stats.opens == 2 and port.stats.losses == 1


async def test_a_port_that_is_not_there_fails_fast_and_opens_later(tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB-late"
    events: list[Event] = []

    async def sink(event: Event) -> None:
        events.append(event)

    async with SerialLinePort(bus(link), events=sink) as port:
        device = polled(port, "d01", "01")
        (group,) = device.poll_groups()
        started = time.monotonic()
        with pytest.raises(ConnectionLost):
            await device.read(group)
        assert time.monotonic() - started < 1.0
        async with SerialLineSimulator(echo_device({"01"}), link=link, terminator=b"\r"):
            await wait_until(lambda: port.online, timeout_s=20)
            (reading,) = await device.read(group)
            assert reading.value == 1
    assert [e.kind for e in events] == ["bus.port_lost", "bus.port_open"]


async def test_silence_timeout_of_an_unsolicited_device(tmp_path: Path) -> None:
    async with line_with(tmp_path, set()) as (sim, port, _):
        line = LineFormat(mode="unsolicited", silence_timeout_s=0.4)
        device = SerialLineDevice("stream", port, LineParser(line, POINTS), line)
        pushed = device.pushed()
        assert pushed is not None
        got: list[Reading | LinkState] = []

        async def consume() -> None:
            async for item in pushed:
                got.append(item)

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(consume())
            # Never heard: offline after the silence timeout.
            await wait_until(lambda: LinkState(False, "no line for 0.4 s") in got)
            sim.print_line("L 7")
            await wait_until(lambda: Reading("v", 7) in got)
            await wait_until(lambda: got.count(LinkState(False, "no line for 0.4 s")) == 2)
            task.cancel()
        states = [g for g in got if isinstance(g, LinkState)]
        assert [s.online for s in states] == [False, True, False]
