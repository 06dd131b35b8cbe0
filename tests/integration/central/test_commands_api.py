"""Central issues signed commands through its API and shows what became of them (issue 15 item 4).

Real parts: the project's TLS Mosquitto with its ACL, central (``CentralService``: API, MQTT
ingest, ``commands.db``), the gateway daemon with its uplink and command executor, and a
simulated door controller behind Modbus. A command goes API → central signs → broker → gateway
runs it → ``command.result`` on the event lane → central's storage → the API shows its state.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_sync.central.app import CentralService
from cloud_sync.central.commands import MqttCommandPublisher
from cloud_sync.central.config import BrokerConfig, CentralConfig
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import key_id, load_private_key
from edge.app import Gateway as GatewayDaemon
from edge.config.loader import load_site
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.broker import start_broker
from tests.integration.sync.e2e_support import GW, write_sync_site
from tests.support import free_port, wait_until

from .conftest import Gateway, central_config, make_gateway

R = TypeVar("R")
OPERATOR = "operator-token-1"
ESTATE_A_OPERATOR = "estate-a-operator-2"
VIEWER = "viewer-token-3"
IDLE = "gw-idle"  # enrolled, but no gateway ever connects as it
DOOR = {"id": "door", "bus": "lan", "unit": 2, "profile": "access-door", "poll_interval_s": 0.2}

TOKENS: list[dict[str, Any]] = [
    {"name": "operator", "token": OPERATOR, "scopes": ["read", "command"]},
    {
        "name": "estate-a-op",
        "token": ESTATE_A_OPERATOR,
        "scopes": ["read", "command"],
        "estates": ["estate-a"],
    },
    {"name": "viewer", "token": VIEWER, "scopes": ["read"]},
]


@asynccontextmanager
async def _api(config: CentralConfig) -> AsyncIterator[tuple[CentralService, httpx.AsyncClient]]:
    assert config.api.tls is not None
    ctx = ssl.create_default_context(cafile=str(config.api.tls.cert_file))
    async with (
        CentralService(config) as service,
        httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{service.api_port}",
            verify=ctx,
            headers={"Authorization": f"Bearer {OPERATOR}"},
            timeout=30.0,
        ) as client,
    ):
        yield service, client


async def _until(probe: Callable[[], Awaitable[R | None]], *, message: str, timeout_s: float = 30.0) -> R:
    """``tests.support.wait_until`` for an async probe, typed (its signature does not type-check
    with a coroutine function): poll until the probe answers, fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while (found := await probe()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {message}")
        await asyncio.sleep(0.02)
    return found


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _state(client: httpx.AsyncClient, cid: str, wanted: str) -> dict[str, Any] | None:
    body: dict[str, Any] = (await client.get(f"/api/v1/commands/{cid}")).raise_for_status().json()
    return body if body["state"] == wanted else None


async def test_commands_from_the_api_run_at_the_gateway_and_their_outcomes_show(tmp_path: Path) -> None:
    with start_broker(tmp_path / "mq", gateways=(GW,)) as broker:
        site_path, key_path = write_sync_site(
            tmp_path / "gw", sim_port=free_port(), broker=broker, devices=[DOOR]
        )
        site = load_site(site_path)
        release = site.point_id("door", "release")
        key = load_private_key(key_path)
        me = Gateway(GW, key, make_sealer(GW, key_id(key.public_key()), key))
        user, password = broker.credentials(CENTRAL_USER)
        (tmp_path / "central").mkdir()
        config = central_config(
            tmp_path / "central",
            [me, make_gateway(IDLE, 9)],
            estates={GW: "estate-a", IDLE: "estate-b"},
            tokens=TOKENS,
            broker={
                "host": broker.host,
                "port": broker.port,
                "ca_file": str(broker.ca_path),
                "username": user,
                "password": password,
                "client_id": "central-commands-test",
                "keepalive_s": 5,
            },
        )
        async with (
            _api(config) as (service, client),
            SimulationRunner(read_site_plan(site_path).devices, tick_s=0.25, control_port=0) as sim,
            GatewayDaemon(site) as gateway,
        ):
            run = asyncio.create_task(gateway.run(), name="gateway")
            try:
                assert service.mqtt is not None
                await wait_until(
                    lambda: (
                        service.mqtt is not None
                        and service.mqtt.subscribed.is_set()
                        and gateway.live.device_online.get("door")
                        and gateway.uplink.status()["connected"]
                    ),
                    timeout_s=60,
                    message="central subscribed, door polled, uplink connected",
                )
                # The uplink subscribes to its command topic before it counts as connected.
                sent = await client.post(
                    f"/api/v1/gateways/{GW}/commands",
                    json={"action": "point.write", "args": {"point": release, "value": True}, "ttl_s": 60},
                )
                assert sent.status_code == 202, sent.text
                first = sent.json()
                assert first["state"] == "pending" and first["cseq"] >= 1
                done = await _until(
                    lambda: _state(client, first["cid"], "done"), timeout_s=60, message="write done"
                )
                assert sim.device("door").values()["release"] is True
                assert done["by"] == "operator" and done["from"] == "127.0.0.1"
                assert done["gateway_id"] == GW and done["estate"] == "estate-a"

                refused = (
                    await client.post(
                        f"/api/v1/gateways/{GW}/commands",
                        json={"action": "point.write", "args": {"point": "no/such/point", "value": 1}},
                    )
                ).json()
                assert refused["cseq"] > first["cseq"]
                shown = await _until(
                    lambda: _state(client, refused["cid"], "refused"), timeout_s=60, message="write refused"
                )
                assert "no point 'no/such/point'" in shown["detail"]

                # Nobody listens for the idle gateway: pending until not_after, then expired.
                lost = (
                    await client.post(
                        f"/api/v1/gateways/{IDLE}/commands",
                        json={"action": "log.level", "args": {"level": "debug", "minutes": 5}, "ttl_s": 1},
                    )
                ).json()
                assert lost["state"] == "pending"
                await _until(lambda: _state(client, lost["cid"], "expired"), message="expired")

                listed = await client.get("/api/v1/commands", params={"gateway": GW})
                assert [c["state"] for c in listed.json()] == ["refused", "done"]
                assert [c["cid"] for c in (await client.get("/api/v1/commands?state=expired")).json()] == [
                    lost["cid"]
                ]
            finally:
                gateway.stop()
                await run


async def test_estates_scopes_arguments_and_a_cseq_that_survives_a_restart(
    tmp_path: Path, gw_a: Gateway, gw_b: Gateway
) -> None:
    config = central_config(
        tmp_path, [gw_a, gw_b], estates={"gw-a": "estate-a", "gw-b": "estate-b"}, tokens=TOKENS
    )
    write = {"action": "point.write", "args": {"point": "a/b/c", "value": 1.5}}
    async with _api(config) as (_service, client):
        mine = await client.post("/api/v1/gateways/gw-a/commands", json=write, headers=_as(ESTATE_A_OPERATOR))
        assert mine.status_code == 202, mine.text
        # No broker: section, so nothing can carry it; it says so rather than staying pending.
        assert mine.json()["state"] == "unsent"
        other = await client.post(
            "/api/v1/gateways/gw-b/commands", json=write, headers=_as(ESTATE_A_OPERATOR)
        )
        assert other.status_code == 404
        assert (await client.post("/api/v1/gateways/gw-zz/commands", json=write)).status_code == 404
        viewer = await client.post("/api/v1/gateways/gw-a/commands", json=write, headers=_as(VIEWER))
        assert viewer.status_code == 403
        assert (await client.get("/api/v1/commands", headers=_as(VIEWER))).status_code == 403
        bad = await client.post(
            "/api/v1/gateways/gw-a/commands",
            json={"action": "log.level", "args": {"level": "loud", "minutes": 5}},
        )
        assert bad.status_code == 400 and "level must be one of" in bad.json()["detail"]
        assert (
            await client.post("/api/v1/gateways/gw-a/commands", json={"action": "reboot", "args": {}})
        ).status_code == 422
        huge = {"action": "point.write", "args": {"point": "a/b/c", "value": 2**70}}
        assert (await client.post("/api/v1/gateways/gw-a/commands", json=huge)).status_code == 400
        for cursor in ("OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "%%", "LTE"):
            assert (await client.get("/api/v1/commands", params={"cursor": cursor})).status_code == 422
        push = await client.post(
            "/api/v1/gateways/gw-b/config", json={"text": "site:\n  id: x\n", "version": "v2", "health_s": 30}
        )
        assert push.status_code == 202, push.text
        seen_b = (await client.get(f"/api/v1/commands/{push.json()['cid']}")).json()
        assert seen_b["action"] == "config.push" and seen_b["args"]["text_bytes"] == 14
        assert "text" not in seen_b["args"]
        hidden = await client.get(f"/api/v1/commands/{push.json()['cid']}", headers=_as(ESTATE_A_OPERATOR))
        assert hidden.status_code == 404
        limited = (await client.get("/api/v1/commands", headers=_as(ESTATE_A_OPERATOR))).json()
        assert [c["gateway_id"] for c in limited] == ["gw-a"]
        for _ in range(2):
            assert (await client.post("/api/v1/gateways/gw-a/commands", json=write)).status_code == 202
        page = await client.get("/api/v1/commands", params={"gateway": "gw-a", "limit": 2})
        assert len(page.json()) == 2
        rest = await client.get(
            "/api/v1/commands",
            params={"gateway": "gw-a", "limit": 2, "cursor": page.headers["X-Next-Cursor"]},
        )
        assert [c["cseq"] for c in page.json() + rest.json()] == [3, 2, 1]
        assert "X-Next-Cursor" not in rest.headers
    async with _api(config) as (_service, client):
        again = await client.post("/api/v1/gateways/gw-a/commands", json=write)
        assert again.json()["cseq"] == 4  # the counter was kept: a restart never reuses a number


async def test_an_api_only_process_publishes_on_a_connection_of_its_own_and_reopens_it(
    tmp_path: Path,
) -> None:
    with start_broker(tmp_path / "mq", gateways=("gw-a",)) as broker:
        user, password = broker.credentials(CENTRAL_USER)
        publisher = MqttCommandPublisher(
            BrokerConfig(
                host=broker.host, port=broker.port, ca_file=broker.ca_path, username=user, password=password
            )
        )
        got: list[bytes] = []
        listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="listen-gw-a", protocol=mqtt.MQTTv5)
        listener.tls_set_context(broker.ssl_context())
        listener.username_pw_set(*broker.credentials("gw-a"))
        listener.on_connect = lambda c, *_: c.subscribe("gh/v1/gw-a/cmd", qos=1)
        listener.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
        listener.connect(broker.host, broker.port)
        listener.loop_start()
        try:
            # Until the listener's subscription is in place a publish reaches nobody: repeat it.
            await _until(lambda: _sent_and_seen(publisher, b"one", got), message="first command seen")
            broker.stop()
            broker.start()  # both sessions dropped; the publisher's next command opens a new one
            await _until(
                lambda: _sent_and_seen(publisher, b"two", got), message="second command seen after the outage"
            )
            # The ACL lets only central publish commands: nothing else reaches the topic.
            assert set(got) <= {b"one", b"two"}
        finally:
            listener.disconnect()
            listener.loop_stop()
            await publisher.close()


async def _sent_and_seen(publisher: MqttCommandPublisher, payload: bytes, got: list[bytes]) -> bool | None:
    if payload not in got:
        await publisher.publish("gw-a", payload)
    return True if payload in got else None
