"""Scale mode: many devices on consecutive ports, served by `gatehouse simulate scale`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from core.model import Quality
from core.ports import free_port_block
from drivers.modbus import ModbusTcpLink
from simulators.runner import SimulationRunner
from simulators.scale import plan_scale
from tests.integration.simulators.gateway import profile_points, read_all
from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[3]


async def test_every_scaled_device_answers_with_good_values() -> None:
    base = free_port_block(10)
    plans = plan_scale("water-meter", 40, base, units_per_port=4)
    points = profile_points("water-meter")
    async with SimulationRunner(plans, tick_s=0.2) as sim:
        assert len(sim.tcp_servers) == 10

        async def poll(port: int) -> int:
            good = 0
            async with ModbusTcpLink("127.0.0.1", port, timeout_ms=3000) as link:
                for unit in range(1, 5):
                    readings = await read_all(link, unit, points)
                    good += all(r.quality is Quality.GOOD for r in readings.values())
            return good

        counts = await asyncio.gather(*(poll(base + i) for i in range(10)))
    assert sum(counts) == 40


async def test_gatehouse_simulate_scale_subprocess() -> None:
    base, control = free_port_block(3), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge",
        "simulate",
        "scale",
        "--family",
        "manhole",
        "--count",
        "3",
        "--base-port",
        str(base),
        "--control-port",
        str(control),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ},
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{control}") as api:

            async def up() -> bool:
                assert proc.returncode is None
                try:
                    return (await api.get("/health")).json()["devices"] == 3
                except httpx.TransportError:
                    return False

            await wait_until(up, message="the scale simulator")
            assert (await api.post("/devices/manhole-0002/scenarios/opened", json={})).status_code == 200
        async with ModbusTcpLink("127.0.0.1", base + 1) as link:
            readings = await read_all(link, 1, profile_points("manhole-cover"))
        assert readings["lid_open"].value is True
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
