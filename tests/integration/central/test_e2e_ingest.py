"""Encrypted batches into a real central over HTTPS, on SQLite and on PostgreSQL (docs/protocol.md §2.7).

Without ``e2e_key`` central rejects an encrypted batch as ``undecryptable``, stores nothing and
acks nothing; the same bytes, once central is started with its key, store exactly what was sealed.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud_sync.central.app import CentralService
from cloud_sync.central.config import CentralConfig
from cloud_sync.downlink import verify_ack
from cloud_sync.e2e import SUITE_SM4
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import key_id, save_x25519_private
from cloud_sync.ports import EventRow, Lane, TelemetryRow
from tests.integration.sync.helpers import CENTRAL_KEY

from .conftest import TOKEN, Gateway, central_config

CENTRAL_E2E = X25519PrivateKey.from_private_bytes(bytes(range(0x40, 0x60)))
CENTRAL_KEYS = {key_id(CENTRAL_KEY.public_key()): CENTRAL_KEY.public_key()}
OCTETS = {"Content-Type": "application/octet-stream"}
T0 = 1_767_225_600.0
# Values a round trip through float32, text normalisation or a JSON number would change.
VALUES = [73519.62500000001, "zone-7 door code 4711", -(2**53) - 7]
ROWS = [TelemetryRow(f"s1/panel/v{i}", v, 0, "", T0 + i, T0 + i - 0.25) for i, v in enumerate(VALUES)]
EVENTS = [EventRow("alarm.raised", "s1/panel/zone7", T0, {"zone": 7, "text": "intrusion, zone 7"})]


def _client(config: CentralConfig, service: CentralService) -> httpx.AsyncClient:
    assert config.api.tls is not None
    ctx = ssl.create_default_context(cafile=str(config.api.tls.cert_file))
    return httpx.AsyncClient(
        base_url=f"https://127.0.0.1:{service.api_port}",
        verify=ctx,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30.0,
    )


async def test_undecryptable_is_rejected_then_stored_exactly_once_central_has_its_key(
    tmp_path: Path, gw_a: Gateway, database: str | None
) -> None:
    seal = make_sealer("gw-a", key_id(gw_a.key.public_key()), gw_a.key, encrypt_to=CENTRAL_E2E.public_key())
    sm4 = make_sealer(
        "gw-a", key_id(gw_a.key.public_key()), gw_a.key, encrypt_to=CENTRAL_E2E.public_key(), suite=SUITE_SM4
    )
    telemetry = seal(lane=Lane.TELEMETRY, seq=1, rows=ROWS, historical=False, sealed_at=T0 + 10)
    events = sm4(lane=Lane.EVENT, seq=1, rows=EVENTS, historical=True, sealed_at=T0 + 10)
    config = central_config(tmp_path, [gw_a], database=database)

    async with CentralService(config) as service, _client(config, service) as client:
        resp = await client.post("/api/v1/ingest/gw-a/telemetry", content=telemetry, headers=OCTETS)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == "undecryptable"
        assert "no decryption key" in resp.json()["detail"]
        assert {t: service.store.count(t) for t in ("batches", "telemetry")} == {"batches": 0, "telemetry": 0}
        audit = (await client.get("/api/v1/audit/rejected", params={"reason": "undecryptable"})).json()
        assert audit["counts"] == {"undecryptable": 1}

    key_path = tmp_path / "central-e2e.key"
    save_x25519_private(CENTRAL_E2E, key_path)
    keyed = config.model_copy(update={"e2e_key": key_path})
    async with CentralService(keyed) as service, _client(keyed, service) as client:
        for lane, payload in (("telemetry", telemetry), ("event", events)):
            resp = await client.post(f"/api/v1/ingest/gw-a/{lane}", content=payload, headers=OCTETS)
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-gatehouse-ingest"] == "stored"
            ack = verify_ack(resp.content, keys=CENTRAL_KEYS, gateway_id="gw-a").ack
            assert (ack.lane.value, ack.acked) == (lane, 1)
        for i, value in enumerate(VALUES):
            history = await client.get(
                f"/api/v1/points/s1/panel/v{i}/history", params={"from": T0 - 1, "to": T0 + 10}
            )
            assert history.status_code == 200, history.text
            [sample] = history.json()["samples"]
            assert sample["value"] == value and type(sample["value"]) is type(value)
            assert sample["source_ts"] == T0 + i - 0.25
        # The event batch used the other suite: one central key opens both, the header names the suite.
        stored_events = service.store.events(gateways=None, limit=10)
        assert [(e["kind"], e["data"]) for e in stored_events] == [("alarm.raised", EVENTS[0].data)]
