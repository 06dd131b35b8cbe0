"""A real central with ``trust:`` (its CA is the test broker's, so the certificates it issues
open the broker), served over HTTPS, and a way to ask it for enrolment tokens."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud_sync.central.app import CentralService
from cloud_sync.central.config import CentralConfig, TrustConfig
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.keys import save_x25519_private
from tests.broker import Broker
from tests.integration.central.conftest import central_config

TRUST_TOKEN = "trust-admin-token-789"


@dataclass
class TrustedCentral:
    service: CentralService
    config: CentralConfig
    base_url: str
    api_ca: Path  # central's HTTPS certificate (self-signed) for `gatehouse enroll --ca`
    client: httpx.AsyncClient

    async def token(self, gateway_id: str) -> str:
        # Issued through central's service, as `gatehouse trust token` and the console do.
        trust = self.service.trust
        assert trust is not None
        issued = trust.issue_token(gateway_id, estate="estate-a", by="test-admin", source="test")
        return issued.token


@asynccontextmanager
async def trusted_central(
    tmp_path: Path, broker: Broker, *, mqtt: bool = False, **trust: Any
) -> AsyncIterator[TrustedCentral]:
    folder = tmp_path / "central"
    folder.mkdir(parents=True, exist_ok=True)
    broker_settings = None
    if mqtt:
        creds = broker.clients[CENTRAL_USER]
        broker_settings = {
            "host": broker.host,
            "port": broker.port,
            "ca_file": str(broker.ca_path),
            "client_cert": {"cert_file": str(creds.cert_path), "key_file": str(creds.key_path)},
            "username": creds.name,
            "password": creds.password,
            "client_id": "central-identity-test",
        }
    config = central_config(
        folder,
        [],
        broker=broker_settings,
        tokens=[{"name": "trust-admin", "token": TRUST_TOKEN, "scopes": ["read", "admin", "trust"]}],
    )
    e2e_key = folder / "central-e2e.key"
    save_x25519_private(X25519PrivateKey.generate(), e2e_key)
    trust_config = TrustConfig(
        ca_cert=broker.layout.ca_cert,
        ca_key=broker.layout.ca_key,
        broker_host=broker.host,
        broker_port=broker.port,
        **{"certificate_days": 30, "renew_before_days": 10, **trust},
    )
    config = CentralConfig.model_validate(
        {**config.model_dump(), "trust": trust_config.model_dump(), "e2e_key": str(e2e_key)}
    )
    assert config.api.tls is not None
    api_ca = config.api.tls.cert_file
    async with CentralService(config) as service:
        base = f"https://127.0.0.1:{service.api_port}"
        ctx = ssl.create_default_context(cafile=str(api_ca))
        async with httpx.AsyncClient(
            base_url=base, verify=ctx, headers={"Authorization": f"Bearer {TRUST_TOKEN}"}, timeout=30.0
        ) as client:
            yield TrustedCentral(service, config, base, api_ca, client)
