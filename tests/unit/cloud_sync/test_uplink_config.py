"""UplinkConfig: TLS material and authentication are mandatory and consistent; topics follow §1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cloud_sync.ports import Lane
from cloud_sync.uplink import UplinkConfig, topics

BASE: dict[str, Any] = {
    "gateway_id": "gw-a",
    "broker_host": "mq.example",
    "ca_file": Path("/pki/ca.crt"),
    "signing_key": Path("/pki/signing.key"),
    "central_key": Path("/pki/central-signing.pub"),
}


def test_password_login() -> None:
    cfg = UplinkConfig(**BASE, username="gw-a", password="pw")
    assert cfg.broker_port == 8883
    assert cfg.batch_max_records == 5000 and cfg.inflight_window == 32 and cfg.ack_timeout_s == 30.0
    assert "pw" not in repr(cfg)  # secrets stay out of logs


def test_certificate_login() -> None:
    UplinkConfig(**BASE, client_cert=Path("/pki/c.crt"), client_key=Path("/pki/c.key"))


@pytest.mark.parametrize(
    "extra",
    [
        {},  # no authentication at all
        {"client_cert": Path("/pki/c.crt")},  # certificate without key
        {"password": "pw"},  # password without username
        {"username": "gw-a", "password": "pw", "password_file": Path("/pw")},
        {"username": "gw-a", "password": "pw", "gateway_id": "gw/a"},
        {"username": "gw-a", "password": "pw", "gateway_id": "gw+"},
        {"username": "gw-a", "password": "pw", "inflight_window": 0},
        {"username": "gw-a", "password": "pw", "tls": False},  # unknown keys are refused
    ],
)
def test_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        UplinkConfig(**{**BASE, **extra})


def test_topics() -> None:
    t = topics(UplinkConfig(**BASE, username="gw-a", password="pw"))
    assert t.up(Lane.EVENT) == "gh/v1/gw-a/up/event"
    assert t.up(Lane.TELEMETRY) == "gh/v1/gw-a/up/telemetry"
    assert t.state == "gh/v1/gw-a/state"
    assert t.ack == "gh/v1/gw-a/ack"
