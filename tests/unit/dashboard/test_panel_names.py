"""Names people use, communication faults, the zones: section and the SSE heartbeat (issue 18)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import ConfigError
from edge.config.loader import load_site
from edge.dashboard.names import SiteNames
from edge.site_zones import check_zones
from tests.unit.dashboard.conftest import XHR, Running, setup_admin, start
from tests.unit.dashboard.sse import next_event, sse_events

DUTY = Path(__file__).resolve().parents[2] / "fixtures" / "sites" / "duty-zones"


def duty_names(tmp_path: Path) -> SiteNames:
    shutil.copytree(DUTY, tmp_path / "site")
    return SiteNames(load_site(tmp_path / "site" / "site.yaml"))


def test_alarm_rows_get_device_and_zone_names(tmp_path: Path) -> None:
    names = duty_names(tmp_path)
    row = {"key": "tower-b/fire-panel/zone5_fire/fire", "zone": "5", "point": "tower-b/fire-panel/zone5_fire"}
    names.enrich(row, "fire-panel")
    assert row["zone_name_zh"] == "B座1-3层" and row["device_name_zh"] == "火灾报警控制器"
    assert row["location"] == "fire control room 101" and row["building"] == "B"
    assert names.place(row) == "B座1-3层 · 火灾报警控制器 · B 1 fire control room 101"
    # a row without a zone takes its device's zone
    door = names.enrich({"key": "tower-b/door-b-stair/forced_open/forced", "zone": None}, "door-b-stair")
    assert door["zone"] == "5" and door["device_name_zh"] == "B座楼梯间门禁"
    assert names.shown_zone_ids() == ["4", "5", "6"]


def test_offline_devices_are_fault_rows_and_a_dead_bus_is_one_row(tmp_path: Path) -> None:
    names = duty_names(tmp_path)
    online = {"fire-panel": True, "door-b-stair": False, "door-b-lobby": True,
              "fan-b-roof-1": False, "fan-b-roof-2": False, "barrier-b": None}  # fmt: skip
    rows = names.comm_faults(online, {"door-b-stair": 100.0})
    by_key = {r["key"]: r for r in rows}
    assert set(by_key) == {"tower-b/_comm/device/door-b-stair", "tower-b/_comm/bus/roof"}
    assert by_key["tower-b/_comm/device/door-b-stair"]["since"] == 100.0
    assert by_key["tower-b/_comm/device/door-b-stair"]["zone_name_zh"] == "B座1-3层"
    assert by_key["tower-b/_comm/bus/roof"]["count"] == 2
    # not yet polled (None) is not a fault
    assert names.comm_faults({"barrier-b": None}, {}) == []


def test_zones_section_is_checked_with_locations(tmp_path: Path) -> None:
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "a.png").write_bytes(b"\x89PNG")
    ok = [{"id": 5, "name": "Tower B", "name_zh": "B座", "plan": "plans/a.png", "devices": {"d1": [1, 2]}}]
    assert check_zones(ok, base_dir=tmp_path) == []
    issues = check_zones(
        [{"id": "5", "name": "A"}, {"id": "5", "name": "B"}, {"id": "6"},
         {"id": "7", "name": "C", "plan": "x.pdf"}, {"id": "8", "name": "D", "plan": "no.png"}, "zone 9"],
        base_dir=tmp_path,
    )  # fmt: skip
    text = [(i.loc, i.message) for i in issues]
    assert (("zones", 1, "id"), "zone '5' is declared twice (first at zones[0])") in text
    assert any(loc == ("zones", 2, "name") and "missing" in msg for loc, msg in text), text
    assert any(loc[:2] == ("zones", 3) and "image" in msg for loc, msg in text), text
    assert any(loc == ("zones", 4, "plan") and "does not exist" in msg for loc, msg in text), text
    assert any(loc == ("zones", 5) for loc, _ in text), text
    assert check_zones({"id": "5"}, base_dir=tmp_path)[0].message.startswith("expected a list")


def test_undeclared_zone_ids_are_refused_with_their_position(tmp_path: Path) -> None:
    shutil.copytree(DUTY, tmp_path / "site")
    path = tmp_path / "site" / "site.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace('zone: "4", location: ramp', 'zone: "9", location: ramp')
    )
    with pytest.raises(ConfigError) as exc:
        load_site(path)
    messages = [str(p) for p in exc.value.problems]
    assert any("devices[3].zone" in m and "zone '9' is not declared" in m for m in messages), messages


@pytest.fixture
async def beating(tmp_path: Path):  # type: ignore[no-untyped-def]
    async for running in start(tmp_path, {"listen": "127.0.0.1:0", "heartbeat_s": 0.5}):
        yield running


async def test_the_event_stream_beats_while_nothing_happens(beating: Running) -> None:
    await setup_admin(beating.client)
    async with beating.client.stream("GET", "/api/events", headers=XHR) as response:
        stream = sse_events(response)
        hello = await next_event(stream, "hello")
        assert hello["heartbeat_s"] == 0.5
        beat = await next_event(stream, "heartbeat")
        assert "server_time" in beat
    body = (await beating.client.get("/api/alarms")).json()
    assert body["comm_faults"] == [] and body["drills"] == [] and "server_time" in body
