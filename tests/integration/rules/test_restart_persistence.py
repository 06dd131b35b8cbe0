"""Alarm state survives a daemon restart: real simulators, real SQLite, the real Gateway.

An acknowledged fire stays acknowledged after the restart and is not raised again; the alarm
history and the outbox hold exactly one raise.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.rules.support import outbox_events, running, runtime_of, simulated
from tests.support import wait_until

FIRE = "rules-test/fire-panel/zone1_fire/fire"
FAULT = "rules-test/fire-panel/zone2_fault/fault"


async def test_acknowledged_alarm_stays_acknowledged_across_a_restart(tmp_path: Path) -> None:
    async with simulated(tmp_path) as (path, site, sim, api):
        async with running(site) as gateway:
            rt = runtime_of(gateway)
            assert not rt.restored
            (await api.post("/devices/fire-panel/scenarios/fire", json={"zone": 1})).raise_for_status()
            (await api.post("/devices/fire-panel/scenarios/fault", json={"zone": 2})).raise_for_status()
            await wait_until(lambda: rt.engine.alarm(FIRE).active, message="fire raised")
            await wait_until(lambda: rt.engine.alarm(FAULT).active, message="fault raised")
            assert await rt.acknowledge(FIRE, by="duty1", comment="crew sent")
            assert rt.engine.alarm(FIRE).name.value == "acknowledged"
            # the fault stays unacknowledged: it must come back unacknowledged, not re-raised
            assert rt.engine.alarm(FAULT).unacked

        async with running(site) as gateway:
            rt = runtime_of(gateway)
            assert rt.restored
            fed = rt.stats["samples"]
            # several polls of the still-burning zone reach the engine after the restart
            await wait_until(lambda: rt.stats["samples"] > fed + 200, message="polls after restart")
            state = rt.engine.alarm(FIRE)
            assert state.name.value == "acknowledged"
            assert state.acked_at is not None and not state.unacked
            assert rt.engine.alarm(FAULT).name.value == "unacknowledged"
            # nothing to acknowledge twice: the acknowledgement was not lost
            assert not await rt.acknowledge(FIRE, by="duty2")
            history = rt.history(text="zone1_fire")
            assert [h["transition"] for h in history if h["key"] == FIRE].count("raised") == 1
            assert any(h["transition"] == "acked" and h["by"] == "duty1" for h in history)

    raised = [s for k, s, _ in outbox_events(site, "alarm.raised")]
    assert raised.count(FIRE) == 1, raised
    assert raised.count(FAULT) == 1, raised
    acked = [d for k, s, d in outbox_events(site, "alarm.acked") if s == FIRE]
    assert len(acked) == 1 and acked[0]["by"] == "duty1" and acked[0]["comment"] == "crew sent"


async def test_latched_fire_is_still_latched_after_restart_and_reset_clears_it(tmp_path: Path) -> None:
    async with simulated(tmp_path) as (path, site, sim, api):
        async with running(site) as gateway:
            rt = runtime_of(gateway)
            (await api.post("/devices/fire-panel/scenarios/fire", json={"zone": 1})).raise_for_status()
            await wait_until(lambda: rt.engine.alarm(FIRE).active, message="fire raised")
            await rt.acknowledge(FIRE, by="duty1")
            # the detector goes quiet and the panel is reset: the gateway's fire alarm latches
            (await api.delete("/devices/fire-panel/scenarios")).raise_for_status()
            await gateway.write("fire-panel", "reset", True, verify=False)
            await wait_until(
                lambda: rt.engine.alarm(FIRE).name.value == "latched", message="latched after the panel reset"
            )

        async with running(site) as gateway:
            rt = runtime_of(gateway)
            fed = rt.stats["samples"]
            await wait_until(lambda: rt.stats["samples"] > fed + 200, message="polls after restart")
            assert rt.engine.alarm(FIRE).name.value == "latched"
            assert await rt.reset(FIRE, by="duty1")
            assert rt.engine.alarm(FIRE).name.value == "normal"
            assert all(row["key"] != FIRE for row in rt.active_alarms())

    raised = [s for k, s, _ in outbox_events(site, "alarm.raised")]
    assert raised.count(FIRE) == 1, raised


async def test_a_linkage_interrupted_by_a_restart_resumes_where_it_was(tmp_path: Path) -> None:
    async with simulated(tmp_path) as (path, site, sim, api):
        async with running(site) as gateway:
            rt = runtime_of(gateway)
            # the door controller stops answering: the first step cannot complete
            (await api.post("/devices/door/scenarios/comm_loss", json={})).raise_for_status()
            (
                await api.post("/devices/fire-panel/scenarios/fire", json={"zone": 1, "detectors": 2})
            ).raise_for_status()

            async def first_attempt_failed() -> bool:
                await rt.flush()
                return any(r["kind"] == "failed" and r["attempt"] == 1 for r in rt.linkage_log())

            await wait_until(first_attempt_failed, timeout_s=60, message="first door attempt failed")
            state = rt.engine.linkage["fire-zone1"].state
            assert state.phase == "running" and state.step == 0
        due = rt.engine.linkage["fire-zone1"].state.due
        assert due is not None
        # the gateway is down while the door controller is repaired, past the attempt's timeout,
        # so the step is retried the moment the gateway is back: before its devices are running
        (await api.delete("/devices/door/scenarios")).raise_for_status()
        await wait_until(lambda: time.time() > due + 0.5, message="the attempt's timeout passed")

        async with running(site) as gateway:
            rt = runtime_of(gateway)
            assert rt.restored
            assert rt.engine.linkage["fire-zone1"].state.run == 1
            await wait_until(lambda: sim.device("door").values()["released"] is True, message="door released")
            await wait_until(
                lambda: sim.device("lighting").values()["zone1_emergency"] is True, message="lighting on"
            )
            await wait_until(lambda: rt.engine.linkage["fire-zone1"].state.phase == "active", message="done")
            await rt.flush()
            log = rt.linkage_log()
            # one activation only: resumed, not started again
            assert [r["kind"] for r in log].count("started") == 1
            door = [r for r in log if r["point"] == "rules-test/door/release"]
            assert any(r["kind"] == "verified" for r in door)
            assert not any(r["kind"] == "failed" and "final" in r["detail"] for r in door)
