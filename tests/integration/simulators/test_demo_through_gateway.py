"""The demo estate through the real gateway daemon (``edge.app.Gateway``): every device online
with good values, and scenarios injected through the control API show up in its live state."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from core.model import Quality
from edge.app import Gateway
from edge.config.loader import load_site
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.support import free_port, wait_until

DEMO = Path(__file__).resolve().parents[3] / "config" / "examples" / "demo-estate.yaml"


def demo_copy(tmp_path: Path) -> Path:
    text = DEMO.read_text(encoding="utf-8")
    # Every endpoint of the estate (Modbus TCP, RTU over TCP, 26875, BACnet, OPC UA) on free ports.
    ports: dict[str, int] = {}

    def moved(match: re.Match[str]) -> str:
        return f"{match.group(1)}{ports.setdefault(match.group(2), free_port())}"

    text = re.sub(r"(port: |127\.0\.0\.1:)(150\d\d)", moved, text)
    text = text.replace("data_dir: ./data/demo-estate", f"data_dir: {tmp_path / 'data'}")
    # Poll every device each second so that the test does not wait for 30 s meter intervals.
    text = re.sub(r"(\n  - \{id: [^\n]*?), poll_interval_s: \d+", r"\1", text)
    text = re.sub(r"(\n  - \{)(id: [^,]+, bus: )", r"\1poll_interval_s: 1, \2", text)
    text = text.replace("  - id: fire-panel\n", "  - id: fire-panel\n    poll_interval_s: 1\n")
    path = tmp_path / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_demo_estate_through_the_gateway(tmp_path: Path) -> None:
    site_path = demo_copy(tmp_path)
    site = load_site(site_path)
    plan = read_site_plan(site_path)
    async with (
        SimulationRunner(plan.devices, tick_s=0.5, control_port=0, site_path=site_path) as sim,
        Gateway(site) as gateway,
        httpx.AsyncClient(base_url=sim.control_url) as api,
    ):
        run = asyncio.create_task(gateway.run(), name="gateway")
        try:
            live = gateway.live
            await wait_until(
                lambda: sum(1 for v in live.device_online.values() if v) == len(site.devices),
                timeout_s=60,
                message="every demo device online",
            )
            expected_points = sum(1 for d in site.devices for p in d.points if str(p.access) != "w")
            await wait_until(
                lambda: len(live.latest) >= expected_points,
                timeout_s=60,
                message="a value of every point",
            )
            bad = {k: s for k, s in live.latest.items() if s.quality is not Quality.GOOD}
            assert not bad, bad

            scenarios = [
                ("fire-panel", "fire", {"zone": 2}, "fire-panel/zone2_fire", True),
                ("lift-t1-a", "trapped", {}, "lift-t1-a/trapped", True),
                ("manhole-4", "opened", {}, "manhole-4/lid_open", True),
                ("water-tank-b", "chlorine_low", {}, "water-tank-b/residual_chlorine_mgl", 0.02),
                ("charger-03", "fault", {"code": 8}, "charger-03/error_code", 8),
                ("door-t2-lobby", "forced_open", {}, "door-t2-lobby/forced_open", True),
            ]
            for device, name, params, _point, _want in scenarios:
                response = await api.post(f"/devices/{device}/scenarios/{name}", json=params)
                assert response.status_code == 200, response.text
            for _device, _name, _params, point, want in scenarios:
                key = f"{site.id}/{point}"

                def shows(key: str = key, want: object = want) -> bool:
                    sample = live.latest.get(key)
                    if sample is None or not sample.good:
                        return False
                    if isinstance(want, float):
                        return isinstance(sample.value, float) and abs(sample.value - want) < 1e-4
                    return sample.value == want

                await wait_until(shows, timeout_s=30, message=f"{key} == {want!r} at the gateway")

            # A lost device goes offline at the gateway, and comes back.
            await api.post("/devices/meter-t3-main/scenarios/comm_loss", json={})
            await wait_until(
                lambda: live.device_online.get("meter-t3-main") is False, timeout_s=60, message="offline"
            )
            await api.delete("/devices/meter-t3-main/scenarios")
            await wait_until(
                lambda: live.device_online.get("meter-t3-main") is True,
                timeout_s=60,
                message="online again",
            )
        finally:
            gateway.stop()
            await run
