"""A site with a GB/T 26875.3 panel beside Modbus devices, through ``load_site`` and the whole
gateway: a GB 50116 AND-of-two linkage that mixes a 26875 detector zone and a Modbus manual
call point runs only for a fire in its own zone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.config.loader import load_site
from edge.rules_host.runtime import RulesRuntime
from simulators.gb26875_device import TransmissionDevice
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.integration.rules.support import running, runtime_of
from tests.support import free_port, wait_until

SITE = """
site: {{id: mixed}}
gateway: {{id: gw-mixed, data_dir: {data}}}
outbox: {{commit_interval_ms: 20}}
buses:
  - {{id: fire-uitd, type: gb26875, host: 127.0.0.1, port: {uitd_port}, heartbeat_timeout_s: 60}}
  - {{id: room, type: modbus_tcp, host: 127.0.0.1, port: {modbus_port}, timeout_ms: 1000}}
devices:
  - id: fire-panel
    bus: fire-uitd
    profile: gb26875-transmission-device
    address: "2c312c320000"
    points:
      - {{id: zone5_fire, object: component, comp_type: 40-44, comp_addr: 257-320, status: fire, zone: "5",
          alarms: [{{id: fire, kind: state, when: true, latched: true, priority: fire,
                     message: {{zh: 5区火警, en: Fire zone 5}}}}]}}
      - {{id: zone6_fire, object: component, comp_type: 40-44, comp_addr: 321-384, status: fire, zone: "6",
          alarms: [{{id: fire, kind: state, when: true, latched: true, priority: fire,
                     message: {{zh: 6区火警, en: Fire zone 6}}}}]}}
  - {{id: mcp-z5, bus: room, unit: 1, profile: fire-io-module, zone: "5", poll_interval_s: 0.25}}
  - {{id: fan-z5, bus: room, unit: 2, profile: fire-io-module, zone: "5", poll_interval_s: 0.25}}
rules:
  linkage:
    - id: smoke-z5
      name: {{zh: 5区排烟联动, en: zone 5 smoke control}}
      trigger: alarm("fire-panel.zone5_fire") and alarm("mcp-z5.call_point")
      steps:
        - {{write: fan-z5.output, value: true, timeout_s: 5}}
"""


def write_site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    text = SITE.format(data=tmp_path / "data", uitd_port=free_port(), modbus_port=free_port())
    path.write_text(text, encoding="utf-8")
    return path


def modbus_plan(path: Path, tmp_path: Path) -> Path:
    """The site without its 26875 device, for the Modbus simulators' plan: ``read_site_plan``
    loads every device's profile before it looks at the bus type, and refuses a gb26875 one."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  - id: fire-panel"))
    end = next(i for i, line in enumerate(lines) if line.startswith("  - {id: mcp-z5"))
    plan = tmp_path / "modbus-plan.yaml"
    plan.write_text("\n".join(lines[:start] + lines[end:]) + "\n", encoding="utf-8")
    return plan


def test_a_site_with_a_gb26875_bus_and_a_modbus_call_point_loads(tmp_path: Path) -> None:
    site = load_site(write_site(tmp_path))
    by_id = {d.id: d for d in site.devices}
    assert by_id["fire-panel"].bus.type == "gb26875"
    assert by_id["mcp-z5"].bus.type == "modbus_tcp"
    points = {p.id for p in by_id["fire-panel"].points}
    assert {"zone5_fire", "zone6_fire", "fire_any", "main_power_fault", "silenced"} <= points


async def test_a_mixed_and_of_two_linkage_runs_only_for_its_zone(tmp_path: Path) -> None:
    path = write_site(tmp_path)
    site = load_site(path)
    uitd_port = int(next(b for b in site.config.buses if b.id == "fire-uitd").port)
    panel = TransmissionDevice(address=bytes.fromhex("2c312c320000"))
    link = asyncio.create_task(panel.run_tcp("127.0.0.1", uitd_port, reconnect_s=0.1), name="uitd-sim")
    try:
        async with (
            SimulationRunner(read_site_plan(modbus_plan(path, tmp_path)).devices, tick_s=0.25) as sim,
            running(site) as gateway,
        ):
            fan = sim.devices["fan-z5"]
            sim.devices["mcp-z5"].inject("call_point", {})
            panel.inject_fire(zone=6)  # detector 321: zone 6, not the rule's zone
            runtime = runtime_of(gateway)
            await wait_until(lambda: _active(runtime, "fire-panel", "zone6_fire"), timeout_s=20)
            await wait_until(lambda: _active(runtime, "mcp-z5", "call_point"), timeout_s=20)
            (rule,) = [r for r in runtime.linkage_rules() if r["id"] == "smoke-z5"]
            assert rule["state"] == "idle", rule
            assert fan.values()["output"] is False
            panel.inject_fire(zone=5)  # detector 257: zone 5 -> the AND of two holds
            await wait_until(lambda: fan.values()["output"] is True, timeout_s=20)
    finally:
        link.cancel()
        await asyncio.gather(link, return_exceptions=True)


def _active(runtime: RulesRuntime, device: str, point: str) -> bool:
    return any(row["point"] == f"mixed/{device}/{point}" for row in runtime.active_alarms())
