"""Central's REST API over real HTTPS (uvicorn, self-signed certificate): auth, ingest, reads."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.central.app import CentralService
from cloud_sync.downlink import verify_ack
from cloud_sync.envelope import make_sealer
from cloud_sync.errors import ServiceStartError
from cloud_sync.keys import key_id
from cloud_sync.ports import EventRow, Lane, TelemetryRow
from tests.integration.sync.helpers import CENTRAL_KEY

from .conftest import Gateway, RunningCentral, central_config

OCTETS = {"Content-Type": "application/octet-stream"}
CENTRAL_KEYS = {key_id(CENTRAL_KEY.public_key()): CENTRAL_KEY.public_key()}


def rows(t0: float, n: int = 3, point: str = "s1/meter/p") -> list[TelemetryRow]:
    return [TelemetryRow(f"{point}{i % 3}", float(i), 0, "", t0 + i, None) for i in range(n)]


async def post(central: RunningCentral, gw: str, lane: str, payload: bytes, **headers: str) -> httpx.Response:
    return await central.client.post(
        f"/api/v1/ingest/{gw}/{lane}", content=payload, headers={**OCTETS, **headers}
    )


async def counts(central: RunningCentral) -> dict[str, int]:
    store = central.service.store
    return {t: store.count(t) for t in ("batches", "telemetry", "events", "latest")}


async def test_token_is_required_but_openapi_is_public(central: RunningCentral) -> None:
    anon = {"Authorization": ""}
    for path in ("/api/v1/gateways", "/api/v1/points", "/api/v1/events", "/api/v1/audit/rejected"):
        assert (await central.client.get(path, headers=anon)).status_code == 401
        bad = await central.client.get(path, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        assert (await central.client.get(path)).status_code == 200
    denied = await central.client.post("/api/v1/ingest/gw-a/telemetry", content=b"x", headers=anon)
    assert denied.status_code == 401
    spec = (await central.client.get("/openapi.json", headers=anon)).json()
    assert "/api/v1/points/{point_id}/history" in spec["paths"]
    assert "/api/v1/ingest/{gateway_id}/{lane}" in spec["paths"]
    assert (await central.client.get("/docs", headers=anon)).status_code == 200


async def test_https_ingest_acks_and_dedupes(central: RunningCentral, gw_a: Gateway) -> None:
    first = gw_a.telemetry(1, rows(100.0))
    resp = await post(central, "gw-a", "telemetry", first)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/msgpack"
    assert resp.headers["x-gatehouse-ingest"] == "stored"
    # The msgpack answer is central's signed ack, for this gateway, verifiable with the pinned key.
    ack = verify_ack(resp.content, keys=CENTRAL_KEYS, gateway_id="gw-a").ack
    assert (ack.lane, ack.acked, ack.missing) == (Lane.TELEMETRY, 1, ())

    # Out of order: 3 arrives before 2, so central asks for 2.
    resp = await post(central, "gw-a", "telemetry", gw_a.telemetry(3, rows(300.0)), Accept="application/json")
    assert resp.json()["acked"] == 1 and resp.json()["missing"] == [[2, 2]]
    resp = await post(central, "gw-a", "telemetry", gw_a.telemetry(2, rows(200.0)), Accept="application/json")
    assert resp.json()["acked"] == 3 and resp.json()["missing"] == []

    before = await counts(central)
    again = await post(central, "gw-a", "telemetry", first)
    assert again.status_code == 200 and again.headers["x-gatehouse-ingest"] == "duplicate"
    assert verify_ack(again.content, keys=CENTRAL_KEYS, gateway_id="gw-a").ack.acked == 3
    assert await counts(central) == before == {"batches": 3, "telemetry": 9, "events": 0, "latest": 3}


async def test_bad_batches_are_rejected_audited_and_never_stored(
    central: RunningCentral, gw_a: Gateway, gw_b: Gateway
) -> None:
    good = gw_a.telemetry(1, rows(100.0))
    stranger = Ed25519PrivateKey.generate()
    # Forged: right gateway id, claims gw-a's key id, signed by another key.
    forged_same_kid = make_sealer("gw-a", key_id(gw_a.key.public_key()), stranger)
    # Forged: signed by a key that is not enrolled at all.
    forged_unknown = make_sealer("gw-a", key_id(stranger.public_key()), stranger)
    tampered = bytearray(good)
    tampered[-80] ^= 0x01  # inside the signed bytes
    cases = [
        (
            "gw-a",
            "telemetry",
            forged_same_kid(lane=Lane.TELEMETRY, seq=1, rows=rows(1.0), historical=False, sealed_at=1.0),
            403,
            "bad_signature",
        ),
        (
            "gw-a",
            "telemetry",
            forged_unknown(lane=Lane.TELEMETRY, seq=1, rows=rows(1.0), historical=False, sealed_at=1.0),
            403,
            "unknown_key",
        ),
        ("gw-a", "telemetry", bytes(tampered), 403, "bad_signature"),
        ("gw-a", "telemetry", good[: len(good) // 2], 400, "malformed"),
        ("gw-a", "telemetry", b"", 400, "malformed"),
        # Replayed: gw-a's genuine batch presented as gw-b's, or on the wrong lane.
        ("gw-b", "telemetry", good, 403, "gateway_mismatch"),
        ("gw-a", "event", good, 400, "lane_mismatch"),
        ("gw-z", "telemetry", gw_b.telemetry(1, rows(1.0)), 403, "unknown_gateway"),
    ]
    for gw, lane, payload, status, reason in cases:
        resp = await post(central, gw, lane, payload)
        assert resp.status_code == status, (reason, resp.text)
        assert resp.json()["error"] == reason
    assert await counts(central) == {"batches": 0, "telemetry": 0, "events": 0, "latest": 0}

    audit = (await central.client.get("/api/v1/audit/rejected", params={"limit": 100})).json()
    assert audit["counts"] == {
        "bad_signature": 2,
        "unknown_key": 1,
        "malformed": 2,
        "gateway_mismatch": 1,
        "lane_mismatch": 1,
        "unknown_gateway": 1,
    }
    assert {item["transport"] for item in audit["items"]} == {"https"}
    assert central.service.ingestor.counters["rejected"] == len(cases)

    # The genuine batch still goes in afterwards, and its replay stores nothing more.
    assert (await post(central, "gw-a", "telemetry", good)).status_code == 200
    replay = await post(central, "gw-a", "telemetry", good)
    assert replay.headers["x-gatehouse-ingest"] == "duplicate"
    assert (await counts(central))["telemetry"] == 3
    dup = (await central.client.get("/api/v1/audit/rejected", params={"reason": "duplicate"})).json()
    assert len(dup["items"]) == 1 and dup["items"][0]["seq"] == 1


async def test_oversize_body_is_refused(central: RunningCentral) -> None:
    resp = await post(central, "gw-a", "telemetry", b"\x00" * (8 * 1024 * 1024 + 1))
    assert resp.status_code == 413
    assert await counts(central) == {"batches": 0, "telemetry": 0, "events": 0, "latest": 0}


async def test_points_history_events_and_gateways(central: RunningCentral, gw_a: Gateway) -> None:
    series = [
        TelemetryRow("s1/tank/level", float(v), 0, "", 1000.0 + i * 10, None) for i, v in enumerate(range(12))
    ]
    series.append(TelemetryRow("s1/tank/level", None, 2, "comm_failure", 1125.0, None))
    series.append(TelemetryRow("s1/pump/run", True, 0, "", 1000.0, 999.5))
    assert (
        await post(central, "gw-a", "telemetry", gw_a.telemetry(1, series, historical=True))
    ).status_code == 200
    alarm = EventRow("alarm.raised", "s1/tank/level", 1050.0, {"priority": "high", "limit": 2.5})
    gap = EventRow("outbox.gap", "outbox", 1060.0, {"from": 1000.0, "to": 1010.0, "rows": 4})
    assert (await post(central, "gw-a", "event", gw_a.events(1, [alarm, gap]))).status_code == 200

    latest = (await central.client.get("/api/v1/points", params={"prefix": "s1/tank/"})).json()
    assert [(p["point_id"], p["value"], p["quality"], p["reason"]) for p in latest] == [
        ("s1/tank/level", None, 2, "comm_failure")
    ]
    both = (await central.client.get("/api/v1/points", params={"gateway": "gw-a"})).json()
    assert [(p["point_id"], p["value"], p["source_ts"]) for p in both] == [
        ("s1/pump/run", True, 999.5),
        ("s1/tank/level", None, None),
    ]

    raw = (
        await central.client.get("/api/v1/points/s1/tank/level/history", params={"from": 1000, "to": 1030})
    ).json()
    assert [s["value"] for s in raw["samples"]] == [0.0, 1.0, 2.0]
    assert all(s["historical"] for s in raw["samples"])

    down = (
        await central.client.get(
            "/api/v1/points/s1/tank/level/history", params={"from": 1000, "to": 1200, "step": 40}
        )
    ).json()
    buckets = [(b["ts"], b["count"], b["avg"], b["min"], b["max"], b["last"]) for b in down["buckets"]]
    assert buckets == [
        (1000.0, 4, 1.5, 0.0, 3.0, 3.0),
        (1040.0, 4, 5.5, 4.0, 7.0, 7.0),
        (1080.0, 4, 9.5, 8.0, 11.0, 11.0),
        (1120.0, 1, None, None, None, None),  # only a bad-quality record: counted, not averaged
    ]
    bad = await central.client.get("/api/v1/points/s1/tank/level/history", params={"from": 10, "to": 5})
    assert bad.status_code == 422

    events = (await central.client.get("/api/v1/events", params={"kind": "alarm.raised"})).json()
    assert [(e["source"], e["data"]) for e in events] == [
        ("s1/tank/level", {"priority": "high", "limit": 2.5})
    ]
    window = (await central.client.get("/api/v1/events", params={"from": 1055, "to": 2000})).json()
    assert [e["kind"] for e in window] == ["outbox.gap"]

    gws = (await central.client.get("/api/v1/gateways")).json()
    assert [(g["gateway_id"], g["last_seen"] is None) for g in gws] == [("gw-a", False), ("gw-b", True)]
    never = (await central.client.get("/api/v1/gateways/gw-b")).json()
    assert never["state"] == "unknown" and never["lanes"]["telemetry"]["acked"] == 0
    one = (await central.client.get("/api/v1/gateways/gw-a")).json()
    assert one["lanes"]["telemetry"]["acked"] == 1 and one["lanes"]["event"]["highest"] == 1
    assert one["enrolled"] is True and one["online"] is False
    assert (await central.client.get("/api/v1/gateways/gw-q")).status_code == 404


@pytest.mark.parametrize("lane", ["bulk", "telemetry/x"])
async def test_unknown_lane_in_url(central: RunningCentral, gw_a: Gateway, lane: str) -> None:
    resp = await post(central, "gw-a", lane, gw_a.telemetry(1, rows(1.0)))
    assert resp.status_code == 404
    assert (await counts(central))["batches"] == 0


async def test_a_taken_port_or_bad_tls_file_is_a_clear_start_error(tmp_path: Path, gw_a: Gateway) -> None:
    config = central_config(tmp_path, [gw_a])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = config.model_copy(
            update={"api": config.api.model_copy(update={"port": taken.getsockname()[1]})}
        )
        with pytest.raises(ServiceStartError, match="cannot listen"):
            async with CentralService(busy):
                pass
    assert config.api.tls is not None
    config.api.tls.key_file.write_text("not a key")
    with pytest.raises(ServiceStartError, match="TLS"):
        async with CentralService(config):
            pass
