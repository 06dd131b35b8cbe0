"""Central's signed commands reach the running daemon over the real broker (issue 15 item 4).

Real parts: the project's TLS Mosquitto with its ACL (only the ``central`` user may publish on
``gh/v1/+/cmd``, each gateway reads only its own), the daemon with its uplink, a simulated door
controller. The test client logs in as the broker's ``central`` user and signs as central does.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.certs import CENTRAL_USER
from cloud_sync.commands import Command
from cloud_sync.downlink import DownlinkSigner
from cloud_sync.mqtt_client import MqttSession, MqttSettings
from edge.app import Gateway
from edge.config.loader import load_site
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.broker import Broker, start_broker
from tests.integration.sync.e2e_support import GW, write_sync_site
from tests.integration.sync.helpers import CENTRAL_KEY
from tests.support import free_port, wait_until

DOOR = {"id": "door", "bus": "lan", "unit": 2, "profile": "access-door", "poll_interval_s": 0.2}


async def _central_client(broker: Broker) -> MqttSession:
    user, password = broker.credentials(CENTRAL_USER)
    settings = MqttSettings(
        host=broker.host,
        port=broker.port,
        ca_file=broker.ca_path,
        client_id="central-commands",
        username=user,
        password=password,
        connect_timeout_s=10.0,
    )
    return await MqttSession.open(settings)


def _command(signer: DownlinkSigner, cseq: int, point: str, value: object) -> bytes:
    now = time.time()
    command = Command(
        f"c{cseq}", cseq, now, now + 60, "point.write", {"point": point, "value": value}, "ops", "hq"
    )
    return signer.sign_command(GW, command)


async def test_a_signed_command_over_the_broker_writes_the_door_and_a_forgery_does_not(
    tmp_path: Path,
) -> None:
    with start_broker(tmp_path / "mq", gateways=(GW,)) as broker:
        await _released_by_central(tmp_path, broker)


async def _released_by_central(tmp_path: Path, broker: Broker) -> None:
    path, _ = write_sync_site(tmp_path, sim_port=free_port(), broker=broker, devices=[DOOR])
    site = load_site(path)
    release = site.point_id("door", "release")
    central = DownlinkSigner(CENTRAL_KEY, clock_us=lambda: int(time.time() * 1e6))
    attacker = DownlinkSigner(Ed25519PrivateKey.generate(), clock_us=lambda: int(time.time() * 1e6))
    async with (
        SimulationRunner(read_site_plan(path).devices, tick_s=0.25, control_port=0) as sim,
        Gateway(site) as gateway,
    ):
        run = asyncio.create_task(gateway.run(), name="gateway")
        session = await _central_client(broker)
        try:
            await wait_until(
                lambda: gateway.live.device_online.get("door") and gateway.uplink.status()["connected"],
                timeout_s=60,
                message="door polled and uplink connected",
            )
            topic = f"gh/v1/{GW}/cmd"
            forged = _command(attacker, 1, release, True)
            await session.publish(topic, forged, qos=1)
            await wait_until(lambda: gateway.commands.rejected["unknown_key"] == 1, message="forgery refused")
            assert sim.device("door").values()["release"] is False

            genuine = _command(central, 1, release, True)
            await session.publish(topic, genuine, qos=1)
            await wait_until(lambda: sim.device("door").values()["release"] is True, message="door released")
            await session.publish(topic, genuine, qos=1)  # the same bytes again
            await wait_until(lambda: gateway.commands.rejected["replay"] == 1, message="replay refused")
            results = [(r.cid, r.status, r.detail) for r in gateway.commands.recent]
        finally:
            await session.close()
            gateway.stop()
            await run
    assert results == [("c1", "done", ""), ("c1", "refused", "replay")]
