"""GB/T 26875.3 end to end on real sockets and ptys: the simulated transmission device connects
to the gateway's ``gb26875`` bus, loaded from a site file and run through the coordinators."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from core.model import Event, Sample, SystemClock
from drivers.gb26875.device import Gb26875Device
from drivers.gb26875.frame import Command, Frame, StandardFraming, TimeTag
from drivers.gb26875.transport import Gb26875Link
from edge.config.loader import load_site
from edge.wiring import build_devices
from simulators.gb26875_device import TransmissionDevice

DEADLINE_S = 15.0
ADDRESS = "2c312c320000"
ZONE5 = (
    '{id: zone5_fire, object: component, sys_type: 1, sys_addr: 1, comp_addr: "257-320,1005", '
    'status: fire, zone: "5"}'
)


@dataclass
class Gateway:
    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    drivers: dict[str, Gb26875Device] = field(default_factory=dict)

    def port(self) -> int:
        link = cast("Gb26875Link", next(iter(self.drivers.values())).link)
        assert link.bound_port is not None
        return link.bound_port

    def values(self, point: str) -> list[object]:
        return [s.value for s in self.samples if s.point_id.endswith("/" + point)]

    def kinds(self, device: str = "fire-panel") -> list[str]:
        return [e.kind for e in self.events if e.source == device and e.kind.startswith("device.")]


async def until(condition: Callable[[], bool], deadline_s: float = DEADLINE_S) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "condition not met before the deadline"
        await asyncio.sleep(0.01)


def site_file(tmp_path: Path, bus: str, devices: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(
        "site: {id: estate-a, name: Estate A, timezone: Asia/Shanghai}\n"
        "gateway: {id: gw-a1, data_dir: ./data}\n"
        f"buses:\n  - {bus}\n"
        f"devices:\n{devices}",
        encoding="utf-8",
    )
    return path


def one_panel(address: str | None = ADDRESS) -> str:
    addr = f"    address: {address!r}\n" if address else ""
    return (
        "  - id: fire-panel\n    bus: fire-uitd\n    profile: gb26875-transmission-device\n"
        f"{addr}    points:\n      - {ZONE5}\n"
    )


@contextlib.asynccontextmanager
async def gateway(path: Path) -> AsyncIterator[Gateway]:
    site = load_site(path)
    gw = Gateway()

    async def sink(batch: list[Sample]) -> None:
        gw.samples.extend(batch)

    async def events(event: Event) -> None:
        gw.events.append(event)

    async with build_devices(site, sink=sink, events=events, clock=SystemClock()) as ds:
        gw.drivers = {k: cast("Gb26875Device", v) for k, v in ds.drivers.items()}
        tasks = [asyncio.create_task(c.run(), name=f"coordinator:{k}") for k, c in ds.coordinators.items()]
        try:
            yield gw
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def simulator(device: TransmissionDevice, port: int) -> AsyncIterator[TransmissionDevice]:
    task = asyncio.create_task(device.run_tcp("127.0.0.1", port, reconnect_s=0.1), name="sim")
    try:
        yield device
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


SERVER = "{id: fire-uitd, type: gb26875, mode: server, host: 127.0.0.1, port: 0, heartbeat_timeout_s: 60}"


async def test_a_fire_frame_becomes_a_fire_sample_within_a_second_and_is_confirmed(tmp_path: Path) -> None:
    async with gateway(site_file(tmp_path, SERVER, one_panel())) as gw:
        device = TransmissionDevice(address=bytes.fromhex(ADDRESS), resend_timeout_s=5.0)
        async with simulator(device, gw.port()):
            await until(lambda: gw.kinds() == ["device.online"] and gw.values("zone5_fire") == [False])
            confirmed_before = len(device.confirmed)
            start = time.monotonic()
            device.inject_fire(zone=5)
            await until(lambda: True in gw.values("zone5_fire"), deadline_s=1.0)
            assert time.monotonic() - start < 1.0
            await until(lambda: len(device.confirmed) > confirmed_before)
            assert device.pending == 0
            fire = next(
                s for s in gw.samples if s.point_id == "estate-a/fire-panel/zone5_fire" and s.value is True
            )
            assert fire.good and fire.source_ts is not None  # the object's time tag, beside receipt
            assert True in gw.values("fire_any")
            await until(lambda: len(device.clock_syncs) == 1)  # the clock is set on connect


async def test_a_dropped_connection_is_one_offline_event_and_a_reconnect_one_online(tmp_path: Path) -> None:
    async with gateway(site_file(tmp_path, SERVER, one_panel())) as gw:
        device = TransmissionDevice(address=bytes.fromhex(ADDRESS))
        async with simulator(device, gw.port()):
            await until(lambda: gw.kinds() == ["device.online"])
            device.drop()
            await until(lambda: gw.kinds() == ["device.online", "device.offline", "device.online"])
            await asyncio.sleep(0.3)  # nothing more arrives after the reconnect settled
            assert gw.kinds() == ["device.online", "device.offline", "device.online"]
            offline = [s for s in gw.samples if s.point_id.endswith("/zone5_fire") and not s.good]
            assert len(offline) == 1


async def test_garbage_on_the_socket_never_stops_the_server(tmp_path: Path) -> None:
    async with gateway(site_file(tmp_path, SERVER, one_panel())) as gw:
        rng = random.Random(5)
        for _ in range(5):  # strangers that send noise, half frames and hang up
            _, writer = await asyncio.open_connection("127.0.0.1", gw.port())
            writer.write(rng.randbytes(500) + b"@@" + rng.randbytes(40))
            await writer.drain()
            writer.close()
        device = TransmissionDevice(address=bytes.fromhex(ADDRESS), resend_timeout_s=0.5)
        async with simulator(device, gw.port()):
            await until(lambda: gw.kinds() == ["device.online"])
            device.garbage(300)
            device.bad_checksums(2)
            device.partial_frame()
            device.inject_fire(zone=5)
            await until(lambda: True in gw.values("zone5_fire"))
            await until(lambda: device.pending == 0)
            assert gw.kinds() == ["device.online"]


async def test_silence_beyond_the_heartbeat_timeout_is_offline_then_online_again(tmp_path: Path) -> None:
    bus = "{id: fire-uitd, type: gb26875, host: 127.0.0.1, port: 0, heartbeat_timeout_s: 0.6}"
    async with gateway(site_file(tmp_path, bus, one_panel())) as gw:
        device = TransmissionDevice(address=bytes.fromhex(ADDRESS), heartbeat_s=0.2)
        async with simulator(device, gw.port()):
            await until(lambda: gw.kinds() == ["device.online"])
            device.silent = True
            await until(lambda: gw.kinds() == ["device.online", "device.offline"])
            device.silent = False
            await until(lambda: gw.kinds() == ["device.online", "device.offline", "device.online"])


async def test_devices_on_one_port_are_told_apart_and_strangers_denied(tmp_path: Path) -> None:
    devices = one_panel() + (
        "  - id: fire-panel-b\n    bus: fire-uitd\n    profile: gb26875-transmission-device\n"
        "    address: 1234\n"
    )
    async with gateway(site_file(tmp_path, SERVER, devices)) as gw:
        a = TransmissionDevice(address=bytes.fromhex(ADDRESS))
        b = TransmissionDevice(address=(1234).to_bytes(6, "little"))
        stranger = TransmissionDevice(address=bytes.fromhex("ffffffffffff"), resend_timeout_s=0.3)
        async with simulator(a, gw.port()), simulator(b, gw.port()), simulator(stranger, gw.port()):
            await until(lambda: gw.kinds("fire-panel") == ["device.online"] == gw.kinds("fire-panel-b"))
            b.inject_fire(component=(42, 7))
            await until(lambda: True in gw.values("fire-panel-b/fire_any"))
            assert True not in gw.values("fire-panel/fire_any")
            await until(lambda: len(stranger.denied) > 0)
            assert stranger.confirmed == []


async def test_a_command_the_gateway_does_not_serve_is_denied(tmp_path: Path) -> None:
    async with gateway(site_file(tmp_path, SERVER, one_panel())) as gw:
        framing = StandardFraming()
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port())
        tag = TimeTag(0, 0, 12, 1, 1, 2025)
        writer.write(framing.encode(Frame(77, Command.REQUEST, bytes.fromhex(ADDRESS), bytes(6), tag, b"")))
        await writer.drain()
        decoder = framing.decoder()
        replies: list[object] = []
        async with asyncio.timeout(DEADLINE_S):
            while not replies:
                replies += decoder.feed(await reader.read(4096))
        (reply,) = replies
        assert isinstance(reply, Frame) and reply.command == Command.DENY and reply.serial == 77
        assert reply.destination == bytes.fromhex(ADDRESS)
        writer.close()


async def test_a_device_on_a_serial_pty(tmp_path: Path) -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    bus = f"{{id: fire-uitd, type: gb26875, mode: serial, port: {path}, baudrate: 9600}}"
    try:
        async with gateway(site_file(tmp_path, bus, one_panel(None))) as gw:
            device = TransmissionDevice(resend_timeout_s=1.0)
            task = asyncio.create_task(device.run_fd(master), name="sim-serial")
            try:
                await until(lambda: gw.kinds() == ["device.online"])
                device.inject_fire(zone=5)
                await until(lambda: True in gw.values("zone5_fire"))
                await until(lambda: device.pending == 0)
                assert len(device.confirmed) >= 2
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        os.close(master)
        os.close(slave)


async def test_client_mode_reaches_a_device_that_listens(tmp_path: Path) -> None:
    device = TransmissionDevice(address=bytes.fromhex(ADDRESS))
    server = await asyncio.start_server(device.run_stream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus = f"{{id: fire-uitd, type: gb26875, mode: client, host: 127.0.0.1, port: {port}}}"
    try:
        async with gateway(site_file(tmp_path, bus, one_panel())) as gw:
            await until(lambda: gw.kinds() == ["device.online"])
            device.inject_fault(zone=5)
            await until(lambda: True in gw.values("fault_any"))
            device.drop()  # the gateway reconnects
            await until(lambda: gw.kinds() == ["device.online", "device.offline", "device.online"])
    finally:
        server.close()
