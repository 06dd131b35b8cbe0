"""Site, zones, health, technician and admin endpoints against the fake gateway."""

from __future__ import annotations

from pathlib import Path

from core.model import Quality, Sample
from tests.unit.dashboard.conftest import Running, add_user, login, setup_admin, start


async def test_site_tree_with_live_values_and_quality(dash: Running) -> None:
    await setup_admin(dash.client)
    gw = dash.gateway
    gw.live.update([Sample("testsite/m1/voltage_l1", 230.5, Quality.GOOD, 10.0)])
    gw.live.set_online("m1", True)
    gw.alarms.raise_alarm("testsite/m1/voltage_l1/high", klass="fault", priority="high")
    body = (await dash.client.get("/api/site")).json()
    assert body["site"]["name_zh"] == "测试小区"
    [building] = body["buildings"]
    [device] = building["devices"]
    assert building["id"] == "B1" and device["id"] == "m1" and device["online"] is True
    assert device["profile"] == "eastron-sdm630" and device["alarm_count"] == 1
    points = {p["point_id"]: p for p in device["points"]}
    assert points["voltage_l1"]["value"] == 230.5 and points["voltage_l1"]["quality"] == "good"
    assert points["voltage_l1"]["id"] == "testsite/m1/voltage_l1" and points["voltage_l1"]["ts"] == 10.0
    unread = next(p for k, p in points.items() if k != "voltage_l1")
    assert unread["value"] is None and unread["reason"] == "not_yet_read"
    detail = (await dash.client.get("/api/devices/m1")).json()
    assert detail["stats"] is None and len(detail["alarms"]) == 1
    assert (await dash.client.get("/api/devices/nope")).status_code == 404
    zones = (await dash.client.get("/api/zones")).json()["zones"]
    assert [{k: z[k] for k in ("id", "devices", "alarm_count", "worst_class", "name")} for z in zones] == [
        {"id": "Z1", "devices": ["m1"], "alarm_count": 1, "worst_class": "fault", "name": None}
    ]


async def test_site_tree_carries_chinese_enum_labels(tmp_path: Path) -> None:
    lift = {"id": "lift-1", "bus": "lan", "unit": 2, "profile": "elevator-monitor", "building": "B2"}
    async for dash in start(tmp_path, extra_devices=[lift]):
        await setup_admin(dash.client)
        dash.gateway.live.update([Sample("testsite/lift-1/direction", 2, Quality.GOOD, 10.0)])
        body = (await dash.client.get("/api/site")).json()
        devices = {d["id"]: d for b in body["buildings"] for d in b["devices"]}
        points = {p["point_id"]: p for p in devices["lift-1"]["points"]}
        direction = points["direction"]
        # The client receives the code, turns it into the English label, then into Chinese.
        assert direction["value"] == 2 and direction["enum"]["2"] == "down"
        assert direction["enum_zh"] == {"stopped": "停止", "up": "上行", "down": "下行"}
        assert points["door_state"]["enum_zh"]["closed"] == "关门"
        assert points["fault_code"]["enum_zh"]["safety circuit broken"] == "安全回路断路"
        assert points["alarm_code"]["enum_zh"]["trapped at floor level"] == "平层困人"
        assert points["floor"]["enum"] is None and points["floor"]["enum_zh"] is None
        detail = (await dash.client.get("/api/devices/lift-1")).json()
        assert {p["point_id"]: p for p in detail["points"]}["event_code"]["enum_zh"]["inspection"] == "检修"


async def test_health_reports_system_and_outbox(dash: Running) -> None:
    await setup_admin(dash.client)
    body = (await dash.client.get("/api/health")).json()
    assert body["uplink"] is None and body["outbox"]["lanes"]["telemetry"]["rows"] == 3
    assert body["devices"] == [
        {"id": "m1", "online": None, "success_rate": None, "last_latency_ms": None, "polls_ok": None,
         "polls_failed": None, "skipped": None}
    ]  # fmt: skip
    system = body["system"]
    assert 0 <= system["mem_percent"] <= 100 and system["disk_total_bytes"] > 0 and system["rss_mb"] > 0
    assert body["uptime_s"] >= 0


async def test_technician_check_write_and_scenarios(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    await add_user(dash.client, csrf, "duty", "operator")
    check = (await dash.client.get("/api/tech/check")).json()
    assert check == {"ok": True, "problems": [], "file": str(dash.gateway.site.path)}
    headers = {"X-CSRF-Token": csrf}
    unconfirmed = await dash.client.post(
        "/api/tech/m1/write", json={"point": "p", "value": 1}, headers=headers
    )
    assert unconfirmed.status_code == 400 and unconfirmed.json()["error"] == "confirm"
    body = {"point": "setpoint", "value": 21.5, "confirm": True}
    written = await dash.client.post("/api/tech/m1/write", json=body, headers=headers)
    assert written.json() == {"ok": True, "read_back": 21.5, "overridden": True}
    assert dash.gateway.writes == [("m1", "setpoint", 21.5)]
    assert dash.gateway.writers == ["admin"]  # a manual write: the point is overridden for linkage
    assert (await dash.client.get("/api/tech/scenarios")).json()["available"] is False
    not_running = await dash.client.get("/api/tech/m1/registers")
    assert not_running.status_code == 404 and not_running.json()["error"] == "not_running"
    async with dash.new_client() as operator:
        token = await login(operator, "duty", "duty-password")
        refused = await operator.post("/api/tech/m1/write", json=body, headers={"X-CSRF-Token": token})
        assert refused.status_code == 403 and refused.json()["permission"] == "write"
    write_audit = (await dash.client.get("/api/admin/audit", params={"action": "write"})).json()["rows"]
    assert write_audit[0]["target"] == "m1/setpoint" and write_audit[0]["ip"] == "127.0.0.1"


async def test_index_and_unknown_api(dash: Running) -> None:
    index = await dash.client.get("/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    assert "default-src 'self'" in index.headers["content-security-policy"]
    missing = await dash.client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_devices_not_heard_from_yet_are_listed_so_the_page_never_says_normal(dash: Running) -> None:
    await setup_admin(dash.client)
    live = dash.gateway.live
    live.set_online("m1", None)
    body = (await dash.client.get("/api/alarms")).json()
    assert body["alarms"] == [] and body["unverified"] == ["m1"]
    live.set_online("m1", True)
    assert (await dash.client.get("/api/alarms")).json()["unverified"] == []
