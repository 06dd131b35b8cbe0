"""SIGHUP: a new site's rules are compiled and every alarm keeps its state."""

from __future__ import annotations

from pathlib import Path

from tests.integration.rules.support import load, running, runtime_of, simulated
from tests.support import wait_until

FIRE = "rules-test/fire-panel/zone1_fire/fire"
EXTRA = "rules-test/_site/two_zones"


async def test_reload_keeps_acknowledged_alarm_and_adds_the_new_rule(tmp_path: Path) -> None:
    async with (
        simulated(tmp_path) as (path, site, sim, api),
        running(site) as gateway,
    ):
        rt = runtime_of(gateway)
        (await api.post("/devices/fire-panel/scenarios/fire", json={"zone": 1})).raise_for_status()
        await wait_until(lambda: rt.engine.alarm(FIRE).active, message="fire raised")
        assert await rt.acknowledge(FIRE, by="duty1")

        text = path.read_text(encoding="utf-8").replace(
            "  alarms:\n",
            "  alarms:\n"
            "    - {id: two_zones, kind: condition, priority: fire,"
            " expr: 'point(\"fire-panel.fire_zone_count\") >= 2'}\n",
            1,
        )
        path.write_text(text, encoding="utf-8")
        gateway.reload(load(path))
        await wait_until(lambda: EXTRA in rt.engine.alarm_keys(), timeout_s=60, message="new rules in force")
        assert rt.engine.alarm(FIRE).name.value == "acknowledged"
        # the new condition alarm works on the running devices
        (await api.post("/devices/fire-panel/scenarios/fire", json={"zone": 3})).raise_for_status()
        await wait_until(lambda: rt.engine.alarm(EXTRA).active, timeout_s=60, message="new alarm raised")
        assert rt.engine.alarm(FIRE).name.value == "acknowledged"
    raised = [h["key"] for h in rt.history(limit=1000) if h["transition"] == "raised"]
    assert raised.count(FIRE) == 1
