"""Central's platform API on both backends: fleet, estates, alarms and their lifecycle, the live
alarm stream, point search, history CSV, gaps, cursor pagination and estate-limited principals."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from cloud_sync.ports import EventRow, TelemetryRow

from .conftest import ESTATE_A_TOKEN, Gateway, RunningCentral

OCTETS = {"Content-Type": "application/octet-stream", "Accept": "application/json"}
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def alarm(kind: str, key: str, to: str, at: float, *, klass: str = "fire", by: str = "system") -> EventRow:
    """An alarm event as the gateway's rules engine writes it (rules/alarm_state.py)."""
    return EventRow(
        f"alarm.{kind}",
        key,
        at,
        {
            "transition": kind,
            "from": "normal",
            "to": to,
            "by": by,
            "at": at,
            "priority": "critical" if klass == "fire" else "low",
            "class": klass,
            "message": {"zh": "火警", "en": f"{klass} alarm {key}"},
            "value": True,
            "point": f"{key}/point",
            "zone": None,
        },
    )


async def post(central: RunningCentral, gw: Gateway, payload: bytes, lane: str) -> None:
    resp = await central.client.post(f"/api/v1/ingest/{gw.id}/{lane}", content=payload, headers=OCTETS)
    assert resp.status_code == 200, resp.text


async def state(central: RunningCentral, gw: str, payload: dict[str, Any]) -> None:
    await asyncio.to_thread(central.service.ingestor.note_state, gw, json.dumps(payload).encode())


async def test_alarm_lifecycle_stats_and_estate_limits(
    central: RunningCentral, gw_a: Gateway, gw_b: Gateway
) -> None:
    await post(
        central,
        gw_a,
        gw_a.events(
            1,
            [
                alarm("raised", "fire.z1", "unacknowledged", NOW),
                alarm("raised", "hvac.t1", "unacknowledged", NOW + 1, klass="hvac"),
                alarm("acked", "fire.z1", "acknowledged", NOW + 10, by="alice"),
            ],
        ),
        "event",
    )
    await post(
        central, gw_b, gw_b.events(1, [alarm("raised", "fire.z9", "unacknowledged", NOW + 86400)]), "event"
    )
    client = central.client
    alarms = (await client.get("/api/v1/alarms")).json()
    assert [(a["gateway_id"], a["alarm_key"], a["state"]) for a in alarms] == [
        ("gw-b", "fire.z9", "active_unacked"),
        ("gw-a", "hvac.t1", "active_unacked"),
        ("gw-a", "fire.z1", "active_acked"),
    ]
    fire = alarms[2]
    assert (fire["estate"], fire["acked_by"], fire["acked_at"], fire["raised_at"]) == (
        "estate-a",
        "alice",
        NOW + 10,
        NOW,
    )
    assert fire["message"] == "fire alarm fire.z1" and fire["priority"] == "critical"

    # Returned to normal, then cleared: the episode closes; a new activation is a new episode.
    await post(
        central,
        gw_a,
        gw_a.events(
            2,
            [
                alarm("cleared", "fire.z1", "normal", NOW + 20),
                alarm("raised", "fire.z1", "unacknowledged", NOW + 30),
            ],
        ),
        "event",
    )
    episodes = (await client.get("/api/v1/alarms", params={"gateway": "gw-a", "class": "fire"})).json()
    assert [(a["state"], a["cleared_at"]) for a in episodes] == [
        ("active_unacked", None),
        ("closed", NOW + 20),
    ]
    active = (await client.get("/api/v1/alarms", params={"active": "true", "estate": "estate-a"})).json()
    assert sorted(a["alarm_key"] for a in active) == ["fire.z1", "hvac.t1"]
    closed = (await client.get("/api/v1/alarms", params={"state": "closed"})).json()
    assert [a["alarm_key"] for a in closed] == ["fire.z1"]
    assert (await client.get("/api/v1/alarms", params={"state": "bogus"})).status_code == 422

    by_class = (await client.get("/api/v1/alarms/stats", params={"by": "class"})).json()
    assert by_class == {"by": "class", "buckets": [{"key": "fire", "count": 3}, {"key": "hvac", "count": 1}]}
    by_estate = (await client.get("/api/v1/alarms/stats", params={"by": "estate"})).json()
    assert by_estate["buckets"] == [{"key": "estate-a", "count": 3}, {"key": "estate-b", "count": 1}]
    by_day = (await client.get("/api/v1/alarms/stats", params={"by": "day", "to": NOW + 3600})).json()
    assert by_day["buckets"] == [{"key": "2026-01-01", "count": 3}]

    # A token limited to estate A sees A only; B's gateway answers 404, not 403.
    limited = {"Authorization": f"Bearer {ESTATE_A_TOKEN}"}
    seen = (await client.get("/api/v1/alarms", headers=limited)).json()
    assert {a["gateway_id"] for a in seen} == {"gw-a"}
    stats = (await client.get("/api/v1/alarms/stats", params={"by": "estate"}, headers=limited)).json()
    assert stats["buckets"] == [{"key": "estate-a", "count": 3}]
    assert (await client.get("/api/v1/gateways/gw-b", headers=limited)).status_code == 404
    assert (await client.get("/api/v1/gateways/gw-a", headers=limited)).status_code == 200
    assert [g["gateway_id"] for g in (await client.get("/api/v1/gateways", headers=limited)).json()] == [
        "gw-a"
    ]
    assert [e["estate"] for e in (await client.get("/api/v1/estates", headers=limited)).json()] == [
        "estate-a"
    ]
    only_b = (await client.get("/api/v1/alarms", params={"estate": "estate-b"}, headers=limited)).json()
    assert only_b == []


async def test_fleet_and_estates(central: RunningCentral, gw_a: Gateway, gw_b: Gateway) -> None:
    await state(
        central,
        "gw-a",
        {
            "state": "online",
            "firmware_version": "1.4.0",
            "config_version": "c7",
            "backlog": {
                "lanes": {"telemetry": {"rows": 120, "batches": 3, "batch_bytes": 4000, "oldest_ts": 1.0}}
            },
        },
    )
    await post(central, gw_a, gw_a.events(1, [alarm("raised", "fire.z1", "unacknowledged", NOW)]), "event")
    await post(central, gw_a, gw_a.telemetry(1, [TelemetryRow("a/p", 1.0, 0, "", NOW, None)]), "telemetry")
    fleet = (await central.client.get("/api/v1/fleet")).json()
    assert [f["gateway_id"] for f in fleet] == ["gw-a", "gw-b"]
    a, b = fleet
    assert (a["estate"], a["online"], a["firmware_version"], a["config_version"]) == (
        "estate-a",
        True,
        "1.4.0",
        "c7",
    )
    assert a["backlog"] == {"telemetry": {"rows": 120, "batches": 3, "batch_bytes": 4000}}
    assert a["oldest_unacked_age_s"] > 1e9 and a["last_batch_at"] is not None
    assert a["active_alarms"] == {"fire": 1}
    assert (b["online"], b["last_seen"], b["active_alarms"]) == (
        False,
        None,
        {},
    )  # enrolled, never heard from
    estates = (await central.client.get("/api/v1/estates")).json()
    assert estates == [
        {"estate": "estate-a", "gateways": 1, "online": 1, "offline": 0, "active_alarms": {"fire": 1}},
        {"estate": "estate-b", "gateways": 1, "online": 0, "offline": 1, "active_alarms": {}},
    ]
    # Cursor pagination: one gateway per page, the next cursor in a header, none on the last page.
    first = await central.client.get("/api/v1/fleet", params={"limit": 1})
    assert [f["gateway_id"] for f in first.json()] == ["gw-a"]
    second = await central.client.get(
        "/api/v1/fleet", params={"limit": 1, "cursor": first.headers["x-next-cursor"]}
    )
    assert [f["gateway_id"] for f in second.json()] == ["gw-b"] and "x-next-cursor" not in second.headers
    assert (await central.client.get("/api/v1/fleet", params={"cursor": "!!"})).status_code == 422


async def test_point_search_history_csv_gaps_and_paging(
    central: RunningCentral, gw_a: Gateway, gw_b: Gateway
) -> None:
    rows_a = [TelemetryRow(f"tower-a/meter{i}/kw", float(i), 0, "", NOW + i, None) for i in range(5)]
    rows_a.append(TelemetryRow("tower-a/note", '=HYPERLINK("x")', 0, "", NOW + 7, None))
    await post(central, gw_a, gw_a.telemetry(1, rows_a), "telemetry")
    await post(
        central,
        gw_b,
        gw_b.telemetry(1, [TelemetryRow("tower-b/meter1/kw", 9.0, 0, "", NOW, None)]),
        "telemetry",
    )
    client = central.client
    found = (await client.get("/api/v1/points", params={"q": "METER1"})).json()
    assert [(p["point_id"], p["estate"]) for p in found] == [
        ("tower-a/meter1/kw", "estate-a"),
        ("tower-b/meter1/kw", "estate-b"),
    ]
    pages: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, "estate": "estate-a"}
        if cursor:
            params["cursor"] = cursor
        resp = await client.get("/api/v1/points", params=params)
        pages += [p["point_id"] for p in resp.json()]
        cursor = resp.headers.get("x-next-cursor")
        if cursor is None:
            break
    assert pages == sorted(r.point_id for r in rows_a)

    csv_resp = await client.get(
        "/api/v1/points/tower-a/note/history", params={"from": NOW, "to": NOW + 60, "format": "csv"}
    )
    assert csv_resp.headers["content-type"].startswith("text/csv")
    lines = csv_resp.text.splitlines()
    assert lines[0] == "ts,source_ts,value,quality,reason,historical"
    assert "'=HYPERLINK" in lines[1]  # a formula is quoted, never run by a spreadsheet
    buckets = await client.get(
        "/api/v1/points/tower-a/meter3/kw/history",
        params={"from": NOW, "to": NOW + 60, "step": 30, "format": "csv"},
    )
    assert buckets.text.splitlines()[1].split(",") == [str(NOW), "1", "3.0", "3.0", "3.0", "3.0"]

    limited = {"Authorization": f"Bearer {ESTATE_A_TOKEN}"}
    hidden = await client.get(
        "/api/v1/points/tower-b/meter1/kw/history", params={"from": NOW, "to": NOW + 60}, headers=limited
    )
    assert hidden.status_code == 404
    assert [
        p["point_id"]
        for p in (await client.get("/api/v1/points", params={"q": "meter1"}, headers=limited)).json()
    ] == ["tower-a/meter1/kw"]

    gap = EventRow("outbox.gap", "outbox", NOW, {"seq_from": 2, "seq_to": 3, "reason": "quota"})
    await post(central, gw_a, gw_a.events(1, [gap]), "event")
    gaps = (await client.get("/api/v1/audit/gaps", params={"gateway": "gw-a"})).json()
    assert [(g["kind"], g["data"]["seq_from"], g["data"]["seq_to"]) for g in gaps] == [("outbox.gap", 2, 3)]
    assert (await client.get("/api/v1/audit/gaps", params={"gateway": "gw-b"})).json() == []


async def test_alarm_stream_sends_every_change(central: RunningCentral, gw_a: Gateway, gw_b: Gateway) -> None:
    received: list[dict[str, Any]] = []
    opened = asyncio.Event()

    async def listen() -> None:
        async with central.client.stream(
            "GET", "/api/v1/alarms/stream", headers={"Authorization": f"Bearer {ESTATE_A_TOKEN}"}
        ) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            event = None
            async for line in resp.aiter_lines():
                opened.set()
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "alarm":
                    received.append(json.loads(line.removeprefix("data: ")))
                    if len(received) == 2:
                        return

    task = asyncio.create_task(listen())
    waiter = asyncio.create_task(opened.wait())
    await asyncio.wait([task, waiter], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # the stream failed: say why
    assert opened.is_set(), "the stream did not open"
    await post(central, gw_b, gw_b.events(1, [alarm("raised", "fire.b", "unacknowledged", NOW)]), "event")
    await post(central, gw_a, gw_a.events(1, [alarm("raised", "fire.a", "unacknowledged", NOW)]), "event")
    await post(
        central, gw_a, gw_a.events(2, [alarm("acked", "fire.a", "acknowledged", NOW + 5, by="bob")]), "event"
    )
    await asyncio.wait_for(task, 30)
    # Estate B's alarm never reaches a principal limited to estate A.
    assert [(a["alarm_key"], a["state"]) for a in received] == [
        ("fire.a", "active_unacked"),
        ("fire.a", "active_acked"),
    ]


async def test_openapi_lists_the_platform_routes(central: RunningCentral) -> None:
    spec = (await central.client.get("/openapi.json", headers={"Authorization": ""})).json()
    for path in (
        "/api/v1/fleet",
        "/api/v1/estates",
        "/api/v1/alarms",
        "/api/v1/alarms/stats",
        "/api/v1/alarms/stream",
        "/api/v1/audit/gaps",
    ):
        assert path in spec["paths"], path
    assert spec["components"]["schemas"]["FleetEntry"]["examples"]


async def test_no_token_no_data(central: RunningCentral) -> None:
    anon = httpx.Headers({"Authorization": ""})
    for path in (
        "/api/v1/fleet",
        "/api/v1/estates",
        "/api/v1/alarms",
        "/api/v1/alarms/stats",
        "/api/v1/audit/gaps",
    ):
        assert (await central.client.get(path, headers=anon)).status_code == 401, path
