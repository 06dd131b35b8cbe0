"""A real central with ``trust:`` against a real Mosquitto whose ACL, password file and CRL
central owns (``broker_access``), reloaded with SIGHUP through a pid file.

The broker runs in ``both`` mode (client certificate *and* password) with ``crlfile``, so an
enrolment is proven by logging in with the certificate and the password central handed out.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from cloud_sync.broker_config import AuthMode
from cloud_sync.central.app import CentralService
from cloud_sync.central.config import CentralConfig, TrustConfig
from cloud_sync.certs import CENTRAL_USER, PkiLayout, build_crl, load_ca
from cloud_sync.e2e import new_private_key
from cloud_sync.keys import save_x25519_private
from tests.broker import Broker, start_broker
from tests.integration.central.conftest import central_config
from tests.support import wait_until

TRUSTEE = "trustee-token-789"
READER = "reader-token-321"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    crl = tmp_path / "mq" / "broker.crl"
    crl.parent.mkdir(parents=True)
    # The broker's PKI does not exist before start_broker, so the first CRL is made after it
    # (start=False), signed by that CA, before Mosquitto starts and reads it.
    running = start_broker(tmp_path / "mq", gateways=(), auth=AuthMode.BOTH, start=False, crl_file=crl)
    ca = load_ca(running.layout)
    crl.write_bytes(build_crl(ca, [], now=dt.datetime.now(dt.UTC)))
    with running:
        running.start()
        assert running.process is not None
        (tmp_path / "mq" / "mosquitto.pid").write_text(f"{running.process.pid}\n")
        yield running


def trust_config(tmp_path: Path, broker: Broker) -> CentralConfig:
    user, password = broker.credentials(CENTRAL_USER)
    cert, key = broker.client_cert(CENTRAL_USER)
    base = central_config(
        tmp_path,
        [],
        broker={
            "host": broker.host,
            "port": broker.port,
            "ca_file": str(broker.ca_path),
            "client_cert": {"cert_file": str(cert), "key_file": str(key)},
            "username": user,
            "password": password,
            "client_id": "central-trust-test",
        },
        tokens=[
            {"name": "trustee", "token": TRUSTEE, "scopes": ["read", "admin", "ingest", "trust"]},
            {"name": "reader", "token": READER, "scopes": ["read"]},
        ],
    )
    layout = PkiLayout(broker.pki_dir)
    trust = TrustConfig.model_validate(
        {
            "ca_cert": str(layout.ca_cert),
            "ca_key": str(layout.ca_key),
            "broker_host": broker.host,
            "broker_port": broker.port,
            "broker_access": {
                "acl_file": str(broker.files.acl),
                "password_file": str(layout.password_file),
                "crl_file": str(broker.workdir / "broker.crl"),
                "pid_file": str(broker.workdir / "mosquitto.pid"),
            },
        }
    )
    # Central's X25519 key: enrolments turn end-to-end encryption on, commands go encrypted.
    e2e_key = tmp_path / "central-e2e.key"
    save_x25519_private(new_private_key(), e2e_key)
    return base.model_copy(update={"trust": trust, "e2e_key": e2e_key})


@dataclass
class TrustCentral:
    service: CentralService
    client: httpx.AsyncClient  # the trustee's bearer token
    anonymous: httpx.AsyncClient  # no token: what a gateway has when it enrols
    config: CentralConfig
    broker: Broker


@pytest.fixture
async def central(tmp_path: Path, broker: Broker) -> AsyncIterator[TrustCentral]:
    config = trust_config(tmp_path, broker)
    assert config.api.tls is not None
    ctx = ssl.create_default_context(cafile=str(config.api.tls.cert_file))
    async with CentralService(config) as service:
        assert service.mqtt is not None
        await wait_until(service.mqtt.subscribed.is_set, message="central subscribed")
        base = f"https://127.0.0.1:{service.api_port}"
        async with (
            httpx.AsyncClient(
                base_url=base, verify=ctx, headers={"Authorization": f"Bearer {TRUSTEE}"}, timeout=30.0
            ) as client,
            httpx.AsyncClient(base_url=base, verify=ctx, timeout=30.0) as anonymous,
        ):
            yield TrustCentral(service, client, anonymous, config, broker)


class MqttGateway:
    """A paho client logging in as an enrolled gateway with its certificate and password."""

    def __init__(
        self,
        broker: Broker,
        folder: Path,
        gateway_id: str,
        *,
        cert: str,
        key: bytes,
        ca: str,
        password: str | None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "client.crt").write_text(cert)
        (folder / "client.key").write_bytes(key)
        (folder / "ca.crt").write_text(ca)
        self.gateway_id = gateway_id
        self.broker = broker
        self.connack: ReasonCode | None = None
        self.disconnected = False
        self.published: dict[int, ReasonCode] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.subscribed = False
        ctx = ssl.create_default_context(cafile=str(folder / "ca.crt"))
        ctx.load_cert_chain(str(folder / "client.crt"), str(folder / "client.key"))
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"gw-{gateway_id}", protocol=mqtt.MQTTv5
        )
        self.client.tls_set_context(ctx)
        self.client.username_pw_set(gateway_id, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, _rc: ReasonCode, _p: object) -> None:
        self.disconnected = True

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        self.published[mid] = rc

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self.messages.append((message.topic, bytes(message.payload)))

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, _rc: object, _p: object) -> None:
        self.subscribed = True

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)

    def connect(self) -> None:
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> int:
        return self.client.publish(topic, payload, qos=1).mid

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
