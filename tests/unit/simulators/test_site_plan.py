"""Reading a site file into simulated devices: endpoints, shared bridges, patches, skipped devices."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from core.model import ManualClock
from drivers.modbus.plugin import endpoint_of
from edge.config.loader import load_site
from simulators.runner import SimulationRunner
from simulators.scale import plan_scale, profile_for
from simulators.site_plan import read_site_plan
from tests.support import free_port, wait_until

DEMO = Path(__file__).resolve().parents[3] / "config" / "examples" / "demo-estate.yaml"

SITE = """
site: {id: s1}
gateway: {id: gw}
buses:
  - {id: lan, type: modbus_tcp, host: 127.0.0.1, port: 1502}
  - {id: rs485, type: modbus_rtu, port: /dev/ttyUSB9}
devices:
  - {id: tank, bus: lan, unit: 2, profile: secondary-water-tank, host: 10.0.0.9, port: 1600}
  - id: meter
    bus: rs485
    unit: 5
    profile: water-meter
    points:
      - {id: flow_m3h, address: 40}
      - {id: status, enabled: false}
  - {id: off, bus: lan, unit: 3, profile: water-meter, enabled: false}
  - id: bare
    bus: lan
    unit: 4
    points:
      - {id: x, address: 0}
"""


def test_site_plan_resolves_endpoints_patches_and_skips(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(SITE)
    plan = read_site_plan(path)
    by_id = {d.id: d for d in plan.devices}
    assert set(by_id) == {"tank", "meter"}
    assert set(plan.skipped) == {"off", "bare"}
    assert by_id["tank"].endpoint == ("10.0.0.9", 1600)
    assert by_id["meter"].endpoint == "/dev/ttyUSB9"
    meter = by_id["meter"].profile
    assert meter.point("flow_m3h").address == 40
    assert "status" not in {p.id for p in meter.points}


def test_demo_estate_is_what_the_gateway_loads() -> None:
    site = load_site(DEMO)
    plan = read_site_plan(DEMO)

    def where(device: Any) -> object:
        endpoint = endpoint_of(device)
        # a relative serial path is taken from the site's folder, by the gateway and simulator alike
        return endpoint if isinstance(endpoint, tuple) else os.path.abspath(DEMO.parent / endpoint)

    gateway = {
        d.id: (where(d), getattr(d.config, "unit", None), tuple(getattr(p, "address", 0) for p in d.points))
        for d in site.devices
        if d.bus.type.startswith("modbus")  # the other protocols have their own simulators
    }
    simulated = {d.id: (d.endpoint, d.unit, tuple(p.address for p in d.profile.points)) for d in plan.devices}
    assert gateway == simulated
    families = [d.profile.family for d in plan.devices]
    assert (
        families.count("meter")
        + families.count("water_meter")
        + families.count("gas_meter")
        + (families.count("heat_meter"))
        >= 12
    )
    assert families.count("manhole") == 6
    assert families.count("ev_charger") == 8
    assert families.count("elevator") == 4
    assert families.count("water_tank") == 3  # two in the pump room, one on tower 3's roof (RS-485)
    for family in ("fire_panel", "fire_water", "access_door", "barrier", "evacuation_lighting", "smoke_fan"):
        assert family in families
    assert {d.meta.get("building") for d in plan.devices} >= {"T1", "T2", "T3", "CP", "PR"}


def test_scale_plan_uses_consecutive_ports_or_units() -> None:
    plans = plan_scale("manhole", 5, 20000)
    assert [p.endpoint for p in plans] == [("127.0.0.1", 20000 + i) for i in range(5)]
    packed = plan_scale("manhole-cover", 5, 20000, units_per_port=2)
    assert [(p.endpoint[1], p.unit) for p in packed if isinstance(p.endpoint, tuple)] == [
        (20000, 1),
        (20000, 2),
        (20001, 1),
        (20001, 2),
        (20002, 1),
    ]
    assert profile_for("meter").family == "meter"
    with pytest.raises(ValueError):
        plan_scale("toaster", 1, 20000)
    with pytest.raises(ValueError):
        plan_scale("manhole", 10, 65530)


async def test_the_ticker_steps_models_on_the_injected_clock() -> None:
    clock = ManualClock()
    plans = plan_scale("fire-lane-sensor", 1, free_port())
    async with SimulationRunner(plans, clock=clock, tick_s=0.01) as sim:
        device = next(iter(sim.devices.values()))
        device.inject("blocked", {})
        clock.advance(30.0)
        await wait_until(lambda: device.values()["occupied_s"] == 30, message="30 s of simulated parking")
        assert device.model.elapsed_s == pytest.approx(30.0)


async def test_a_port_in_use_is_an_error_not_a_hang() -> None:
    plans = plan_scale("switch-room-env", 1, free_port())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            async with SimulationRunner(plans, tick_s=0.05, control_port=port):
                pass
        busy = plan_scale("switch-room-env", 1, port)
        with pytest.raises(OSError):
            async with SimulationRunner(busy, tick_s=0.05):
                pass
