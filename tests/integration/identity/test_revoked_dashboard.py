"""The gateway's revoked state on the LAN dashboard: central's signed ``gateway.revoked`` command
is remembered across restarts and shown by ``/api/trust``, the health view and ``/healthz``; a
broker that refuses the gateway's login is reported as that, not as a plain outage."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud_sync.commands import Command
from cloud_sync.downlink import DownlinkSigner
from cloud_sync.keys import key_id
from cloud_sync.uplink import Uplink
from core.model import Clock, Event, SystemClock
from edge.commands import REVOKED_KIND, CommandExecutor
from edge.outbox import Outbox
from tests.broker import start_broker
from tests.integration.sync.helpers import central_signing_key, signing_key, uplink_config
from tests.support import wait_until
from tests.unit.dashboard.conftest import XHR, setup_admin, start


class Host:
    """The executor's view of a gateway: only the event lane matters for this action."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.clock: Clock = SystemClock()
        self.alarms = None

    def point_target(self, point_id: str) -> tuple[str, str] | None:
        return None

    async def write(self, device_id: str, key: str, value: Any, *, by: str | None = None) -> Any:
        raise AssertionError("not written by this test")

    async def emit(self, event: Event) -> None:
        self.events.append(event)

    def e2e_keys(self) -> Mapping[str, X25519PrivateKey]:
        return {}


def _revocation(key: Ed25519PrivateKey, gateway_id: str, reason: str) -> bytes:
    now = time.time()
    command = Command(
        "c-revoke", 1, now, now + 60, "gateway.revoked", {"reason": reason}, "admin-wang", "central"
    )
    return DownlinkSigner(key, clock_us=lambda: int(time.time() * 1e6)).sign_command(gateway_id, command)


async def test_a_revocation_shows_on_the_dashboard_and_survives_a_restart(tmp_path: Path) -> None:
    central = Ed25519PrivateKey.generate()
    keys = {key_id(central.public_key()): central.public_key()}
    async for dash in start(tmp_path):
        gateway = dash.gateway
        data_dir = gateway.site.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        host = Host()
        executor = CommandExecutor(host, gateway_id="gw-test", central_keys=keys, data_dir=data_dir)
        gateway.commands = executor  # type: ignore[attr-defined]
        await setup_admin(dash.client)

        before = (await dash.client.get("/api/trust")).json()
        assert before["revoked"] is None and before["broker_refuses_credentials"] is False
        # (The fake gateway runs no devices, so /healthz has other complaints: none about trust.)
        assert not [
            p for p in (await dash.client.get("/healthz")).json()["problems"] if p["check"] == "trust"
        ]

        result = await executor.handle(_revocation(central, "gw-test", "stolen hardware"))
        assert result is not None and result.status == "done"
        assert [e.kind for e in host.events] == [REVOKED_KIND, "command.result"]
        assert host.events[0].data["reason"] == "stolen hardware"

        trust = (await dash.client.get("/api/trust")).json()
        assert trust["revoked"]["reason"] == "stolen hardware" and trust["revoked"]["by"] == "admin-wang"
        health = (await dash.client.get("/api/health")).json()
        assert health["trust"]["revoked"]["reason"] == "stolen hardware"
        healthz = await dash.client.get("/healthz")
        assert healthz.status_code == 503
        assert any("revoked by central: stolen hardware" in p["detail"] for p in healthz.json()["problems"])

        # A restart reads the notice back from commands.json.
        gateway.commands = CommandExecutor(Host(), gateway_id="gw-test", central_keys=keys, data_dir=data_dir)  # type: ignore[attr-defined]
        assert (await dash.client.get("/api/trust")).json()["revoked"]["reason"] == "stolen hardware"

        # The page carries the banner's element and its words in both languages.
        page = (await dash.client.get("/")).text
        assert 'data-testid="revoked-banner"' in page
        i18n = (await dash.client.get("/static/js/i18n.js")).text
        assert "本网关已被中心吊销" in i18n and "This gateway was revoked by central" in i18n


async def _refused(client: httpx.AsyncClient) -> bool:
    body = (await client.get("/api/trust", headers=XHR)).json()
    return bool(body["broker_refuses_credentials"])


async def test_a_broker_refusing_the_login_is_named(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "mq")
    try:
        key_path, _ = signing_key(tmp_path / "gw")
        central_signing_key(tmp_path / "gw")
        config = uplink_config(broker, key_path, password="not-the-password")
        (tmp_path / "dash").mkdir()
        async for dash in start(tmp_path / "dash"):
            client = dash.client
            await setup_admin(client)
            async with Outbox(tmp_path / "outbox.db") as outbox, Uplink(config, store=outbox) as uplink:
                dash.gateway.uplink = uplink

                await wait_until(
                    functools.partial(_refused, client),
                    timeout_s=60,
                    message="the dashboard naming the refused login",
                )
                healthz = (await client.get("/healthz")).json()
                assert any("refuses this gateway's credentials" in p["detail"] for p in healthz["problems"])
                dash.gateway.uplink = None
    finally:
        broker.stop()
