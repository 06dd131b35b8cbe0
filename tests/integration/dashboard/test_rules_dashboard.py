"""The dashboard on the real rules runtime: a simulated fire reaches the browser's event stream,
an operator acknowledges it, a viewer cannot, and the history exports with its Chinese text."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import httpx

from edge.app import Gateway
from edge.config.loader import load_site
from edge.dashboard.setup_code import read_setup_code
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.support import free_port, wait_until
from tests.unit.dashboard.sse import sse_events

XHR = {"X-Requested-With": "gatehouse"}
FIRE = "rules-test/fire-panel/zone1_fire/fire"

SITE = """
site: {{id: rules-test, name_zh: 测试小区}}
gateway: {{id: gw-rules, data_dir: {data}}}
outbox: {{commit_interval_ms: 20}}
buses:
  - {{id: room, type: modbus_tcp, host: 127.0.0.1, port: {port}, timeout_ms: 1000, retries: 1}}
devices:
  - {{id: fire-panel, bus: room, unit: 1, profile: fire-panel-modbus, poll_interval_s: 0.25, zone: Z1}}
"""


async def _login(base: str, username: str, password: str) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(base_url=base, timeout=30.0)
    response = await client.post("/api/login", json={"username": username, "password": password}, headers=XHR)
    assert response.status_code == 200, response.text
    return client, str(response.json()["csrf"])


async def test_fire_alarm_flows_to_sse_ack_history_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(data=tmp_path / "data", port=free_port()), encoding="utf-8")
    plan = read_site_plan(path)
    async with SimulationRunner(plan.devices, tick_s=0.25, control_port=0) as sim:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"dashboard: {{listen: '127.0.0.1:0', simulator_api: '{sim.control_url}'}}\n")
        async with Gateway(load_site(path)) as gw:
            run = asyncio.create_task(gw.run(), name="gateway-run")
            try:
                assert gw.alarms is not None and gw.dashboard is not None
                await wait_until(
                    lambda: gw.live.device_online.get("fire-panel") is True, message="panel online"
                )
                await _duty_flow(gw.dashboard.url, gw.site.data_dir)
            finally:
                gw.stop()
                await run


async def _duty_flow(base: str, data_dir: Path) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as admin:
        setup = {"username": "admin", "password": "a-long-password", "code": read_setup_code(data_dir)}
        csrf = (await admin.post("/api/setup", json=setup, headers=XHR)).json()["csrf"]
        for name, role in (("duty", "operator"), ("watch", "viewer")):
            body = {"username": name, "password": f"{name}-password", "role": role}
            assert (
                await admin.post("/api/admin/users", json=body, headers={"X-CSRF-Token": csrf})
            ).status_code == 201
        duty, duty_csrf = await _login(base, "duty", "duty-password")
        watch, watch_csrf = await _login(base, "watch", "watch-password")
        try:
            async with duty.stream("GET", "/api/events") as response:
                stream = sse_events(response)
                assert (await anext(stream))[0] == "hello"
                inject = {"device": "fire-panel", "scenario": "fire", "params": {"zone": 1, "detectors": 2}}
                injected = await admin.post(
                    "/api/tech/scenarios/inject", json=inject, headers={"X-CSRF-Token": csrf}
                )
                assert injected.status_code == 200, injected.text
                alarm: dict[str, Any] | None = None
                async with asyncio.timeout(30):
                    async for event, data in stream:
                        if event == "alarm" and data["key"] == FIRE and data["row"] is not None:
                            alarm = data
                            break
                assert (
                    alarm is not None and alarm["row"]["class"] == "fire" and alarm["row"]["unacked"] is True
                )
                listed = (await watch.get("/api/alarms")).json()
                fire = next(a for a in listed["alarms"] if a["key"] == FIRE)
                assert fire["device"] == "fire-panel" and listed["counts"]["by_class"].get("fire", 0) >= 1
                denied = await watch.post(
                    "/api/alarms/ack", json={"key": FIRE}, headers={"X-CSRF-Token": watch_csrf}
                )
                assert denied.status_code == 403
                acked = await duty.post(
                    "/api/alarms/ack",
                    json={"key": FIRE, "comment": "已派人"},
                    headers={"X-CSRF-Token": duty_csrf},
                )
                assert acked.json() == {"ok": True}
                async with asyncio.timeout(30):
                    async for event, data in stream:
                        if (
                            event == "alarm"
                            and data["key"] == FIRE
                            and data["row"]
                            and not data["row"]["unacked"]
                        ):
                            break
            rows = (await duty.get("/api/alarms/history", params={"class": "fire"})).json()["rows"]
            assert [r["transition"] for r in rows][:2] == ["acked", "raised"] and rows[0]["by"] == "duty"
            exported = await duty.get("/api/alarms/history.csv", params={"class": "fire"})
            assert exported.content.startswith(b"\xef\xbb\xbf")
            table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
            assert any(
                r[1] == FIRE and r[6] and any("\u4e00" <= ch <= "\u9fff" for ch in r[6]) for r in table[1:]
            )
            stats = (await duty.get("/api/alarms/stats", params={"days": 1})).json()
            assert sum(day.get("fire", 0) for day in stats["per_day"]) >= 1
            audit = (await admin.get("/api/admin/audit", params={"user": "duty"})).json()["rows"]
            assert any(r["action"] == "ack" and r["target"] == FIRE and r["ip"] == "127.0.0.1" for r in audit)
        finally:
            await duty.aclose()
            await watch.aclose()
