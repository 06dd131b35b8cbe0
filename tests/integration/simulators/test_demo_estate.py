"""The demo estate end to end: `gatehouse simulate` serves it (a real subprocess), the gateway's
loader reads the same file, and the Modbus driver polls every device with good quality."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.model import Quality
from drivers.modbus import ModbusTcpLink
from drivers.modbus.plugin import endpoint_of, modbus_device
from edge.config.loader import load_site
from tests.support import free_port, wait_until

DEMO = Path(__file__).resolve().parents[3] / "config" / "examples" / "demo-estate.yaml"


def demo_on_free_ports(tmp_path: Path) -> Path:
    """The demo estate with its bus ports moved to free ones, so a running demo does not clash."""
    text = DEMO.read_text(encoding="utf-8")
    text = re.sub(r"port: 150\d\d", lambda _m: f"port: {free_port()}", text)
    site = tmp_path / "demo-estate.yaml"
    site.write_text(text, encoding="utf-8")
    return site


def gatehouse(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge", *args]


@pytest.fixture
def served_demo(tmp_path: Path):  # type: ignore[no-untyped-def]
    site = demo_on_free_ports(tmp_path)
    control_port = free_port()
    proc = subprocess.Popen(
        gatehouse("simulate", str(site), "--control-port", str(control_port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield site, f"http://127.0.0.1:{control_port}", proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


async def poll_everything(site_path: Path) -> dict[str, dict[str, object]]:
    site = load_site(site_path)
    by_endpoint: dict[object, list[object]] = {}
    for device in site.devices:
        if device.bus.type == "modbus_tcp":  # the other protocols have their own simulators' tests
            by_endpoint.setdefault(endpoint_of(device), []).append(device)
    results: dict[str, dict[str, object]] = {}

    async def poll_endpoint(endpoint: tuple[str, int], devices: list[object]) -> None:
        async with ModbusTcpLink(endpoint[0], endpoint[1], timeout_ms=3000, retries=1) as link:
            for resolved in devices:
                driver = modbus_device(resolved, link)  # type: ignore[arg-type]
                values: dict[str, object] = {}
                for group in driver.poll_groups():
                    for reading in await driver.read(group):
                        assert reading.quality is Quality.GOOD, (resolved.id, reading)  # type: ignore[attr-defined]
                        values[reading.key] = reading.value
                results[resolved.id] = values  # type: ignore[attr-defined]

    async with asyncio.TaskGroup() as group:
        for endpoint, devices in by_endpoint.items():
            assert isinstance(endpoint, tuple)
            group.create_task(poll_endpoint(endpoint, devices), name=f"poll-{endpoint[1]}")
    return results


async def test_gatehouse_simulate_serves_the_whole_demo_estate(served_demo) -> None:  # type: ignore[no-untyped-def]
    site, control, proc = served_demo
    async with httpx.AsyncClient(base_url=control) as api:

        async def healthy() -> bool:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                return (await api.get("/health")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(healthy, message="the simulator's control API")
        devices = (await api.get("/devices")).json()
        assert len(devices) == len(load_site(site).devices) >= 50

        values = await poll_everything(site)
        modbus_tcp = [d for d in load_site(site).devices if d.bus.type == "modbus_tcp"]
        assert len(values) == len(modbus_tcp)  # the serial lines and other protocols: their own tests
        assert values["fire-panel"]["zone1_fire"] is False

        # A scenario from the CLI, as a technician would trigger it.
        inject = await asyncio.to_thread(
            subprocess.run,
            gatehouse(
                "simulate", "inject", "fire", "--device", "fire-panel", "--zone", "1", "--control", control
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert inject.returncode == 0, inject.stderr
        refused = await asyncio.to_thread(
            subprocess.run,
            gatehouse("simulate", "inject", "fire", "--device", "no-such-device", "--control", control),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.returncode == 1 and "404" in refused.stderr

        values = await poll_everything(site)
        assert values["fire-panel"]["zone1_fire"] is True
        assert values["fire-panel"]["zone1_detectors_in_alarm"] == 1

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
