"""A site with GB/T 26875.3 and OPC UA buses beside Modbus is served by `gatehouse simulate`'s
runner from the site file alone, and the gateway gets values and a fire injected through the
simulators' control API, as `make demo` does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from edge.app import Gateway
from edge.config.loader import load_site
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.support import free_port, wait_until

SITE = """\
site: {{id: proto-estate}}
gateway: {{id: gw-proto, data_dir: data}}
buses:
  - {{id: lan, type: modbus_tcp, host: 127.0.0.1, port: {tcp}}}
  - {{id: uitd, type: gb26875, mode: server, host: 127.0.0.1, port: {uitd}, heartbeat_timeout_s: 30}}
  - {{id: plant, type: opcua, endpoint: "opc.tcp://127.0.0.1:{opcua}/gatehouse/sim"}}
devices:
  - {{id: meter, bus: lan, unit: 1, profile: eastron-sdm630, poll_interval_s: 1}}
  - id: panel
    bus: uitd
    profile: gb26875-transmission-device
    address: "2c312c320000"
    points:
      - {{id: z1_fire, object: component, comp_addr: "1-64,1001", status: fire, zone: "1"}}
      - {{id: z1_count, object: component, comp_addr: "1-64,1001", status: fire, count: true, zone: "1"}}
  - id: pumps
    bus: plant
    profile: opcua-pump-station
    root: "2:PumpStation1"
    namespace: "urn:gatehouse:simulator:plant"
"""


async def test_simulate_serves_26875_and_opcua_from_the_site_file(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(tcp=free_port(), uitd=free_port(), opcua=free_port()), encoding="utf-8")
    site = load_site(path)

    def value(point: str) -> object:
        sample = gw.live.latest.get(site.point_id(*point.split(".")))
        return None if sample is None else sample.value

    plan = read_site_plan(path)
    assert [d.id for d in plan.devices] == ["meter"]  # the others have their own simulators
    async with (
        SimulationRunner(plan.devices, tick_s=0.5, control_port=0, site_path=path) as sim,
        Gateway(site) as gw,
        httpx.AsyncClient(base_url=sim.control_url, timeout=10) as control,
    ):
        assert set(sim.protocol.devices) == {"panel", "pumps"}
        run = asyncio.create_task(gw.run(), name="gateway")
        try:
            for device in ("meter", "panel", "pumps"):
                await wait_until(
                    lambda d=device: gw.live.device_online.get(d) is True, timeout_s=60, message=device
                )
            await wait_until(lambda: isinstance(value("pumps.pipe_pressure_mpa"), float), timeout_s=30)
            listed = {d["id"] for d in (await control.get("/devices")).json()}
            assert {"meter", "panel", "pumps"} <= listed
            answer = await control.post("/devices/panel/scenarios/fire", json={"zone": 1, "count": 2})
            assert answer.status_code == 200, answer.text
            await wait_until(lambda: value("panel.z1_fire") is True, timeout_s=30, message="26875 fire")
            await wait_until(lambda: value("panel.z1_count") == 2, timeout_s=30, message="two inputs")
            answer = await control.post("/devices/pumps/scenarios/pump1_fault", json={})
            assert answer.status_code == 200, answer.text
            await wait_until(lambda: value("pumps.pump1_fault") is True, timeout_s=30, message="pump fault")
            assert (await control.post("/devices/panel/scenarios/nothing", json={})).status_code == 404
        finally:
            gw.stop()
            await run
