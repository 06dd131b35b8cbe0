"""Central's API under abuse, over real HTTPS: body limits before parsing, finite times, token scopes."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from cloud_sync.central.app import CentralService
from cloud_sync.central.config import ApiToken
from cloud_sync.ports import Lane, TelemetryRow

from .conftest import TOKEN, Gateway, RunningCentral, central_config

OCTETS = {"Content-Type": "application/octet-stream"}
NINE_MIB = 9 * 1024 * 1024


async def test_a_multi_megabyte_post_is_refused_before_auth_and_parsing(central: RunningCentral) -> None:
    """Before the body limit came first, the unauthenticated post got 401 only after the auth
    check, and a large body to any other route was not limited at all."""
    anon = {**OCTETS, "Authorization": ""}
    resp = await central.client.post(
        "/api/v1/ingest/gw-a/telemetry", content=b"\x00" * NINE_MIB, headers=anon
    )
    assert resp.status_code == 413
    # Every other route: 64 KiB by default, whatever the method.
    resp = await central.client.post("/api/v1/gateways", content=b"\x00" * (1024 * 1024), headers=OCTETS)
    assert resp.status_code == 413
    resp = await central.client.post("/api/v1/gateways", content=b"\x00" * 100, headers=OCTETS)
    assert resp.status_code == 405  # small bodies reach routing as before


async def test_a_streamed_body_is_cut_off_at_the_limit(central: RunningCentral) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"\x00" * (1024 * 1024)

    resp = await central.client.post("/api/v1/ingest/gw-a/telemetry", content=chunks(), headers=OCTETS)
    assert resp.status_code == 413
    assert central.service.store.count("batches") == 0


async def test_times_must_be_finite(central: RunningCentral) -> None:
    """nan compared false with everything, so `to <= from` let it through (200, empty)."""
    path = "/api/v1/points/s1%2Fm%2Fp/history"
    for params in (
        {"from": "nan", "to": "10"},
        {"from": "0", "to": "inf"},
        {"from": "0", "to": "10", "step": "inf"},
    ):
        assert (await central.client.get(path, params=params)).status_code == 422, params
    assert (await central.client.get("/api/v1/events", params={"from": "-inf"})).status_code == 422
    assert (await central.client.get(path, params={"from": "0", "to": "10"})).status_code == 200


async def test_token_scopes(tmp_path: Path, gw_a: Gateway, gw_b: Gateway) -> None:
    base = central_config(tmp_path, [gw_a, gw_b])
    tokens = [
        ApiToken(name="dash", token="read-token", scopes=("read",)),
        ApiToken(name="gw-a-https", token="ingest-token", scopes=("ingest",), gateways=("gw-a",)),
        ApiToken(name="ops", token="admin-token", scopes=("admin",)),
        ApiToken(name="legacy", token=TOKEN),  # no scopes given: everything, as before scopes
    ]
    config = base.model_copy(update={"api": base.api.model_copy(update={"tokens": tokens})})
    assert config.api.tls is not None
    ctx = ssl.create_default_context(cafile=str(config.api.tls.cert_file))
    rows = [TelemetryRow("s1/m/p", 1.0, 0, "", 100.0, None)]
    async with (
        CentralService(config) as service,
        httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{service.api_port}", verify=ctx, timeout=30.0
        ) as client,
    ):

        async def status(token: str, method: str, path: str, body: bytes | None = None) -> int:
            headers = {"Authorization": f"Bearer {token}", **OCTETS}
            return (await client.request(method, path, content=body, headers=headers)).status_code

        batch_a, batch_b = gw_a.telemetry(1, rows), gw_b.telemetry(1, rows)
        assert await status("read-token", "GET", "/api/v1/points") == 200
        assert await status("read-token", "GET", "/api/v1/audit/rejected") == 403
        assert await status("read-token", "POST", "/api/v1/ingest/gw-a/telemetry", batch_a) == 403
        assert await status("ingest-token", "POST", "/api/v1/ingest/gw-a/telemetry", batch_a) == 200
        assert await status("ingest-token", "POST", "/api/v1/ingest/gw-b/telemetry", batch_b) == 403
        assert await status("ingest-token", "GET", "/api/v1/points") == 403
        assert await status("admin-token", "GET", "/api/v1/audit/rejected") == 200
        assert await status("admin-token", "GET", "/api/v1/points") == 403
        for path in ("/api/v1/points", "/api/v1/audit/rejected"):
            assert await status(TOKEN, "GET", path) == 200
        assert await status(TOKEN, "POST", "/api/v1/ingest/gw-b/telemetry", batch_b) == 200
        assert service.store.ack_position("gw-a", Lane.TELEMETRY)[0] == 1
