"""The uplink-behind alarm on a running gateway: raised while central does not acknowledge, cleared
once the backlog drains. Real broker (TLS, the project's config), real central, real outbox."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from cloud_sync.central.app import CentralService
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import key_id
from core.model import Quality, Sample
from edge.app import Gateway
from edge.config.loader import load_site
from edge.metrics import BacklogCache, GatewayCollector
from tests.broker import Broker
from tests.integration.central.conftest import Gateway as EnrolledGateway
from tests.integration.central.conftest import central_config
from tests.integration.sync.helpers import CENTRAL_PUB_NAME, signing_key
from tests.support import wait_until

GW = "gw-a"


def _site(folder: Path, broker: Broker, key_name: str) -> Path:
    user, password = broker.credentials(GW)
    uplink = {
        "broker_host": broker.host,
        "broker_port": broker.port,
        "ca_file": str(broker.ca_path),
        "username": user,
        "password": password,
        "signing_key": key_name,
        "central_key": CENTRAL_PUB_NAME,
        "idle_poll_s": 0.05,
        "ack_timeout_s": 2.0,
        # Fast thresholds so the test takes seconds; the shipped ones are 60 s / 10 s / 5 s.
        "behind_alarm_s": 1.5,
        "behind_clear_s": 0.5,
        "behind_check_s": 0.2,
    }
    path = folder / "site.yaml"
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump({"site": {"id": "s1"}, "gateway": {"id": GW, "data_dir": "data"}, "uplink": uplink}, fh)
    return path


def _metrics(gateway: Gateway) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in GatewayCollector(gateway, BacklogCache(gateway)).collect():
        for sample in family.samples:
            out[sample.name] = sample.value
    return out


def _central_alarms(db: Path) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        rows = conn.execute(
            "SELECT data FROM events WHERE gateway_id = ? AND kind = 'system.alarm' ORDER BY ts", (GW,)
        ).fetchall()
    found = [json.loads(r[0]) for r in rows]
    return [d for d in found if d.get("code") == "uplink_behind"]


async def test_alarm_raised_while_central_is_away_and_cleared_when_the_backlog_drains(
    broker: Broker, tmp_path: Path
) -> None:
    key_path, key = signing_key(tmp_path)
    site = load_site(_site(tmp_path, broker, key_path.name))
    user, password = broker.credentials(CENTRAL_USER)
    enrolled = EnrolledGateway(GW, key, make_sealer(GW, key_id(key.public_key()), key))
    (tmp_path / "central").mkdir()
    config = central_config(
        tmp_path / "central",
        [enrolled],
        broker={
            "host": broker.host,
            "port": broker.port,
            "ca_file": str(broker.ca_path),
            "username": user,
            "password": password,
            "client_id": "central-behind",
        },
    )
    point = site.point_id("_uplink", "behind")
    async with Gateway(site) as gateway:
        # No central yet: batches go out, nothing is acknowledged, the oldest record ages.
        now = time.time()
        await gateway.outbox.put_samples(
            [Sample(f"s1/meter/p{i}", float(i), Quality.GOOD, now + i * 1e-3) for i in range(2000)]
        )
        await gateway.outbox.flush()
        assert gateway.uplink_watch is not None
        await wait_until(lambda: gateway.uplink_watch.active, timeout_s=60, message="the alarm raised")
        assert gateway.live.latest[point].value is True
        metrics = _metrics(gateway)
        assert metrics["gatehouse_uplink_behind"] == 1.0
        assert metrics["gatehouse_uplink_behind_seconds"] >= 1.5
        assert "gatehouse_outbox_growth_bytes_per_second" in metrics

        # Central arrives: it stores the waiting batches (the alarm event first) and acks them.
        service = CentralService(config)
        await service.__aenter__()
        try:
            await wait_until(
                lambda: not gateway.uplink_watch.active, timeout_s=90, message="the alarm cleared"
            )
            assert gateway.live.latest[point].value is False
            assert _metrics(gateway)["gatehouse_uplink_behind"] == 0.0
            db = Path(str(config.database))
            await wait_until(lambda: len(_central_alarms(db)) >= 2, timeout_s=60, message="both at central")
            raised, cleared = _central_alarms(db)[:2]
            assert raised["active"] is True and cleared["active"] is False
            assert str(raised["message"]).startswith("uplink behind by ")
            assert raised["behind_s"] >= 1.5
        finally:
            await service.__aexit__(None, None, None)
