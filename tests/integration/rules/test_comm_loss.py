"""Communication loss (a ``stale`` alarm from the profile, its delay overridden by the site)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.rules.support import outbox_events, running, runtime_of, simulated
from tests.support import wait_until

LOST = "rules-test/fire-panel/fire_zone_count/comm_lost"


async def test_a_silent_fire_panel_raises_comm_lost_and_clears_when_it_answers(tmp_path: Path) -> None:
    async with (
        simulated(tmp_path) as (path, site, sim, api),
        running(site) as gateway,
    ):
        rt = runtime_of(gateway)
        assert rt.engine.alarm_info(LOST).priority == "medium"  # 故障 (fault) from the profile
        assert not rt.engine.alarm(LOST).active
        (await api.post("/devices/fire-panel/scenarios/comm_loss", json={})).raise_for_status()
        await wait_until(lambda: rt.engine.alarm(LOST).active, timeout_s=60, message="comm_lost raised")
        assert rt.engine.alarm(LOST).unacked
        (await api.delete("/devices/fire-panel/scenarios")).raise_for_status()
        await wait_until(lambda: not rt.engine.alarm(LOST).active, timeout_s=60, message="comm_lost returned")
        assert rt.engine.alarm(LOST).name.value == "returned_unacknowledged"
        assert await rt.acknowledge(LOST, by="duty1")
        assert rt.engine.alarm(LOST).name.value == "normal"
    kinds = [k for k, s, _ in outbox_events(site, "alarm.") if s == LOST]
    assert kinds == ["alarm.raised", "alarm.returned", "alarm.acked"]
