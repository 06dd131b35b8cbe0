"""TrustService over a real trust.db and CA with a fake clock: tokens, renewal, revocation,
and what the ingest registry learns from the store."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.central.config import CentralConfig
from cloud_sync.central.ingest import KeyRegistry
from cloud_sync.central.trust.protocol import renew_message as central_renew_message
from cloud_sync.central.trust.service import TrustError, TrustRefused, TrustService
from cloud_sync.central.trust.store import SCHEMA_VERSION, TrustStore
from cloud_sync.central.trust.watch import TrustWatcher
from cloud_sync.certs import PkiLayout, create_ca, password_line
from cloud_sync.keys import save_private_key
from edge.identity.material import KeySet, new_keys
from edge.identity.protocol import enroll_request, parse_grant, renew_message, renew_request

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_config(tmp_path: Path, *, passwords: bool = True) -> CentralConfig:
    layout = PkiLayout(tmp_path / "pki")
    create_ca(layout, now=dt.datetime.now(dt.UTC))
    save_private_key(Ed25519PrivateKey.generate(), tmp_path / "central.key")
    passwd = tmp_path / "mq" / "passwd"
    passwd.parent.mkdir()
    passwd.write_text(password_line("central", "c") + "\n")
    access: dict[str, str] = {
        "acl_file": str(tmp_path / "mq" / "acl"),
        "crl_file": str(tmp_path / "mq" / "crl"),
    }
    if passwords:
        access["password_file"] = str(passwd)
    return CentralConfig.model_validate(
        {
            "database": str(tmp_path / "central.db"),
            "signing_key": str(tmp_path / "central.key"),
            "api": {"tokens": [{"name": "ops", "token": "t"}]},
            "gateways": [],
            "trust": {
                "ca_cert": str(layout.ca_cert),
                "ca_key": str(layout.ca_key),
                "broker_host": "mq.example",
                "old_key_grace_days": 10,
                "broker_access": access,
            },
        }
    )


@pytest.fixture
def service(tmp_path: Path, clock: Clock) -> TrustService:
    return TrustService(make_config(tmp_path), TrustStore(tmp_path / "trust.db"), clock=clock)


def enrol(
    service: TrustService, gateway_id: str, *, estate: str | None = None, name: str | None = None
) -> tuple[KeySet, dict[str, Any]]:
    issued = service.issue_token(gateway_id, by="admin", estate=estate, name=name)
    keys = new_keys()
    grant = service.enroll(**enroll_request(issued.token, keys), source="10.0.0.9")
    return keys, grant


def test_schema_is_versioned(tmp_path: Path) -> None:
    TrustStore(tmp_path / "t.db").close()
    with sqlite3.connect(tmp_path / "t.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    TrustStore(tmp_path / "t.db").close()  # opening again migrates nothing


def test_only_the_token_digest_is_stored(service: TrustService, tmp_path: Path) -> None:
    issued = service.issue_token("gw-1", by="admin")
    raw = (tmp_path / "trust.db").read_bytes() + (tmp_path / "trust.db-wal").read_bytes()
    assert issued.token.encode() not in raw


def test_token_lifetime_is_bounded_and_expires(service: TrustService, clock: Clock) -> None:
    with pytest.raises(TrustError) as too_long:
        service.issue_token("gw-1", by="admin", expires_in_s=service.trust.token_max_hours * 3600 + 1)
    assert too_long.value.status == 400
    issued = service.issue_token("gw-1", by="admin", expires_in_s=600)
    clock.now += 601
    with pytest.raises(TrustRefused) as refused:
        service.enroll(**enroll_request(issued.token, new_keys()), source="10.0.0.9")
    assert refused.value.reason == "expired"
    row = service.store.audit_rows()[0]
    assert (row.event, row.reason, row.gateway_id, row.source) == (
        "token.refused",
        "expired",
        "gw-1",
        "10.0.0.9",
    )


def test_grant_matches_the_contract_the_gateway_checks(service: TrustService) -> None:
    issued = service.issue_token("gw-1", by="admin", estate="estate-a")
    keys = new_keys()
    grant = parse_grant(service.enroll(**enroll_request(issued.token, keys), source="x"), keys)
    assert (grant.gateway_id, grant.estate, grant.broker_host, grant.username) == (
        "gw-1",
        "estate-a",
        "mq.example",
        "gw-1",
    )
    assert grant.encrypt == "off" and grant.central_e2e_key is None  # central has no e2e_key
    assert grant.password is not None
    assert grant.not_after - grant.renew_after == pytest.approx(30 * DAY)
    passwd = service.trust.broker_access.password_file  # type: ignore[union-attr]
    assert passwd is not None and "gw-1:$7$" in passwd.read_text() and "central:$7$" in passwd.read_text()


def test_renew_signature_bytes_agree_with_the_gateway() -> None:
    fields = {
        "gateway_id": "gw-1",
        "kid": "0123456789abcdef",
        "at": 1764633600.1234,
        "csr": "c",
        "signing_key": "s",
        "e2e_key": "e",
    }
    assert central_renew_message(**fields) == renew_message(**fields)  # type: ignore[arg-type]


def test_renewal_retires_the_old_key_for_the_grace_period(
    service: TrustService, clock: Clock, tmp_path: Path
) -> None:
    old, _ = enrol(service, "gw-1")
    new = new_keys()
    body = renew_request(gateway_id="gw-1", current_key=old.signing_key, kid=old.kid, at=clock.now, keys=new)
    grant = service.renew(**body, source="x")
    assert grant["kid"] == new.kid
    registry = KeyRegistry(clock=clock)
    TrustWatcher(service.store, registry).check()
    assert registry.lookup("gw-1", old.kid) is not None and registry.lookup("gw-1", new.kid) is not None
    clock.now += 10 * DAY + 1
    assert registry.lookup("gw-1", old.kid) is None
    assert registry.lookup("gw-1", new.kid) is not None
    # A renewal signed by the retired key is refused once its grace is over.
    late = renew_request(
        gateway_id="gw-1", current_key=old.signing_key, kid=old.kid, at=clock.now, keys=new_keys()
    )
    with pytest.raises(TrustRefused) as refused:
        service.renew(**late, source="x")
    assert refused.value.reason == "bad_signature"


def test_revocation_hooks_run_before_access_is_cut(service: TrustService) -> None:
    enrol(service, "gw-1")
    enrol(service, "gw-2")
    access = service.trust.broker_access
    assert access is not None
    seen: list[tuple[str, str, bool, bool]] = []

    async def notify(gateway_id: str, reason: str) -> None:
        gw = service.store.gateway(gateway_id)
        assert gw is not None
        seen.append((gateway_id, reason, gw.revoked, f"user {gateway_id}\n" in access.acl_file.read_text()))

    async def broken(_gw: str, _reason: str) -> None:
        raise RuntimeError("mqtt down")

    service.before_revoke.append(broken)
    result = asyncio.run(service.revoke("gw-1", reason="stolen", by="admin", before_cut=notify))
    assert seen == [("gw-1", "stolen", False, True)]
    # No pid_file or reload_command: files written, reload reported as not done.
    assert result.broker is not None and not result.broker.reloaded
    acl = access.acl_file.read_text()
    assert "user gw-1\n" not in acl and "user gw-2\n" in acl
    registry = KeyRegistry()
    TrustWatcher(service.store, registry).check()
    assert registry.revoked("gw-1") and not registry.revoked("gw-2") and registry.knows("gw-1")
    with pytest.raises(TrustError) as again:
        asyncio.run(service.revoke("gw-1", reason="again", by="admin"))
    assert again.value.status == 409
    with pytest.raises(TrustError) as unknown:
        service.revoke_now("gw-9", reason="x", by="admin")
    assert unknown.value.status == 404


def test_watcher_reloads_only_when_the_store_changed(service: TrustService, tmp_path: Path) -> None:
    registry = KeyRegistry()
    other = TrustStore(tmp_path / "trust.db")  # another process's connection, as gatehouse trust has
    watcher = TrustWatcher(other, registry)
    assert watcher.check() and not watcher.check()
    enrol(service, "gw-1", estate="estate-a", name="Gate")
    assert watcher.check()
    assert (
        registry.knows("gw-1")
        and registry.estate_of("gw-1") == "estate-a"
        and registry.name_of("gw-1") == "Gate"
    )
    assert "gw-1" in registry.gateway_ids
