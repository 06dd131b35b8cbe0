"""Renewal on a running uplink against the real central and a real broker (client certificates):
a batch sealed with the old key before the switch and one sealed with the new key after it both
reach central exactly once, and the next connection uses the renewed certificate."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import AsyncExitStack
from pathlib import Path

from ruamel.yaml import YAML

from cloud_sync.broker_config import AuthMode
from cloud_sync.envelope import decode_header
from cloud_sync.ports import Lane, SealMode
from cloud_sync.uplink import _make_sealer
from core.model import Quality, Sample
from edge.cli import main
from edge.config.loader import load_site
from edge.identity.folder import read_identity
from edge.outbox import Outbox
from edge.uplink.wiring import enter_uplink
from tests.broker import start_broker
from tests.integration.identity.central_support import trusted_central
from tests.support import wait_until

T0 = 1_764_000_000.0
FAST = {"idle_poll_s": 0.05, "backoff_initial_s": 0.2, "backoff_max_s": 1.0, "connect_timeout_s": 5.0}


def _samples(first: int, n: int) -> list[Sample]:
    return [
        Sample(f"estate/meter{i % 5}/kwh", float(i), Quality.GOOD, T0 + i) for i in range(first, first + n)
    ]


async def _drained(outbox: Outbox) -> bool:
    for lane in Lane:
        if await outbox.pending(lane, limit=1):
            return False
    return True


async def test_renewal_switches_a_running_uplink_without_loss_or_duplicates(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "mq", auth=AuthMode.CERTIFICATE)
    try:
        async with trusted_central(tmp_path, broker, mqtt=True) as central:
            service = central.service
            assert service.mqtt is not None
            await wait_until(service.mqtt.subscribed.is_set, message="central subscribed")
            token = await central.token("gw-a")
            folder = tmp_path / "gw" / "identity"
            enrolled = await asyncio.to_thread(
                main, ["enroll", central.base_url, token, "--dir", str(folder), "--ca", str(central.api_ca)]
            )
            assert enrolled == 0
            first = read_identity(folder)
            site_path = tmp_path / "gw" / "site.yaml"
            with site_path.open("w", encoding="utf-8") as fh:
                YAML().dump(
                    {
                        "site": {"id": "s"},
                        "gateway": {"id": "gw-a"},
                        "uplink": {"identity": "identity", **FAST},
                    },
                    fh,
                )
            site = load_site(site_path)
            records = service.ingestor.counters

            async with Outbox(tmp_path / "outbox.db") as outbox, AsyncExitStack() as stack:
                uplink = await enter_uplink(stack, site.config.uplink or {}, site=site, store=outbox)
                assert uplink.renewal is not None
                await outbox.put_samples(_samples(0, 100))
                await outbox.flush()
                uplink.wake()
                await wait_until(lambda: records["records"] == 100, message="first batch at central")
                await wait_until(lambda: _drained(outbox), message="first batch acknowledged")

                # The broker goes away; a batch is sealed with the current (old) key meanwhile.
                broker.stop()
                await wait_until(lambda: not uplink.status()["connected"], message="uplink down")
                await outbox.put_samples(_samples(100, 50))
                await outbox.flush()
                sealer = _make_sealer(uplink.config)
                old = await outbox.seal(Lane.TELEMETRY, mode=SealMode.LIVE, max_records=500, sealer=sealer)
                if old is None:  # rows already older than the live window are sealed as backlog
                    old = await outbox.seal(
                        Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=500, sealer=sealer
                    )
                assert old is not None and decode_header(old.payload).key_id == first.kid

                renewed = await uplink.renewal.renew_once()
                assert renewed.version == 2 and renewed.kid != first.kid
                assert uplink.config.signing_key == renewed.file("signing.key")
                assert not first.file("client.crt").exists()  # v1 pruned: only v2 can connect now
                assert uplink.status()["identity"]["version"] == 2

                await outbox.put_samples(_samples(150, 30))
                await outbox.flush()
                broker.start()
                uplink.wake()
                await wait_until(lambda: _drained(outbox), timeout_s=90, message="everything acknowledged")
                assert records["records"] == 180, records
                assert records["rejected"] == 0, records
                assert uplink.status()["connected"]
        # Each batch once, under the key that sealed it: two under the old key, one under the new.
        with sqlite3.connect(tmp_path / "central" / "central.db") as db:
            rows = db.execute(
                "SELECT seq, key_id, record_count FROM batches WHERE gateway_id='gw-a' AND lane='telemetry'"
                " ORDER BY seq"
            ).fetchall()
        assert rows == [(1, first.kid, 100), (2, first.kid, 50), (3, renewed.kid, 30)]
    finally:
        broker.stop()
