"""The demo estate's fire linkage end to end: real simulators, the real daemon, its rules.

Fire in panel zone 2 (tower 2). One detector raises the fire alarm but starts nothing
(GB 50116 4.1.6); the second detector starts the tower-2 linkage, and every step is checked
at the simulated device itself: escape-route doors released, car-park barrier lifted, broadcast
on, evacuation lighting in emergency, EV chargers stopped, smoke vent open and fan running, the
lift back at the ground floor. Resetting the panel runs the restore sequence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx

from core.model import Value
from edge.app import Gateway
from edge.config.loader import load_site
from edge.rules_host.runtime import RulesRuntime
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.integration.rules.support import outbox_events
from tests.integration.simulators.test_demo_through_gateway import demo_copy
from tests.support import wait_until

SITE = "sunshine-gardens"
FIRE_T2 = f"{SITE}/fire-panel/zone2_fire/fire"
RULE = "fire-t2"
CHARGERS = [f"charger-{i:02d}" for i in range(1, 9)]


def sim_value(sim: SimulationRunner, device: str, point: str) -> Value:
    return sim.device(device).values()[point]


def at_device(sim: SimulationRunner, device: str, point: str, want: Value) -> Callable[[], bool]:
    return lambda: sim_value(sim, device, point) == want


async def test_two_detectors_in_zone_2_run_the_linkage_one_does_not_and_reset_restores(
    tmp_path: Path,
) -> None:
    site_path = demo_copy(tmp_path)
    site = load_site(site_path)
    plan = read_site_plan(site_path)
    async with (
        SimulationRunner(plan.devices, tick_s=0.25, control_port=0, site_path=site_path) as sim,
        Gateway(site) as gateway,
        httpx.AsyncClient(base_url=sim.control_url) as api,
    ):
        run = asyncio.create_task(gateway.run(), name="gateway")
        try:
            rt = gateway.alarms
            assert isinstance(rt, RulesRuntime)
            await wait_until(
                lambda: all(gateway.live.device_online.get(d.id) for d in site.devices),
                timeout_s=90,
                message="every demo device online",
            )
            # the tower-2 lift is up at floor 6 and a car is charging, so recall and stop show
            await gateway.write("lift-t2-a", "car_call", 6, verify=False)
            await wait_until(
                lambda: int(sim_value(sim, "lift-t2-a", "floor") or 0) >= 4, timeout_s=60, message="lift up"
            )
            (await api.post("/devices/charger-03/scenarios/plug_in", json={})).raise_for_status()
            await wait_until(
                lambda: float(sim_value(sim, "charger-03", "current_l1_a") or 0.0) > 6.0,
                timeout_s=60,
                message="charger 3 charging",
            )

            # -- one detector: the fire alarm, and no linkage
            (await api.post("/devices/fire-panel/scenarios/fire", json={"zone": 2})).raise_for_status()
            await wait_until(
                lambda: rt.engine.alarm(FIRE_T2).active, timeout_s=30, message="fire alarm raised"
            )
            detectors = f"{SITE}/fire-panel/zone2_detectors_in_alarm"
            await wait_until(lambda: rt.engine.env.values.get(detectors) == 1, message="one detector seen")
            fed = rt.stats["samples"]
            # several more polls of every device (the panel is read each second)
            await wait_until(lambda: rt.stats["samples"] > fed + 3 * 654, timeout_s=60, message="more polls")
            assert rt.engine.linkage[RULE].state.phase == "idle"
            assert sim_value(sim, "door-t2-stair", "release") is False
            assert sim_value(sim, "broadcast", "emergency_mode") is False
            await rt.flush()
            await gateway.outbox.flush()
            assert not [e for e in outbox_events(site, "linkage.started")]

            # -- the second detector: GB 50116 4.1.6 is met, the tower-2 sequence runs
            (await api.post("/devices/fire-panel/scenarios/fire", json={"zone": 2})).raise_for_status()
            checks: list[tuple[str, str, Value]] = [
                ("door-t2-stair", "released", True),
                ("door-t2-lobby", "released", True),
                ("barrier-cp-in", "is_open", True),
                ("broadcast", "emergency_active", True),
                *[("evac-lighting", f"zone{z}_state", 1) for z in (2, 1, 3, 4, 5)],
                *[(c, "set_current_limit_a", 0.0) for c in CHARGERS],
                ("smoke-fan-t2", "vent_open", True),
                ("smoke-fan-t2", "fan_running", True),
                ("lift-t2-a", "floor", 1),
            ]
            for device, point, want in checks:
                await wait_until(
                    at_device(sim, device, point, want), timeout_s=90, message=f"{device}.{point} == {want!r}"
                )
            await wait_until(
                lambda: float(sim_value(sim, "charger-03", "current_l1_a") or 0.0) == 0.0,
                message="charger 3 no longer charging",
            )
            await wait_until(
                lambda: rt.engine.linkage[RULE].state.phase == "active", message="sequence completed"
            )
            # the other towers' doors are left alone
            assert sim_value(sim, "door-t1-stair", "release") is False
            assert sim_value(sim, "door-t3-lobby", "release") is False

            await rt.flush()  # the linkage log and the outbox are written behind the engine
            await gateway.outbox.flush()
            log = rt.linkage_log(limit=1000)
            verified = {r["point"] for r in log if r["kind"] == "verified" and r["rule"] == RULE}
            assert f"{SITE}/door-t2-stair/release" in verified
            assert f"{SITE}/charger-08/set_current_limit_a" in verified
            assert f"{SITE}/smoke-fan-t2/vent_open" in verified  # the vent feedback step
            assert not [r for r in log if r["kind"] == "failed"], [r for r in log if r["kind"] == "failed"]
            started = [d for _, s, d in outbox_events(site, "linkage.started") if s == RULE]
            assert len(started) == 1 and started[0]["by"] == "system"

            # -- the panel is reset once the detectors are quiet: the restore sequence runs
            (await api.delete("/devices/fire-panel/scenarios")).raise_for_status()
            await gateway.write("fire-panel", "reset", True, verify=False)
            restored: list[tuple[str, str, Value]] = [
                ("door-t2-stair", "release", False),
                ("door-t2-lobby", "release", False),
                ("barrier-cp-in", "open_cmd", False),
                ("broadcast", "emergency_mode", False),
                *[("evac-lighting", f"zone{z}_state", 0) for z in (1, 2, 3, 4, 5)],
                *[(c, "set_current_limit_a", 32.0) for c in CHARGERS],
                ("smoke-fan-t2", "fan_start", False),
                ("smoke-fan-t2", "vent_open_cmd", False),
            ]
            for device, point, want in restored:
                await wait_until(
                    at_device(sim, device, point, want), timeout_s=90, message=f"restored {device}.{point}"
                )
            await wait_until(lambda: rt.engine.linkage[RULE].state.phase == "idle", message="rule idle again")
            await rt.flush()
            await gateway.outbox.flush()
            assert [s for _, s, _ in outbox_events(site, "linkage.restored")].count(RULE) == 1
            # the gateway's fire alarm is latched until the duty officer resets it there too
            assert rt.engine.alarm(FIRE_T2).name.value in ("latched", "returned_unacknowledged")
        finally:
            gateway.stop()
            await run
