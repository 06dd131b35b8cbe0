"""Alarm history, its CSV export for Excel, statistics and linkage through the API."""

from __future__ import annotations

import csv
import io

from tests.unit.dashboard.conftest import Running, setup_admin


async def test_history_csv_has_bom_and_chinese(dash: Running) -> None:
    await setup_admin(dash.client)
    alarms = dash.gateway.alarms
    alarms.raise_alarm("testsite/m1/smoke/fire", zh="一号楼三层烟感火警", en="Smoke, building 1 floor 3")
    alarms.raise_alarm(
        "testsite/m1/pump/fault", klass="fault", priority="high", zh="消防泵故障", en="Pump fault"
    )
    response = await dash.client.get("/api/alarms/history.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    body = response.content
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel then shows the Chinese text
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["time", "key", "transition"]
    assert {r[6] for r in rows[1:]} == {"一号楼三层烟感火警", "消防泵故障"}
    assert rows[1][0].endswith("+08:00")  # the site's time zone (Asia/Shanghai)
    filtered = await dash.client.get("/api/alarms/history.csv", params={"class": "fault"})
    lines = filtered.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 2 and "消防泵故障" in lines[1]


async def test_history_filters_and_json(dash: Running) -> None:
    await setup_admin(dash.client)
    alarms = dash.gateway.alarms
    alarms.raise_alarm("testsite/m1/smoke/fire", zh="火警", en="Fire")
    dash.gateway.clock.advance(60)
    alarms.raise_alarm("testsite/m2/pump/fault", klass="fault", priority="high", zh="故障", en="Fault")
    rows = (await dash.client.get("/api/alarms/history")).json()["rows"]
    assert [r["key"] for r in rows] == ["testsite/m2/pump/fault", "testsite/m1/smoke/fire"]
    by_device = (await dash.client.get("/api/alarms/history", params={"device": "m1"})).json()["rows"]
    assert [r["key"] for r in by_device] == ["testsite/m1/smoke/fire"]
    by_text = (await dash.client.get("/api/alarms/history", params={"text": "故障"})).json()["rows"]
    assert [r["class"] for r in by_text] == ["fault"]
    paged = (await dash.client.get("/api/alarms/history", params={"limit": 1, "offset": 1})).json()["rows"]
    assert [r["key"] for r in paged] == ["testsite/m1/smoke/fire"]


async def test_alarm_list_counts_and_operations(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    headers = {"X-CSRF-Token": csrf}
    alarms = dash.gateway.alarms
    alarms.raise_alarm("testsite/m1/smoke/fire")
    alarms.raise_alarm(
        "testsite/_site/flood", klass="supervisory", priority="low", zh="监管", en="Supervisory"
    )
    body = (await dash.client.get("/api/alarms")).json()
    assert [a["device"] for a in body["alarms"]] == ["m1", None]
    assert body["counts"] == {
        "unacked": 2,
        "active": 2,
        "shelved": 0,
        "by_class": {"fire": 1, "supervisory": 1},
    }
    assert body["flood"] is False
    shelve = {"key": "testsite/_site/flood", "reason": "维修中", "minutes": 30}
    response = await dash.client.post("/api/alarms/shelve", json=shelve, headers=headers)
    assert response.json()["ok"] is True
    assert response.json()["shelved_until"] == dash.gateway.clock.wall() + 1800
    assert (await dash.client.get("/api/alarms")).json()["counts"]["shelved"] == 1
    comment = {"key": "testsite/m1/smoke/fire", "text": "已派人查看"}
    assert (await dash.client.post("/api/alarms/comment", json=comment, headers=headers)).json() == {
        "ok": True
    }
    acked = await dash.client.post("/api/alarms/ack_all", json={"keys": list(alarms.rows)}, headers=headers)
    assert acked.json() == {"acked": 2}
    unknown = await dash.client.post("/api/alarms/ack", json={"key": "nope"}, headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_alarm"
    audit = (await dash.client.get("/api/admin/audit")).json()["rows"]
    assert {"shelve", "comment", "ack_all", "ack"} <= {r["action"] for r in audit}


async def test_stats_and_linkage(dash: Running) -> None:
    csrf = await setup_admin(dash.client)
    dash.gateway.alarms.raise_alarm("testsite/m1/smoke/fire")
    stats = (await dash.client.get("/api/alarms/stats", params={"days": 7})).json()
    assert stats["counters"] == {"raised": 1}
    confirmed = await dash.client.post(
        "/api/linkage/confirm", json={"rule": "r1"}, headers={"X-CSRF-Token": csrf}
    )
    assert confirmed.json() == {"ok": True}
    linkage = (await dash.client.get("/api/linkage")).json()
    assert linkage["rules"][0]["id"] == "r1" and linkage["log"][0]["kind"] == "started"
