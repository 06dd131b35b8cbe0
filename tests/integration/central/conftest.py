"""Fixtures for central: enrolled gateway keys, a self-signed HTTPS certificate, a running service.

``database`` runs a test once per storage backend: SQLite (a file in tmp_path) and PostgreSQL (a
fresh database on a private server started once per session, tests/pg.py).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from cloud_sync.central.app import CentralService
from cloud_sync.central.config import CentralConfig
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import key_id, public_key_pem, save_public_key
from cloud_sync.ports import EventRow, Lane, Sealer, TelemetryRow
from tests.integration.sync.helpers import central_signing_key
from tests.pg import Postgres, start_postgres

TOKEN = "test-token-123"
ESTATE_A_TOKEN = "estate-a-token-456"


@dataclass
class Gateway:
    id: str
    key: Ed25519PrivateKey
    seal: Sealer

    def telemetry(self, seq: int, rows: list[TelemetryRow], *, historical: bool = False) -> bytes:
        return self.seal(
            lane=Lane.TELEMETRY, seq=seq, rows=rows, historical=historical, sealed_at=1000.0 + seq
        )

    def events(self, seq: int, rows: list[EventRow]) -> bytes:
        return self.seal(lane=Lane.EVENT, seq=seq, rows=rows, historical=False, sealed_at=1000.0 + seq)


def make_gateway(gateway_id: str, seed: int) -> Gateway:
    key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return Gateway(gateway_id, key, make_sealer(gateway_id, key_id(key.public_key()), key))


@pytest.fixture
def gw_a() -> Gateway:
    return make_gateway("gw-a", 1)


@pytest.fixture
def gw_b() -> Gateway:
    return make_gateway("gw-b", 2)


def self_signed(dir_: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = dir_ / "api.crt", dir_ / "api.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with start_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str | None:
    """None: SQLite in tmp_path; else the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        return None
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database()


def central_config(
    tmp_path: Path,
    gateways: list[Gateway],
    *,
    broker: dict[str, Any] | None = None,
    database: str | None = None,
    estates: dict[str, str] | None = None,
    tokens: list[dict[str, Any]] | None = None,
) -> CentralConfig:
    cert, key = self_signed(tmp_path)
    enrolled: list[dict[str, Any]] = []
    for i, gw in enumerate(gateways):
        # One gateway by PEM file, the others inline: both ways of enrolling are exercised.
        if i == 0:
            path = tmp_path / f"{gw.id}.pub"
            save_public_key(gw.key.public_key(), path)
            enrolled.append({"id": gw.id, "keys": [{"file": str(path)}]})
        else:
            enrolled.append({"id": gw.id, "keys": [{"pem": public_key_pem(gw.key.public_key())}]})
    for entry in enrolled:
        if estates and entry["id"] in estates:
            entry["estate"] = estates[entry["id"]]
    return CentralConfig.model_validate(
        {
            "database": database or str(tmp_path / "central.db"),
            "signing_key": str(central_signing_key(tmp_path)),
            "broker": broker,
            "api": {
                "host": "127.0.0.1",
                "port": 0,
                "tls": {"cert_file": str(cert), "key_file": str(key)},
                "tokens": [{"name": "ops", "token": TOKEN}, *(tokens or [])],
            },
            "gateways": enrolled,
        }
    )


@dataclass
class RunningCentral:
    service: CentralService
    client: httpx.AsyncClient
    config: CentralConfig


@pytest.fixture
async def central(
    tmp_path: Path, gw_a: Gateway, gw_b: Gateway, database: str | None
) -> AsyncIterator[RunningCentral]:
    config = central_config(
        tmp_path,
        [gw_a, gw_b],
        database=database,
        estates={"gw-a": "estate-a", "gw-b": "estate-b"},
        tokens=[
            {
                "name": "estate-a-reader",
                "token": ESTATE_A_TOKEN,
                "scopes": ["read", "admin"],
                "estates": ["estate-a"],
            }
        ],
    )
    assert config.api.tls is not None
    ctx = ssl.create_default_context(cafile=str(config.api.tls.cert_file))
    async with CentralService(config) as service:
        base = f"https://127.0.0.1:{service.api_port}"
        async with httpx.AsyncClient(
            base_url=base, verify=ctx, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30.0
        ) as client:
            yield RunningCentral(service, client, config)
