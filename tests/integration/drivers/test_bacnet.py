"""BACnet/IP driver against the bacpypes3 plant simulator on loopback (one IP, a UDP port per
device): RPM packing, ReadProperty fallback, quality from status flags, priority writes and
relinquish, COV delivery and renewal, a dead device beside live ones, garbage datagrams."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from core.errors import DeviceTimeout
from core.model import Event, Quality, Reason, SystemClock
from drivers.bacnet.config import BacnetBus
from drivers.bacnet.device import BacnetDevice
from drivers.base import Reading
from drivers.config_base import ReportPolicy
from drivers.registry import BusContext
from simulators.bacnet import AirHandler, BacnetSimulator, PointBank, SimSpec, SmokeFans
from simulators.bacnet.sitegen import points_of, resolved_device

DEADLINE_S = 20.0


def _bus(**extra: Any) -> BacnetBus:
    fields: dict[str, Any] = {
        "id": "bn",
        "type": "bacnet_ip",
        "address": "127.0.0.1",
        "port": 0,
        "timeout_ms": 400,
        "retries": 0,
    }
    fields.update(extra)
    return BacnetBus(**fields)


@contextlib.asynccontextmanager
async def _open(
    bus: BacnetBus, devices: Sequence[Any], events: list[Event] | None = None
) -> AsyncIterator[dict[str, BacnetDevice]]:
    from drivers.bacnet.plugin import open_bacnet_bus

    async def sink(event: Event) -> None:
        if events is not None:
            events.append(event)

    ctx = BusContext(events=sink, clock=SystemClock(), site_dir=Path("."), data_dir=Path("."))
    async with open_bacnet_bus(bus, devices, ctx) as drivers:
        yield {k: v for k, v in drivers.items() if isinstance(v, BacnetDevice)}


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _read_all(device: BacnetDevice) -> dict[str, Reading]:
    out: dict[str, Reading] = {}
    for group in device.poll_groups():
        for reading in await device.read(group):
            out[reading.key] = reading
    return out


async def test_rpm_reads_many_points_in_few_requests_and_rp_fallback_one_per_point() -> None:
    bank = PointBank(count=60)
    async with BacnetSimulator([SimSpec(2001, bank), SimSpec(2002, PointBank(count=12))]) as sim:
        sim.inject(2002, "no_rpm")
        bus = _bus()
        specs = [
            resolved_device("bank", bus, 2001, points_of(bank), address=sim.address(2001)),
            resolved_device("old", bus, 2002, points_of(PointBank(count=12)), address=sim.address(2002)),
        ]
        async with _open(bus, specs) as drivers:
            first = await _read_all(drivers["bank"])
            assert len(first) == 60
            assert first["ai-7"].value == 7.0 and first["ai-7"].quality is Quality.GOOD
            before = sim.device(2001).requests
            await _read_all(drivers["bank"])
            rpm_requests = sim.device(2001).requests - before
            assert 1 <= rpm_requests <= 3, rpm_requests  # 60 points, 120 properties

            await _read_all(drivers["old"])  # learns the device refuses RPM
            before = sim.device(2002).requests
            readings = await _read_all(drivers["old"])
            assert sim.device(2002).requests - before == 12
            assert all(r.quality is Quality.GOOD for r in readings.values())


async def test_small_unsegmented_device_gets_requests_that_fit() -> None:
    bank = PointBank(count=80)
    async with BacnetSimulator([SimSpec(2003, bank, max_apdu=206, segmentation=False)]) as sim:
        bus = _bus()
        spec = resolved_device("small", bus, 2003, points_of(bank), address=sim.address(2003))
        async with _open(bus, [spec]) as drivers:
            readings = await _read_all(drivers["small"])
            assert len(readings) == 80 and all(r.quality is Quality.GOOD for r in readings.values())
            before = sim.device(2003).requests
            await _read_all(drivers["small"])
            used = sim.device(2003).requests - before
            assert 5 <= used < 80, used  # packed to 206 bytes per answer, never refused


async def test_status_flags_become_quality() -> None:
    ahu = AirHandler()
    async with BacnetSimulator([SimSpec(2004, ahu)]) as sim:
        bus = _bus()
        spec = resolved_device("ahu", bus, 2004, points_of(ahu), address=sim.address(2004))
        async with _open(bus, [spec]) as drivers:
            sim.inject(2004, "out_of_service", key="analog-input,2")
            sim.inject(2004, "fault", key="analog-input,3")
            readings = await _read_all(drivers["ahu"])
            assert readings["ra-t"].quality is Quality.UNCERTAIN
            assert readings["ra-t"].reason is Reason.OUT_OF_SERVICE
            assert readings["oa-t"].quality is Quality.BAD and readings["oa-t"].reason is Reason.DEVICE_ERROR
            assert readings["sa-t"].quality is Quality.GOOD


async def test_units_mismatch_marks_uncertain() -> None:
    ahu = AirHandler()
    points = points_of(ahu)
    wrong = [p.model_copy(update={"units": "degrees-fahrenheit"}) if p.id == "sa-t" else p for p in points]
    async with BacnetSimulator([SimSpec(2005, ahu)]) as sim:
        bus = _bus()
        spec = resolved_device("ahu", bus, 2005, wrong, address=sim.address(2005))
        async with _open(bus, [spec]) as drivers:
            readings = await _read_all(drivers["ahu"])
            assert (
                readings["sa-t"].quality is Quality.UNCERTAIN
                and readings["sa-t"].reason is Reason.CONFIG_ERROR
            )
            assert readings["ra-t"].quality is Quality.GOOD


async def test_write_at_priority_then_relinquish_returns_to_relinquish_default() -> None:
    fans = SmokeFans()
    async with BacnetSimulator([SimSpec(2006, fans)]) as sim:
        bus = _bus()
        spec = resolved_device("smk", bus, 2006, points_of(fans), address=sim.address(2006))
        async with _open(bus, [spec]) as drivers:
            smk = drivers["smk"]
            assert await smk.write("sef1-c", True) is True
            assert sim.device(2006).priority_array("binary-output,1")[7] is not None
            assert sim.get(2006, "binary-output,1") is True
            await _until(lambda: sim.get(2006, "binary-input,1") is True, "the fan to run")
            assert await smk.write("sef1-c", "relinquish") == "relinquish"
            assert sim.device(2006).priority_array("binary-output,1")[7] is None
            assert sim.get(2006, "binary-output,1") is False  # relinquish-default
            # a higher priority (1, manual life safety) wins over ours: the read-back says so
            assert await smk.write("sef1-c", True, priority=1) is True
            assert await smk.write("sef1-c", False) is True
            assert await smk.write("sef1-c", None, priority=1) is None
            assert sim.get(2006, "binary-output,1") is False
            # analog output at the point's priority 8, read back
            assert await smk.write("smk-mode", 3) == 3


async def test_cov_values_arrive_without_polling_and_subscription_renews() -> None:
    ahu = AirHandler()
    points = points_of(ahu, cov=True)
    async with BacnetSimulator([SimSpec(2007, ahu, refuse_cov=("analog-input,5",))], tick_s=3600) as sim:
        bus = _bus()
        spec = resolved_device(
            "ahu",
            bus,
            2007,
            points,
            address=sim.address(2007),
            cov="unconfirmed",
            cov_lifetime_s=2,
            report=ReportPolicy(deadband_abs=0.5),
        )
        async with _open(bus, [spec]) as drivers:
            ahu_dev = drivers["ahu"]
            pushed = ahu_dev.pushed()
            got: list[Reading] = []

            async def collect() -> None:
                async for item in pushed:
                    if isinstance(item, list):
                        got.extend(item)

            task = asyncio.create_task(collect())
            try:
                await _read_all(ahu_dev)  # first read starts the subscriptions
                cov = ahu_dev.cov
                await _until(lambda: cov.active("sa-t"), "the subscription")
                assert not cov.active("flt-dp")  # refused COV: polled
                sim.set(2007, "analog-input,1", 9.5)
                await _until(lambda: any(r.key == "sa-t" and r.value == 9.5 for r in got), "the COV value")
                # the cov-increment came from the deadband
                assert float(sim.device(2007).obj("analog-input,1").covIncrement) == 0.5
                # polls skip subscribed objects
                polled = await _read_all(ahu_dev)
                assert "sa-t" not in polled and "flt-dp" in polled
                # renewed before it expires (lifetime 2 s, renewed every 1 s)
                sub = next(s for s in cov.subs.values() if s.plans[0].key == "sa-t")
                renewals = sub.renewals
                await _until(lambda: sub.renewals >= renewals + 2, "two renewals")
                sim.set(2007, "analog-input,1", 11.0)
                await _until(
                    lambda: any(r.key == "sa-t" and r.value == 11.0 for r in got), "a COV value after renewal"
                )
                # the device restarts: the gateway resubscribes
                await sim.restart(2007)
                sim.set(2007, "analog-input,1", 12.5)
                await _until(
                    lambda: any(r.key == "sa-t" and r.value == 12.5 for r in got), "a COV value after restart"
                )
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def test_dead_device_does_not_slow_live_ones() -> None:
    bank = PointBank(count=20)
    async with BacnetSimulator([SimSpec(2008, bank), SimSpec(2009, PointBank(count=20))]) as sim:
        sim.inject(2009, "silent")
        bus = _bus(timeout_ms=1500)
        specs = [
            resolved_device("live", bus, 2008, points_of(bank), address=sim.address(2008)),
            resolved_device("dead", bus, 2009, points_of(bank), address=sim.address(2009)),
        ]
        async with _open(bus, specs) as drivers:
            await _read_all(drivers["live"])

            async def dead() -> float:
                start = time.monotonic()
                try:
                    await _read_all(drivers["dead"])
                except DeviceTimeout:
                    return time.monotonic() - start
                raise AssertionError("a silent device answered")

            async def live() -> list[float]:
                times = []
                for _ in range(5):
                    start = time.monotonic()
                    await _read_all(drivers["live"])
                    times.append(time.monotonic() - start)
                return times

            dead_s, live_s = await asyncio.gather(dead(), live())
            assert dead_s >= 1.4  # one APDU timeout, no retries
            assert dead_s < 4.0
            assert max(live_s) < 1.0, live_s


async def test_garbage_datagrams_never_stop_the_driver() -> None:
    bank = PointBank(count=5)
    async with BacnetSimulator([SimSpec(2010, bank)]) as sim:
        bus = _bus()
        spec = resolved_device("bank", bus, 2010, points_of(bank), address=sim.address(2010))
        async with _open(bus, [spec]) as drivers:
            device = drivers["bank"]
            await _read_all(device)
            target = device.link.local_address.split(":")
            rng = __import__("random").Random(12)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for n in range(400):
                    size = rng.randrange(0, 80)
                    payload = (
                        os.urandom(size) if n % 2 else bytes([0x81, rng.randrange(0, 13)]) + os.urandom(size)
                    )
                    s.sendto(payload, (target[0], int(target[1])))
            await asyncio.sleep(0.2)
            readings = await _read_all(device)
            assert len(readings) == 5 and all(r.quality is Quality.GOOD for r in readings.values())
