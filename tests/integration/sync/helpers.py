"""Rows, keys and uplink configs for the sync integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.keys import generate_private_key, save_private_key
from cloud_sync.ports import EventRow, TelemetryRow
from cloud_sync.uplink import UplinkConfig
from tests.broker import Broker

T0 = 1_767_225_600.0


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
    key = generate_private_key()
    path = folder / "signing.key"
    save_private_key(key, path)
    return path, key


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
