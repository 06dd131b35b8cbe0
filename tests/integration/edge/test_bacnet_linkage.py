"""A fire linkage drives BACnet smoke fans at priority 2 and relinquishes them on restore,
through the whole gateway, against the simulators that `gatehouse simulate` starts from the
site file (a Modbus fire panel beside a BACnet/IP smoke-fan controller)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from core.errors import ConfigError
from edge.app import Gateway
from edge.config.loader import load_site
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.support import free_port, wait_until

SITE = """\
site: {{id: bacnet-estate}}
gateway: {{id: gw-bacnet, data_dir: data}}
buses:
  - {{id: lan, type: modbus_tcp, host: 127.0.0.1, port: {tcp}}}
  - {{id: plant, type: bacnet_ip, address: 127.0.0.1, port: {local}, timeout_ms: 500, retries: 0}}
devices:
  - {{id: panel, bus: lan, unit: 1, profile: fire-panel-modbus, poll_interval_s: 0.5}}
  - id: fans
    bus: plant
    instance: 3001
    address: "127.0.0.1:{fans}"
    profile: bacnet-smoke-fan
rules:
  linkage:
    - id: smoke-z1
      name: {{zh: 1区排烟, en: zone 1 smoke control}}
      trigger: alarm("panel.zone1_fire") and point("panel.zone1_detectors_in_alarm") >= 2
      reset: point("panel.zone1_fire") == false
      mode: automatic
      steps:
        - {{write: fans.sd1-c, value: true, timeout_s: 5, priority: 3}}
        - {{write: fans.sef1-c, value: true, timeout_s: 5}}
      restore:
        - {{write: fans.sef1-c, value: relinquish, timeout_s: 5}}
        - {{write: fans.sd1-c, value: relinquish, timeout_s: 5, priority: 3}}
"""


async def test_fire_linkage_writes_bacnet_fans_at_priority_and_relinquishes(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(tcp=free_port(), local=free_port(), fans=free_port()), encoding="utf-8")
    site = load_site(path)
    async with (
        SimulationRunner(read_site_plan(path).devices, tick_s=0.25, control_port=0, site_path=path) as sim,
        Gateway(site) as gw,
        httpx.AsyncClient(base_url=sim.control_url, timeout=10) as control,
    ):
        fans = sim.protocol.devices["fans"]
        device = fans.sim.device(3001)  # type: ignore[attr-defined]

        def slot(key: str, priority: int) -> object:
            return device.priority_array(key)[priority - 1]

        run = asyncio.create_task(gw.run(), name="gateway")
        try:
            await wait_until(lambda: gw.live.device_online.get("fans") is True, timeout_s=60, message="fans")
            await wait_until(
                lambda: gw.live.device_online.get("panel") is True, timeout_s=60, message="panel"
            )
            assert device.get("binary-output,1") is False
            answer = await control.post("/devices/panel/scenarios/fire", json={"zone": 1, "detectors": 2})
            assert answer.status_code == 200, answer.text
            await wait_until(
                lambda: device.get("binary-output,1") is True, timeout_s=30, message="fan started"
            )
            await wait_until(
                lambda: device.get("binary-input,1") is True, timeout_s=30, message="fan running"
            )
            # Written at the profile's priority 2 (automatic life safety), not the default 8.
            assert slot("binary-output,1", 2) is not None
            assert slot("binary-output,1", 8) is None
            # the damper step names its own priority, 3, instead of the point's 2
            assert slot("binary-output,11", 3) is not None and slot("binary-output,11", 2) is None
            answer = await control.delete("/devices/panel/scenarios/fire")
            assert answer.status_code == 200, answer.text
            # The panel latches a fire until it is reset, as a real one does; then the linkage restores.
            await gw.write("panel", "reset", True, verify=False)
            await wait_until(
                lambda: device.get("binary-output,1") is False, timeout_s=30, message="fan relinquished"
            )
            await wait_until(
                lambda: slot("binary-output,1", 2) is None, timeout_s=30, message="fan slot empty"
            )
            await wait_until(
                lambda: slot("binary-output,11", 3) is None, timeout_s=30, message="damper slot empty"
            )
        finally:
            gw.stop()
            await run


def test_a_step_priority_on_a_point_without_a_priority_array_is_a_config_error(tmp_path: Path) -> None:
    text = SITE.format(tcp=free_port(), local=free_port(), fans=free_port())
    step = "{write: fans.sef1-c, value: true, timeout_s: 5}"
    assert step in text
    text = text.replace(step, "{write: panel.silence, value: true, priority: 4}")
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    (problem,) = caught.value.problems
    assert problem.path == "rules.linkage[0].steps[1].priority"
    assert "priority array (BACnet)" in problem.message
    assert text.splitlines()[problem.line - 1].strip().startswith("- {write: panel.silence")
