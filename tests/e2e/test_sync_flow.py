"""Device → daemon → Mosquitto → central, all real, the daemon as `gatehouse run`.

The chain: a simulator serves Modbus meters; `gatehouse run` polls them, commits samples to its
outbox and, through the site's ``uplink:`` section, publishes signed batches over TLS to the
project's Mosquitto; the central service verifies, stores once and acknowledges; the gateway deletes
only what central acknowledged. See tests/integration/sync/e2e_support.py for what is compared.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.sync.e2e_support import GW, SITE_ID, sync_rig

pytestmark = pytest.mark.slow


async def test_values_flow_from_a_simulated_device_to_centrals_api(tmp_path: Path) -> None:
    async with sync_rig(tmp_path) as rig:
        rig.start_gateway()
        voltage = f"{SITE_ID}/m1/voltage_l1"
        voltages = {f"{SITE_ID}/m{i}/voltage_l1" for i in (1, 2, 3)}

        def voltages_at_central() -> bool:
            return voltages <= {k[0] for k in rig.contents().samples}

        await rig.wait(voltages_at_central, message="every meter's voltage stored at central")
        async with rig.api() as api:

            async def latest() -> dict[str, dict[str, object]]:
                resp = await api.get("/api/v1/points", params={"gateway": GW})
                assert resp.status_code == 200, resp.text
                return {p["point_id"]: p for p in resp.json()}

            points = await latest()
            assert voltages <= points.keys()
            assert points[voltage]["quality"] == 0
            assert 150.0 < float(points[voltage]["value"]) < 300.0  # type: ignore[arg-type]

            # Every value the API gives for the point is one the gateway committed, unchanged.
            now = time.time()
            history = (
                await api.get(
                    f"/api/v1/points/{voltage}/history", params={"from": now - 600, "to": now + 600}
                )
            ).json()
            assert history["samples"], history
            rig.watcher.poll()
            for sample in history["samples"]:
                key = (voltage, round(sample["ts"] * 1_000_000))
                if key in rig.watcher.samples:
                    assert rig.watcher.samples[key] == pytest.approx(sample["value"])

            gateways = (await api.get("/api/v1/gateways")).json()
            mine = next(g for g in gateways if g["gateway_id"] == GW)
            assert mine["online"] is True and mine["state"] == "online"
            assert mine["lanes"]["telemetry"]["acked"] >= 1

            events = (await api.get("/api/v1/events", params={"gateway": GW})).json()
            assert any(e["kind"] == "device.online" and e["source"] == "m1" for e in events), events
        await rig.settle_and_check()


async def test_broker_outage_of_30_s_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    async with sync_rig(tmp_path) as rig:
        rig.start_gateway()
        await rig.wait(lambda: rig.stored_batches() >= 3, message="batches flowing before the outage")

        rig.broker.stop()
        seen_before = len(rig.watcher.samples)
        # Batches the broker delivered before it stopped may still be committing at central.
        await rig.watch_for(2.0)
        stored_before = rig.stored_batches()
        await rig.watch_for(28.0)  # the devices keep changing; the gateway keeps polling
        assert len(rig.watcher.samples) > seen_before + 100, "the gateway stopped committing samples"
        assert rig.stored_batches() == stored_before
        rig.broker.start()

        await rig.wait(
            lambda: rig.stored_batches() > stored_before + 5,
            message="the backlog flowing again",
            timeout_s=90,
        )
        contents = await rig.settle_and_check(timeout_s=120)
        outage = [k for k in rig.watcher.samples if k not in contents.samples]
        assert not outage
        assert rig.gateway is not None and rig.gateway.poll() is None, "the daemon survived the outage"
