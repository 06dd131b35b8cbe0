"""A technician's write on the dashboard is a manual override, end to end (issue 17, item 4).

The real gateway, rules runtime and dashboard with simulated devices: a technician holds the
door locked through the technician view, a fire in zone 1 runs the linkage, which releases
nothing on that door (``linkage.skipped``, reason manual override) while it does everything
else; the override is listed, released on the dashboard (audited), and the restore after the
panel reset writes the door again.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from edge.app import Gateway
from edge.config.loader import load_site
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.integration.rules.support import running, runtime_of, write_site
from tests.support import wait_until
from tests.unit.dashboard.conftest import setup_admin

DOOR = "rules-test/door/release"
RULE = "fire-zone1"


async def _linkage_log(client: httpx.AsyncClient) -> list[dict[str, object]]:
    log: list[dict[str, object]] = (await client.get("/api/linkage")).json()["log"]
    return log


async def test_a_technicians_write_is_never_undone_by_linkage_until_released(tmp_path: Path) -> None:
    path = write_site(tmp_path)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("dashboard: {listen: '127.0.0.1:0'}\n")
    async with (
        SimulationRunner(read_site_plan(path).devices, tick_s=0.25, control_port=0) as sim,
        httpx.AsyncClient(base_url=sim.control_url) as api,
        running(load_site(path)) as gateway,
    ):
        assert isinstance(gateway, Gateway) and gateway.dashboard is not None
        rt = runtime_of(gateway)
        async with httpx.AsyncClient(base_url=gateway.dashboard.url, timeout=30.0) as tech:
            headers = {"X-CSRF-Token": await setup_admin(tech, gateway.site.data_dir)}
            # the technician locks the door by hand from the technician view
            wrote = await tech.post(
                "/api/tech/door/write",
                json={"point": "release", "value": False, "confirm": True},
                headers=headers,
            )
            assert wrote.status_code == 200, wrote.text
            assert wrote.json()["overridden"] is True
            listed = (await tech.get("/api/tech/overrides")).json()["overrides"]
            assert listed == [{"point": DOOR, "device": "door", "key": "release", "by": "admin"}]

            # a fire in zone 1: the linkage runs, but leaves the door alone
            fire = {"zone": 1, "detectors": 2}
            (await api.post("/devices/fire-panel/scenarios/fire", json=fire)).raise_for_status()
            await wait_until(
                lambda: sim.device("lighting").values()["zone1_emergency"] is True, message="lighting on"
            )
            await wait_until(lambda: rt.engine.linkage[RULE].state.phase == "active", message="sequence done")
            assert sim.device("door").values()["release"] is False
            await rt.flush()
            skipped = [r for r in await _linkage_log(tech) if r["kind"] == "skipped"]
            assert [r["point"] for r in skipped] == [DOOR]
            assert "manual override" in str(skipped[0]["detail"]) and "admin" in str(skipped[0]["detail"])

            # released on the dashboard, audited; a second release finds nothing
            released = await tech.post("/api/tech/release", json={"point": DOOR}, headers=headers)
            assert released.status_code == 200 and released.json()["overrides"] == []
            again = await tech.post("/api/tech/release", json={"point": DOOR}, headers=headers)
            assert again.status_code == 404 and again.json()["error"] == "not_overridden"
            audit = (await tech.get("/api/admin/audit", params={"action": "override_release"})).json()["rows"]
            assert [(r["target"], r["result"]) for r in audit] == [(DOOR, "not_found"), (DOOR, "ok")]

            # from now on automation writes the door again: the restore step is not skipped
            (await api.delete("/devices/fire-panel/scenarios")).raise_for_status()
            await gateway.write("fire-panel", "reset", True, verify=False)
            await wait_until(lambda: rt.engine.linkage[RULE].state.phase == "idle", message="restored")
            await rt.flush()
            door_steps = [r for r in await _linkage_log(tech) if r["point"] == DOOR]
            assert [r["kind"] for r in door_steps if r["kind"] == "skipped"] == ["skipped"]
            assert any(r["kind"] in ("written", "verified") for r in door_steps), door_steps
