"""The real gateway with a simulated meter and its dashboard: values, SSE, health, technician tools."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

from edge.app import Gateway
from edge.config.loader import load_site
from edge.dashboard.setup_code import read_setup_code
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.support import free_port, wait_until
from tests.unit.dashboard.sse import next_event, sse_events

XHR = {"X-Requested-With": "gatehouse"}


def _site(path: Path, *, port: int, data_dir: Path, dashboard: dict[str, Any] | None) -> Path:
    site: dict[str, Any] = {
        "site": {"id": "testsite", "name_zh": "测试小区"},
        "gateway": {"id": "gw-test", "data_dir": str(data_dir)},
        "outbox": {"commit_interval_ms": 20},
        "buses": [{"id": "lan", "type": "modbus_tcp", "host": "127.0.0.1", "port": port, "timeout_ms": 300}],
        "devices": [
            {
                "id": "m1",
                "bus": "lan",
                "unit": 1,
                "profile": "eastron-sdm630",
                "poll_interval_s": 0.2,
                "building": "B1",
                "zone": "Z1",
            }
        ],  # fmt: skip
    }
    if dashboard is not None:
        site["dashboard"] = dashboard
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(site, fh)
    return path


async def _point(client: httpx.AsyncClient, point_id: str) -> dict[str, Any] | None:
    body = (await client.get("/api/site")).json()
    for building in body["buildings"]:
        for device in building["devices"]:
            for point in device["points"]:
                if point["point_id"] == point_id:
                    return dict(point)
    return None


async def test_gateway_serves_live_values_health_and_technician_tools(tmp_path: Path) -> None:
    port = free_port()
    sim_site = _site(tmp_path / "sim.yaml", port=port, data_dir=tmp_path / "sim", dashboard=None)
    async with SimulationRunner(read_site_plan(sim_site).devices, tick_s=0.2, control_port=0) as sim:
        dashboard = {"listen": "127.0.0.1:0", "history_interval_s": 1, "simulator_api": sim.control_url}
        site_path = _site(tmp_path / "site.yaml", port=port, data_dir=tmp_path / "gw", dashboard=dashboard)
        async with Gateway(load_site(site_path)) as gw:
            run = asyncio.create_task(gw.run(), name="gateway-run")
            try:
                server = gw.dashboard
                assert server is not None and server.port > 0
                async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as client:
                    await _exercise(client, sim, read_setup_code(tmp_path / "gw"))
            finally:
                gw.stop()
                await run
        assert (tmp_path / "gw" / "dashboard.db").is_file()


async def _exercise(client: httpx.AsyncClient, sim: SimulationRunner, code: str | None) -> None:
    assert code is not None  # the first start wrote the one-time setup code to the data folder
    setup = {"username": "admin", "password": "a-long-password", "name": "值班长", "code": code}
    csrf = (await client.post("/api/setup", json=setup, headers=XHR)).json()["csrf"]
    headers = {"X-CSRF-Token": csrf}

    async def good_voltage() -> dict[str, Any] | None:
        point = await _point(client, "voltage_l1")
        return point if point and point["quality"] == "good" and point["value"] is not None else None

    point = await wait_until(good_voltage, message="a good voltage value in /api/site")
    assert point["id"] == "testsite/m1/voltage_l1" and point["unit"] == "V"
    expected = sim.device("m1").values()["voltage_l1"]
    assert isinstance(expected, float) and abs(point["value"] - expected) < 0.05 * expected  # ticking model

    # Live values arrive over SSE from the real point bus.
    async with client.stream("GET", "/api/events") as response:
        stream = sse_events(response)
        await next_event(stream, "hello")
        values = await asyncio.wait_for(next_event(stream, "values"), timeout=30)
        assert any(row[0] == "testsite/m1/voltage_l1" and row[2] == "good" for row in values["points"])

    health = (await client.get("/api/health")).json()
    [device] = health["devices"]
    assert device["id"] == "m1" and device["online"] is True and device["polls_ok"] > 0
    assert health["outbox"] is not None and health["system"]["disk_total_bytes"] > 0

    registers = (await client.get("/api/tech/m1/registers")).json()
    assert registers["blocks"] and all(b["values"] is not None for b in registers["blocks"])
    raw = {p["id"]: p for p in registers["points"]}
    assert raw["voltage_l1"]["raw"] is not None and len(raw["voltage_l1"]["raw"]) == 2

    check = (await client.get("/api/tech/check")).json()
    assert check["ok"] is True, check

    scenarios = (await client.get("/api/tech/scenarios")).json()
    assert scenarios["available"] is True and "m1" in scenarios["devices"]
    inject = {"device": "m1", "scenario": "comm_loss", "params": {}}
    assert (await client.post("/api/tech/scenarios/inject", json=inject, headers=headers)).json()[
        "ok"
    ] is True

    async def offline() -> bool:
        body = (await client.get("/api/site")).json()
        return body["buildings"][0]["devices"][0]["online"] is False

    await wait_until(offline, message="the device offline after comm_loss")
    stop = {**inject, "stop": True}
    assert (await client.post("/api/tech/scenarios/inject", json=stop, headers=headers)).status_code == 200

    async def trend_rows() -> list[Any]:
        params = {"point": "testsite/m1/voltage_l1", "max_points": 100}
        rows: list[Any] = (await client.get("/api/trend", params=params)).json()["rows"]
        return rows

    rows = await wait_until(trend_rows, message="trend rows")
    assert all(r[1] <= r[2] <= r[3] for r in rows)
    audit = (await client.get("/api/admin/audit")).json()["rows"]
    assert {"setup", "inject", "scenario_stop"} <= {r["action"] for r in audit}
