"""The runtime as the dashboard sees it (edge.alarm_api.AlarmService), on real simulators."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from edge.alarm_api import AlarmService
from tests.integration.rules.support import outbox_events, running, runtime_of, simulated
from tests.support import wait_until

FIRE = "rules-test/fire-panel/zone1_fire/fire"
FAULT = "rules-test/fire-panel/zone3_fault/fault"
RULE = "fire-zone1"


async def test_confirm_mode_history_statistics_linkage_log_and_updates(tmp_path: Path) -> None:
    updates: list[dict[str, Any]] = []
    async with (
        simulated(tmp_path, mode="confirm") as (_path, site, sim, api),
        running(site) as gateway,
    ):
        rt = runtime_of(gateway)
        service: AlarmService = rt  # the protocol the dashboard is written against
        unsubscribe = service.subscribe(updates.append)
        (await api.post("/devices/fire-panel/scenarios/fault", json={"zone": 3})).raise_for_status()
        (
            await api.post("/devices/fire-panel/scenarios/fire", json={"zone": 1, "detectors": 2})
        ).raise_for_status()
        await wait_until(
            lambda: any(
                r["id"] == RULE and r["state"] == "awaiting_confirm" for r in service.linkage_rules()
            ),
            message="the rule waits for an operator",
        )
        # confirm mode: nothing is written before the operator confirms
        assert sim.device("door").values()["release"] is False
        assert await service.confirm_linkage(RULE, by="duty1")
        await wait_until(lambda: sim.device("door").values()["released"] is True, message="door released")
        await wait_until(
            lambda: sim.device("lighting").values()["zone1_state"] == 1, message="lighting in emergency"
        )
        await wait_until(
            lambda: any(r["id"] == RULE and r["state"] == "done" for r in service.linkage_rules()),
            message="sequence done",
        )
        with pytest.raises(KeyError):
            await service.confirm_linkage("no-such-rule", by="duty1")
        with pytest.raises(KeyError):
            await service.acknowledge("rules-test/nope/x/y", by="duty1")

        # the console view: fire first, then the fault
        rows = service.active_alarms()
        assert [r["key"] for r in rows][:2] == [FIRE, FAULT]
        assert rows[0]["state"] == "unacknowledged" and rows[0]["class"] == "fire"
        assert await service.acknowledge(FIRE, by="duty1", comment="on my way")
        await service.comment(FAULT, by="tech2", text="loop 3 open, replacing detector")
        until = time.time() + 3600
        assert await service.shelve(FAULT, by="tech2", until_wall=until, reason="detector replacement")
        assert next(r for r in service.active_alarms() if r["key"] == FAULT)["shelved_until"] == until
        assert await service.unshelve(FAULT, by="tech2")

        # history: newest first, filtered
        fire_rows = service.history(klass="fire")
        assert [h["transition"] for h in fire_rows][:2] == ["acked", "raised"]
        assert fire_rows[0]["by"] == "duty1" and fire_rows[0]["comment"] == "on my way"
        assert {h["key"] for h in service.history(priority="medium")} == {FAULT}
        assert any(h["transition"] == "comment" for h in service.history(text="replacing"))
        assert service.history(device="door") == []
        assert len(service.history(limit=1)) == 1
        assert service.history(since=time.time() + 10) == []
        stats = service.statistics(since=time.time() - 3600, until=time.time() + 60)
        (today,) = stats["per_day"]
        assert today["fire"] == 1 and today["fault"] == 1
        assert {t["key"] for t in stats["top"]} == {FIRE, FAULT}
        assert stats["counters"]["standing"] >= 2

        # linkage log: every step with who/what; filtered by device
        await rt.flush()  # the log is written behind the engine
        log = service.linkage_log(limit=100)
        kinds = [r["kind"] for r in reversed(log)]
        assert kinds[:3] == ["confirm_requested", "confirmed", "started"]
        assert "completed" in kinds
        door_rows = service.linkage_log(device="door")
        assert {r["kind"] for r in door_rows} == {"requested", "written", "verified"}
        assert all(r["point"] == "rules-test/door/release" for r in door_rows)
        confirmed = next(r for r in log if r["kind"] == "confirmed")
        assert confirmed["by"] == "duty1"

        # live updates reached the listener, with the row as the console shows it
        await wait_until(
            lambda: any(u["type"] == "alarm" and u["transition"] == "acked" for u in updates),
            message="ack update",
        )
        acked = next(u for u in updates if u["type"] == "alarm" and u["transition"] == "acked")
        assert acked["key"] == FIRE and acked["row"]["state"] == "acknowledged"
        assert any(u["type"] == "linkage" and u["row"]["kind"] == "verified" for u in updates)
        unsubscribe()
        count = len(updates)
        await service.comment(FIRE, by="duty1", text="after unsubscribe")
        assert len(updates) == count

    # every transition and step went to the outbox event lane with who and when
    events = outbox_events(site)
    acked_events = [d for k, s, d in events if k == "alarm.acked" and s == FIRE]
    assert acked_events and acked_events[0]["by"] == "duty1" and acked_events[0]["at"] > 0
    assert any(k == "linkage.confirmed" and d["by"] == "duty1" for k, _, d in events)
    assert any(k == "alarm.comment" and d["comment"] == "after unsubscribe" for k, _, d in events)
