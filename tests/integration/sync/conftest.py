"""Fixtures for the sync integration tests: a real, private, TLS-only Mosquitto per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.broker_config import AuthMode
from tests.broker import Broker, start_broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """Password authentication; users gw-a, gw-b and central."""
    with start_broker(tmp_path / "mq", gateways=("gw-a", "gw-b")) as running:
        yield running


@pytest.fixture
def cert_broker(tmp_path: Path) -> Iterator[Broker]:
    """Certificate authentication (CN = username); users gw-a, gw-b and central."""
    with start_broker(tmp_path / "mq-cert", gateways=("gw-a", "gw-b"), auth=AuthMode.CERTIFICATE) as running:
        yield running
