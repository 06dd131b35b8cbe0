"""Rows, keys and uplink configs for the sync integration tests.

Central's ack-signing key in these tests is :data:`CENTRAL_KEY` (fixed, test-only): FakeCentral
signs with it, :func:`signing_key` writes its public half as ``central-signing.pub`` next to the
gateway's key, and :func:`uplink_config` pins that file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.keys import generate_private_key, save_private_key, save_public_key
from cloud_sync.ports import EventRow, TelemetryRow
from cloud_sync.uplink import UplinkConfig
from tests.broker import Broker

T0 = 1_767_225_600.0
# Test-only central signing key (never use a fixed key anywhere else).
CENTRAL_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(100, 132)))
CENTRAL_PUB_NAME = "central-signing.pub"


def telemetry(n: int, *, start: int = 0, ts: float = T0) -> list[TelemetryRow]:
    return [
        TelemetryRow(
            point_id=f"site/meter-{i % 7}/power_w",
            value=float(i),
            quality=0,
            reason="",
            receipt_ts=ts + i * 0.001,
            source_ts=None,
        )
        for i in range(start, start + n)
    ]


def events(n: int, *, kind: str = "alarm.raised", ts: float = T0) -> list[EventRow]:
    return [EventRow(kind=kind, source="site/tank-1/level", ts=ts + i, data={"n": i}) for i in range(n)]


def signing_key(folder: Path) -> tuple[Path, Ed25519PrivateKey]:
    """A fresh gateway key in ``folder``, and central's pinned public key beside it."""
    key = generate_private_key()
    path = folder / "signing.key"
    save_private_key(key, path)
    save_public_key(CENTRAL_KEY.public_key(), folder / CENTRAL_PUB_NAME)
    return path, key


def central_signing_key(folder: Path) -> Path:
    """CENTRAL_KEY as a PEM file for a real central (``signing_key`` in central.yaml)."""
    path = folder / "central-signing.key"
    save_private_key(CENTRAL_KEY, path)
    return path


def uplink_config(
    broker: Broker,
    key_path: Path,
    *,
    gateway_id: str = "gw-a",
    login: str | None = None,
    **overrides: Any,
) -> UplinkConfig:
    """Password login as ``login`` (default: the gateway itself) with fast test timings."""
    user, password = broker.credentials(login or gateway_id)
    settings: dict[str, Any] = {
        "gateway_id": gateway_id,
        "broker_host": broker.host,
        "broker_port": broker.port,
        "ca_file": broker.ca_path,
        "username": user,
        "password": password,
        "signing_key": key_path,
        "central_key": key_path.parent / CENTRAL_PUB_NAME,
        "batch_max_records": 500,
        "inflight_window": 8,
        "ack_timeout_s": 30.0,
        "idle_poll_s": 0.05,
        "backoff_initial_s": 0.2,
        "backoff_max_s": 1.0,
        "connect_timeout_s": 5.0,
    }
    settings.update(overrides)
    return UplinkConfig(**settings)
