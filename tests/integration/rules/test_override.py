"""A manual override wins over automation and is never undone by it (GB 50116 4.1.4)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.rules.support import outbox_events, running, runtime_of, simulated
from tests.support import wait_until

DOOR = "rules-test/door/release"
RULE = "fire-zone1"


async def test_an_overridden_door_is_skipped_by_the_linkage_and_by_its_restore(tmp_path: Path) -> None:
    async with (
        simulated(tmp_path) as (path, site, sim, api),
        running(site) as gateway,
    ):
        rt = runtime_of(gateway)
        # a technician holds the door locked by hand while working on it
        assert await rt.override(DOOR, by="tech1", value=False) is False
        (
            await api.post("/devices/fire-panel/scenarios/fire", json={"zone": 1, "detectors": 2})
        ).raise_for_status()
        await wait_until(
            lambda: sim.device("lighting").values()["zone1_emergency"] is True, message="lighting"
        )
        await wait_until(lambda: rt.engine.linkage[RULE].state.phase == "active", message="sequence done")
        assert sim.device("door").values()["release"] is False
        await rt.flush()  # the linkage log is written behind the engine
        skipped = [r for r in rt.linkage_log() if r["kind"] == "skipped"]
        assert [r["point"] for r in skipped] == [DOOR]
        assert "manual override" in skipped[0]["detail"] and "tech1" in skipped[0]["detail"]

        # the panel is reset: the restore leaves the overridden door alone as well
        (await api.delete("/devices/fire-panel/scenarios")).raise_for_status()
        await gateway.write("fire-panel", "reset", True, verify=False)
        await wait_until(lambda: rt.engine.linkage[RULE].state.phase == "idle", message="restored")
        assert sim.device("lighting").values()["zone1_emergency"] is False
        await rt.flush()
        assert len([r for r in rt.linkage_log() if r["kind"] == "skipped"]) == 2
        assert await rt.release_override(DOOR, by="tech1")
        assert not await rt.release_override(DOOR, by="tech1")
    kinds = [k for k, _, d in outbox_events(site, "linkage.override") if d["by"] == "tech1"]
    assert kinds == ["linkage.override", "linkage.override_released"]


async def test_an_operators_write_through_the_gateway_marks_the_point_overridden(tmp_path: Path) -> None:
    async with (
        simulated(tmp_path) as (path, site, sim, api),
        running(site) as gateway,
    ):
        rt = runtime_of(gateway)
        await gateway.write("lighting", "zone1_emergency", False, by="duty2")
        assert rt.engine.io.overridden == {"rules-test/lighting/zone1_emergency": "duty2"}
        (
            await api.post("/devices/fire-panel/scenarios/fire", json={"zone": 1, "detectors": 2})
        ).raise_for_status()
        await wait_until(lambda: sim.device("door").values()["released"] is True, message="door released")
        await wait_until(lambda: rt.engine.linkage[RULE].state.phase == "active", message="sequence done")
        assert sim.device("lighting").values()["zone1_emergency"] is False
