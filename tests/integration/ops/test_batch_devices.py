"""Batch disable / enable / delete of devices through the dashboard API, on a running gateway:
the site file is edited (comments kept), validated, audited and reloaded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from edge.app import Gateway
from edge.config.loader import load_site
from edge.dashboard.setup_code import read_setup_code
from edge.site_io import decode_csv, import_rows
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.support import free_port, wait_until

XHR = {"X-Requested-With": "gatehouse"}

SITE = """# the pump room
site: {{id: batch-test}}
gateway: {{id: gw-batch, data_dir: {data}}}
outbox: {{commit_interval_ms: 20}}
buses:
  - {{id: room, type: modbus_tcp, host: 127.0.0.1, port: {port}, timeout_ms: 500, retries: 0}}
devices:
  # two meters on the same bridge
  - {{id: m1, bus: room, unit: 1, profile: eastron-sdm630, poll_interval_s: 0.25}}
  - {{id: m2, bus: room, unit: 2, profile: eastron-sdm630, poll_interval_s: 0.25}}  # keep this comment
  - {{id: m3, bus: room, unit: 3, profile: eastron-sdm630, poll_interval_s: 0.25}}
"""


async def test_batch_disable_enable_delete(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(data=tmp_path / "data", port=free_port()), encoding="utf-8")
    plan = read_site_plan(path)
    async with SimulationRunner(plan.devices, tick_s=0.25, control_port=0):
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        path.write_text(text + "dashboard: {listen: '127.0.0.1:0'}\n", encoding="utf-8")
        async with Gateway(load_site(path)) as gw:
            run = asyncio.create_task(gw.run(), name="gateway-run")
            try:
                await wait_until(lambda: gw.live.device_online.get("m2") is True, message="m2 online")
                await _flow(gw, gw.dashboard.url, path)
            finally:
                gw.stop()
                await run


async def _flow(gw: Gateway, base: str, path: Path) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as admin:
        code = read_setup_code(gw.site.data_dir)
        setup = {"username": "admin", "password": "a-long-password", "code": code}
        csrf = (await admin.post("/api/setup", json=setup, headers=XHR)).json()["csrf"]
        h = {"X-CSRF-Token": csrf}
        body = {"username": "watch", "password": "watch-password", "role": "viewer"}
        assert (await admin.post("/api/admin/users", json=body, headers=h)).status_code == 201

        listed = (await admin.get("/api/admin/devices")).json()
        assert [d["id"] for d in listed["devices"]] == ["m1", "m2", "m3"]
        assert {d["bus_type"] for d in listed["devices"]} == {"modbus_tcp"}

        # The sheet download is gatehouse export devices: BOM, and it reads back as the site's.
        sheet = await admin.get("/api/admin/devices/export.csv")
        assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
        assert "attachment" in sheet.headers["content-disposition"]
        assert sheet.content.startswith(b"\xef\xbb\xbf")
        imported = import_rows(decode_csv(sheet.content))
        assert [d["id"] for d in imported.devices] == ["m1", "m2", "m3"]
        assert [b["id"] for b in imported.buses] == ["room"]

        r = await admin.post(
            "/api/admin/devices/batch", json={"action": "disable", "devices": ["m1"]}, headers=h
        )
        # The answer comes once the gateway runs the new site: it says what runs now.
        assert r.status_code == 200 and r.json()["applied"] is True, r.text
        assert r.json()["disabled"] == ["m1"] and r.json()["running"] == 2
        r = await admin.post(
            "/api/admin/devices/batch", json={"action": "enable", "devices": ["m1"]}, headers=h
        )
        assert r.json()["applied"] is True and r.json()["disabled"] == [] and r.json()["running"] == 3

        r = await admin.post(
            "/api/admin/devices/batch", json={"action": "disable", "devices": ["m2", "m3"]}, headers=h
        )
        assert r.status_code == 200, r.text
        await wait_until(
            lambda: gw.devices is not None and set(gw.devices.skipped) == {"m2", "m3"},
            message="m2, m3 disabled",
        )
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        assert "# keep this comment" in text and "# the pump room" in text
        assert load_site(path).devices[1].config.enabled is False

        r = await admin.post(
            "/api/admin/devices/batch", json={"action": "enable", "devices": ["m2"]}, headers=h
        )
        assert r.status_code == 200
        await wait_until(
            lambda: gw.devices is not None and set(gw.devices.skipped) == {"m3"}, message="m2 enabled again"
        )

        r = await admin.post(
            "/api/admin/devices/batch", json={"action": "delete", "devices": ["m3"]}, headers=h
        )
        assert r.status_code == 200
        await wait_until(lambda: [d.id for d in gw.site.devices] == ["m1", "m2"], message="m3 deleted")
        assert "m3" not in await asyncio.to_thread(path.read_text, encoding="utf-8")
        deleted = json.loads(await asyncio.to_thread((gw.site.data_dir / "deleted-devices.json").read_text))
        assert set(deleted) == {"m3"}

        r = await admin.post(
            "/api/admin/devices/batch", json={"action": "delete", "devices": ["nope"]}, headers=h
        )
        assert r.status_code == 404

        rows = (await admin.get("/api/admin/audit", params={"limit": 50})).json()["rows"]
        actions = [(row["action"], row["target"]) for row in rows]
        for expected in (
            ("device_disable", "m2,m3"),
            ("device_enable", "m2"),
            ("device_delete", "m3"),
            ("export_devices", "site.yaml"),
        ):
            assert expected in actions, actions

    async with httpx.AsyncClient(base_url=base, timeout=30.0) as viewer:
        login = await viewer.post(
            "/api/login", json={"username": "watch", "password": "watch-password"}, headers=XHR
        )
        vh = {"X-CSRF-Token": login.json()["csrf"]}
        r = await viewer.post(
            "/api/admin/devices/batch", json={"action": "delete", "devices": ["m1"]}, headers=vh
        )
        assert r.status_code == 403
        assert (await viewer.get("/api/admin/devices/export.csv")).status_code == 403
    assert [d.id for d in load_site(path).devices] == ["m1", "m2"]
