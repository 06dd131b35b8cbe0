"""Token → enrolment → broker login; refusals; revocation; renewal. Real central, real Mosquitto.

The gateway side is the real client code of ``gatehouse enroll`` (edge.identity: keys, request,
the checks on central's answer), so both ends of the wire contract meet here.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.central.trust.protocol import token_digest
from cloud_sync.central.trust.store import TokenRow, audit_row
from cloud_sync.downlink import verify_command
from cloud_sync.e2e import keys_by_id
from cloud_sync.envelope import make_sealer
from cloud_sync.errors import EnvelopeError
from cloud_sync.keys import key_id, parse_public_key
from cloud_sync.ports import Lane, TelemetryRow
from edge.identity.material import KeySet, new_keys, private_pem
from edge.identity.protocol import Grant, enroll_request, parse_grant, renew_request
from tests.support import wait_until

from .conftest import READER, MqttGateway, TrustCentral

_ROWS = [TelemetryRow("s/m/p1", 1.5, 0, "", 1000.0, None)]


async def issue(central: TrustCentral, gateway_id: str, **extra: Any) -> str:
    r = await central.client.post("/api/v1/enrollment-tokens", json={"gateway_id": gateway_id, **extra})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["enroll_command"].endswith(f" {body['token']}")
    assert body["enroll_command"].startswith("gatehouse enroll https://")
    token: str = body["token"]
    return token


async def enrol(central: TrustCentral, gateway_id: str, **extra: Any) -> tuple[KeySet, Grant]:
    token = await issue(central, gateway_id, **extra)
    keys = new_keys()
    r = await central.anonymous.post("/api/v1/enroll", json=enroll_request(token, keys))
    assert r.status_code == 200, r.text
    return keys, parse_grant(r.json(), keys)


def batch(gateway_id: str, key: Ed25519PrivateKey, kid: str, seq: int) -> bytes:
    seal = make_sealer(gateway_id, kid, key)
    return seal(lane=Lane.TELEMETRY, seq=seq, rows=_ROWS, historical=False, sealed_at=1000.0 + seq)


async def post_batch(central: TrustCentral, gateway_id: str, payload: bytes) -> httpx.Response:
    return await central.client.post(
        f"/api/v1/ingest/{gateway_id}/telemetry",
        content=payload,
        headers={"Content-Type": "application/octet-stream", "Accept": "application/json"},
    )


def gateway_client(central: TrustCentral, tmp: Path, keys: KeySet, grant: Grant, name: str) -> MqttGateway:
    return MqttGateway(
        central.broker,
        tmp / name,
        grant.gateway_id,
        cert=grant.client_cert,
        key=private_pem(keys.tls_key),
        ca=grant.ca_cert,
        password=grant.password,
    )


async def login(central: TrustCentral, tmp: Path, keys: KeySet, grant: Grant, name: str) -> str:
    """``ok``, ``refused`` (CONNACK failure or dropped) or ``tls`` (handshake refused)."""
    gw = gateway_client(central, tmp, keys, grant, name)
    try:
        try:
            await asyncio.to_thread(gw.connect)
        except (OSError, ssl.SSLError):
            return "tls"
        await wait_until(lambda: gw.connack is not None or gw.disconnected, message=f"{name} CONNACK")
        return "ok" if gw.connack is not None and not gw.connack.is_failure else "refused"
    finally:
        gw.close()


async def test_token_enrols_a_gateway_that_logs_in_and_publishes(
    central: TrustCentral, tmp_path: Path
) -> None:
    keys, grant = await enrol(central, "gw-new", estate="estate-n", name="North gate")
    assert (grant.gateway_id, grant.estate, grant.name, grant.username) == (
        "gw-new",
        "estate-n",
        "North gate",
        "gw-new",
    )
    assert grant.password is not None and grant.broker_port == central.broker.port
    cert = x509.load_pem_x509_certificate(grant.client_cert.encode())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "gw-new"
    assert grant.renew_after < grant.not_after

    gw = gateway_client(central, tmp_path, keys, grant, "first")
    await asyncio.to_thread(gw.connect)
    try:
        await wait_until(lambda: gw.connack is not None, message="gateway CONNACK")
        assert gw.connack is not None and not gw.connack.is_failure, gw.connack
        before = central.service.ingestor.counters["stored"]
        mid = gw.publish("gh/v1/gw-new/up/telemetry", batch("gw-new", keys.signing_key, keys.kid, 1))
        await wait_until(lambda: mid in gw.published, message="PUBACK")
        assert not gw.published[mid].is_failure
        await wait_until(
            lambda: central.service.ingestor.counters["stored"] > before, message="central stored the batch"
        )
    finally:
        gw.close()

    # The API sees the estate and name the token carried.
    info = await central.client.get("/api/v1/gateways/gw-new")
    assert info.status_code == 200, info.text
    assert (info.json()["estate"], info.json()["name"]) == ("estate-n", "North gate")

    # The same token again, an expired one, an unknown one: refused and audited with the source.
    again = await central.anonymous.post("/api/v1/enroll", json=enroll_request("x", new_keys()))
    assert again.status_code == 403 and again.json() == {"error": "token_refused", "reason": "unknown"}
    token = await issue(central, "gw-twice")
    first = await central.anonymous.post("/api/v1/enroll", json=enroll_request(token, new_keys()))
    assert first.status_code == 200
    used = await central.anonymous.post("/api/v1/enroll", json=enroll_request(token, new_keys()))
    assert used.status_code == 403 and used.json() == {"error": "token_refused", "reason": "used"}
    store = central.service.trust.store if central.service.trust else None
    assert store is not None
    now = time.time()
    store.add_token(
        TokenRow(token_digest("ght_old"), "gw-late", None, None, now - 7200, "test", now - 3600, None, None),
        audit=audit_row(now, "token.issued", gateway_id="gw-late", actor="test"),
    )
    expired = await central.anonymous.post("/api/v1/enroll", json=enroll_request("ght_old", new_keys()))
    assert expired.status_code == 403 and expired.json() == {"error": "token_refused", "reason": "expired"}
    audit = (await central.client.get("/api/v1/trust/audit")).json()
    refused = {(e["reason"], e["gateway_id"], e["source"]) for e in audit if e["event"] == "token.refused"}
    assert {("used", "gw-twice", "127.0.0.1"), ("expired", "gw-late", "127.0.0.1")} <= refused
    assert ("unknown", None, "127.0.0.1") in refused

    tokens = (await central.client.get("/api/v1/enrollment-tokens")).json()
    states = {t["gateway_id"]: t["state"] for t in tokens}
    assert states["gw-new"] == "used" and states["gw-late"] == "expired"
    assert all("token" not in t and "digest" not in t for t in tokens)

    # A CSR that does not parse is 400, and so is a body missing a field.
    bad = enroll_request(await issue(central, "gw-bad"), new_keys()) | {"csr": "not a csr"}
    assert (await central.anonymous.post("/api/v1/enroll", json=bad)).status_code == 400
    assert (await central.anonymous.post("/api/v1/enroll", json={"token": "x"})).status_code == 400


async def test_revocation_rejects_batches_and_cuts_broker_access(
    central: TrustCentral, tmp_path: Path
) -> None:
    keys, grant = await enrol(central, "gw-r")
    connected = gateway_client(central, tmp_path, keys, grant, "session")
    await asyncio.to_thread(connected.connect)
    try:
        await wait_until(lambda: connected.connack is not None, message="gateway CONNACK")
        assert connected.connack is not None and not connected.connack.is_failure
        connected.subscribe("gh/v1/gw-r/cmd")
        await wait_until(lambda: connected.subscribed, message="gateway SUBACK")

        r = await central.client.post("/api/v1/gateways/gw-r/revoke", json={"reason": "stolen"})
        assert r.status_code == 200, r.text
        assert r.json()["broker_reloaded"] is True

        # Before its access was cut, the gateway was told, signed by central and encrypted to it.
        await wait_until(lambda: connected.messages, message="the gateway.revoked notice")
        topic, payload = connected.messages[0]
        assert topic == "gh/v1/gw-r/cmd" and b"stolen" not in payload
        central_key = parse_public_key(grant.central_signing_key)
        with pytest.raises(EnvelopeError, match="undecryptable|key"):
            verify_command(payload, keys={key_id(central_key): central_key}, gateway_id="gw-r")
        notice = verify_command(
            payload,
            keys={key_id(central_key): central_key},
            gateway_id="gw-r",
            e2e_keys=keys_by_id(keys.e2e_key),
        ).command
        assert (notice.action, dict(notice.args)) == ("gateway.revoked", {"reason": "stolen"})

        # Central: its next batch is rejected as revoked and audited, never acknowledged.
        rejected = await post_batch(central, "gw-r", batch("gw-r", keys.signing_key, keys.kid, 1))
        assert rejected.status_code == 403 and rejected.json()["error"] == "revoked"
        audit = (await central.client.get("/api/v1/audit/rejected", params={"reason": "revoked"})).json()
        assert [i["gateway_id"] for i in audit["items"]] == ["gw-r"]

        # Broker: a new login is refused once Mosquitto has reloaded the files.
        async def refused() -> bool:
            return await login(central, tmp_path, keys, grant, "again") != "ok"

        # tests.support.wait_until's signature cannot type an async predicate (mypy infers Never).
        await wait_until(refused, message="broker refuses the revoked gateway")  # type: ignore[arg-type]
        # The session that was open: dropped by the reload, or its publish is not authorised.
        mid = connected.publish("gh/v1/gw-r/up/telemetry", batch("gw-r", keys.signing_key, keys.kid, 2))
        await wait_until(
            lambda: connected.disconnected or mid in connected.published, message="publish outcome"
        )
        assert connected.disconnected or connected.published[mid].is_failure
    finally:
        connected.close()

    acl = central.broker.files.acl.read_text()
    assert "user gw-r" not in acl and "user central" in acl and "%u" not in acl
    assert "gw-r:" not in central.broker.layout.password_file.read_text()
    crl = x509.load_pem_x509_crl((central.broker.workdir / "broker.crl").read_bytes())
    serial = x509.load_pem_x509_certificate(grant.client_cert.encode()).serial_number
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None

    listed = {g["id"]: g for g in (await central.client.get("/api/v1/trust/gateways")).json()}
    assert listed["gw-r"]["status"] == "revoked" and listed["gw-r"]["revoked_reason"] == "stolen"
    again = await central.client.post("/api/v1/gateways/gw-r/revoke", json={"reason": "twice"})
    assert again.status_code == 409
    renew = renew_request(
        gateway_id="gw-r", current_key=keys.signing_key, kid=keys.kid, at=time.time(), keys=new_keys()
    )
    refusal = await central.anonymous.post("/api/v1/enroll/renew", json=renew)
    assert refusal.status_code == 403 and refusal.json() == {"error": "renew_refused", "reason": "revoked"}
    token = await issue(central, "gw-r")
    reenrol = await central.anonymous.post("/api/v1/enroll", json=enroll_request(token, new_keys()))
    assert reenrol.status_code == 403 and reenrol.json()["reason"] == "revoked"


async def test_renewal_rotates_keys_and_keeps_the_old_key_for_sealed_batches(
    central: TrustCentral, tmp_path: Path
) -> None:
    old, first = await enrol(central, "gw-n")
    new = new_keys()
    request = renew_request(
        gateway_id="gw-n", current_key=old.signing_key, kid=old.kid, at=time.time(), keys=new
    )
    r = await central.anonymous.post("/api/v1/enroll/renew", json=request)
    assert r.status_code == 200, r.text
    second = parse_grant(r.json(), new)
    assert second.kid == new.kid != old.kid and second.client_cert != first.client_cert

    # A batch sealed before the switch still verifies; so does one signed with the new key.
    assert (await post_batch(central, "gw-n", batch("gw-n", old.signing_key, old.kid, 1))).status_code == 200
    assert (await post_batch(central, "gw-n", batch("gw-n", new.signing_key, new.kid, 2))).status_code == 200
    listed = {g["id"]: g for g in (await central.client.get("/api/v1/trust/gateways")).json()}
    kids = {k["kid"]: k["valid_until"] for k in listed["gw-n"]["keys"]}
    assert kids[new.kid] is None and kids[old.kid] is not None and kids[old.kid] > time.time()

    # The new certificate and password log in (after the broker reloaded the rotated password).
    async def logs_in() -> bool:
        return await login(central, tmp_path, new, second, "renewed") == "ok"

    await wait_until(logs_in, message="renewed identity logs in")  # type: ignore[arg-type]

    # The same signed request again is a replay; a signature by another key is refused.
    replay = await central.anonymous.post("/api/v1/enroll/renew", json=request)
    assert replay.status_code == 403 and replay.json()["reason"] == "stale"
    forged = renew_request(
        gateway_id="gw-n",
        current_key=Ed25519PrivateKey.generate(),
        kid=new.kid,
        at=time.time(),
        keys=new_keys(),
    )
    bad = await central.anonymous.post("/api/v1/enroll/renew", json=forged)
    assert bad.status_code == 403 and bad.json() == {"error": "renew_refused", "reason": "bad_signature"}
    stale = renew_request(
        gateway_id="gw-n", current_key=new.signing_key, kid=new.kid, at=time.time() - 900, keys=new_keys()
    )
    late = await central.anonymous.post("/api/v1/enroll/renew", json=stale)
    assert late.status_code == 403 and late.json()["reason"] == "stale"
    unknown = await central.anonymous.post("/api/v1/enroll/renew", json=stale | {"gateway_id": "gw-nobody"})
    assert unknown.status_code == 403 and unknown.json()["reason"] == "unknown_gateway"


async def test_only_trust_administrators_manage_tokens(central: TrustCentral) -> None:
    body = {"gateway_id": "gw-x"}
    reader = await central.anonymous.post(
        "/api/v1/enrollment-tokens", json=body, headers={"Authorization": f"Bearer {READER}"}
    )
    assert reader.status_code == 403
    assert (await central.anonymous.post("/api/v1/enrollment-tokens", json=body)).status_code == 401
    assert (await central.anonymous.get("/api/v1/trust/gateways")).status_code == 401
    assert (
        await central.client.post("/api/v1/enrollment-tokens", json={"gateway_id": "central"})
    ).status_code == 400
    paths = (await central.anonymous.get("/openapi.json")).json()["paths"]
    assert {"/api/v1/enroll", "/api/v1/enroll/renew", "/api/v1/enrollment-tokens"} <= set(paths)


async def gatehouse(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_tokens_and_revocation_reach_a_running_central(
    central: TrustCentral, tmp_path: Path
) -> None:
    config_file = tmp_path / "central.yaml"
    config_file.write_text(json.dumps(central.config.model_dump(mode="json", exclude_none=True)))
    code, out, err = await gatehouse("trust", "token", "gw-cli", "-c", str(config_file), "--expires", "2h")
    assert code == 0, err
    line = next(x.strip() for x in out.splitlines() if x.strip().startswith("gatehouse enroll "))
    token = line.split()[-1]
    # The token the CLI wrote into trust.db enrols through the running central's API.
    keys = new_keys()
    r = await central.anonymous.post("/api/v1/enroll", json=enroll_request(token, keys))
    assert r.status_code == 200, r.text
    assert (
        await post_batch(central, "gw-cli", batch("gw-cli", keys.signing_key, keys.kid, 1))
    ).status_code == 200

    code, out, err = await gatehouse(
        "trust", "revoke", "gw-cli", "-c", str(config_file), "--reason", "decommissioned"
    )
    assert code == 0, err + out
    assert "broker reloaded" in out

    # Central's watcher picks the revocation up from trust.db without a restart.
    async def rejected() -> bool:
        r = await post_batch(central, "gw-cli", batch("gw-cli", keys.signing_key, keys.kid, 2))
        return r.status_code == 403 and r.json()["error"] == "revoked"

    await wait_until(rejected, timeout_s=10, message="central rejects the revoked gateway")  # type: ignore[arg-type]
    code, out, _ = await gatehouse("trust", "list", "-c", str(config_file))
    assert code == 0 and "REVOKED" in out and "decommissioned" in out
    code, _, err = await gatehouse("trust", "revoke", "gw-cli", "-c", str(config_file), "--reason", "again")
    assert code == 1 and "already revoked" in err
