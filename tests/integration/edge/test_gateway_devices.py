"""The in-process gateway against the real simulator servers and a silent TCP peer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.app import Gateway
from edge.config.loader import load_site
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.integration.edge.daemon_support import events, meter, write_site
from tests.support import free_port, wait_until


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP peer that accepts connections and never answers: a device that hangs."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port
        for writer in held:
            writer.close()


async def test_dead_device_does_not_delay_a_live_device_on_another_connection(
    tmp_path: Path, silent_server: int
) -> None:
    port = free_port()
    live = meter("live", 1, interval_s=0.1)
    dead = {**meter("dead", 1, interval_s=0.1), "port": silent_server, "timeout_ms": 2000}
    site_path = write_site(tmp_path / "site.yaml", port=port, devices=[live, dead], data_dir=tmp_path / "d")
    sim_path = write_site(tmp_path / "sim.yaml", port=port, devices=[live], data_dir=tmp_path / "d")
    async with SimulationRunner(read_site_plan(sim_path).devices, tick_s=None):
        async with Gateway(load_site(site_path)) as gw:
            run = asyncio.create_task(gw.run())
            try:
                await wait_until(lambda: gw.devices is not None, message="devices built")
                assert gw.devices is not None
                coords = gw.devices.coordinators
                await wait_until(lambda: coords["dead"].online is False, message="dead device offline")
                start_ok = coords["live"].stats.polls_ok
                await wait_until(
                    lambda: coords["live"].stats.polls_ok >= start_ok + 20, message="20 more live polls"
                )
                # The dead device hangs for 2 s x 2 tries per attempt; the live one never waits for it.
                assert max(coords["live"].stats.lateness_s) < 1.0
                assert coords["live"].online is True
            finally:
                gw.stop()
                await run
        kinds = [(k, s) for k, s, _ in events(tmp_path / "d" / "outbox.db")]
        assert kinds.count(("device.offline", "dead")) == 1
        assert ("device.online", "dead") not in kinds


async def test_offline_and_online_produce_exactly_one_event_each(tmp_path: Path) -> None:
    port = free_port()
    devices = [meter("m1", 1, interval_s=0.05)]
    site_path = write_site(tmp_path / "site.yaml", port=port, devices=devices, data_dir=tmp_path / "d")
    async with (
        SimulationRunner(read_site_plan(site_path).devices, tick_s=None) as sim,
        Gateway(load_site(site_path)) as gw,
    ):
        run = asyncio.create_task(gw.run())
        try:
            await wait_until(lambda: gw.live.device_online.get("m1") is True, message="online")
            sim.device("m1").faults.comm_loss = True
            await wait_until(lambda: gw.live.device_online.get("m1") is False, message="offline")
            assert gw.devices is not None
            failed = gw.devices.coordinators["m1"].stats.polls_failed
            # Let several more probes fail: still one offline event.
            await wait_until(
                lambda: (
                    gw.devices is not None and gw.devices.coordinators["m1"].stats.polls_failed >= failed + 2
                ),
                message="more failed probes",
            )
            sim.device("m1").faults.comm_loss = False
            await wait_until(lambda: gw.live.device_online.get("m1") is True, message="back online")
            bad = gw.live.latest["testsite/m1/voltage_l1"]
            assert bad.good
        finally:
            gw.stop()
            await run
    kinds = [k for k, s, _ in events(tmp_path / "d" / "outbox.db") if s == "m1"]
    assert kinds == ["device.online", "device.offline", "device.online"]
