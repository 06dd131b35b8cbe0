"""The production broker config (config/mosquitto/) on a real Mosquitto: TLS only, verified
certificates, authentication, and an ACL that confines each gateway to its own topics."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.certs import PkiLayout, create_ca
from cloud_sync.mqtt_client import MqttConnectError, MqttSession, MqttSettings, PublishRefused, tls_context
from tests.broker import Broker
from tests.support import wait_until

NOT_AUTHORISED = 0x87
BAD_CREDENTIALS = 0x86


def settings(broker: Broker, user: str, **overrides: Any) -> MqttSettings:
    username, password = broker.credentials(user)
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "ca_file": broker.ca_path,
        "client_id": f"test-{user}",
        "username": username,
        "password": password,
        "connect_timeout_s": 10.0,
    }
    values.update(overrides)
    return MqttSettings(**values)


def _mqtt_connect_packet() -> bytes:
    # MQTT 3.1.1 CONNECT, clean session, keepalive 30, client id "x".
    variable = b"\x00\x04MQTT\x04\x02\x00\x1e"
    payload = b"\x00\x01x"
    body = variable + payload
    return bytes([0x10, len(body)]) + body


def test_plaintext_mqtt_gets_no_connack(broker: Broker) -> None:
    with socket.create_connection((broker.host, broker.port), timeout=10) as sock:
        sock.sendall(_mqtt_connect_packet())
        try:
            answer = sock.recv(16)
        except ConnectionResetError:
            answer = b""
    # A CONNACK starts with 0x20; a TLS listener answers garbage with a close (or a TLS alert).
    assert not answer.startswith(b"\x20")


def test_broker_certificate_is_verified(broker: Broker) -> None:
    # The system trust store does not know the site's private CA: the handshake must fail.
    ctx = ssl.create_default_context()
    with (
        socket.create_connection((broker.host, broker.port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ctx.wrap_socket(raw, server_hostname="localhost")


async def test_client_with_another_ca_cannot_connect(broker: Broker, tmp_path: Path) -> None:
    other = PkiLayout(tmp_path / "other-pki")
    create_ca(other, now=dt.datetime.now(dt.UTC))
    with pytest.raises(MqttConnectError, match="certificate verify failed"):
        await MqttSession.open(settings(broker, "gw-a", ca_file=other.ca_cert))


def test_hostname_is_checked(broker: Broker) -> None:
    # The broker certificate names localhost and 127.0.0.1 only; the uplink's TLS context
    # checks names, so a certificate for another host is refused even from the right CA.
    ctx = tls_context(settings(broker, "gw-a"))
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    with (
        socket.create_connection((broker.host, broker.port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match="match"),
    ):
        ctx.wrap_socket(raw, server_hostname="broker.example.invalid")


async def test_wrong_password_is_refused(broker: Broker) -> None:
    with pytest.raises(MqttConnectError) as info:
        await MqttSession.open(settings(broker, "gw-a", password="not-the-password"))
    assert info.value.reason_code in (BAD_CREDENTIALS, NOT_AUTHORISED)


async def test_no_anonymous_login(broker: Broker) -> None:
    with pytest.raises(MqttConnectError):
        await MqttSession.open(settings(broker, "gw-a", username=None, password=None))


async def test_gateway_cannot_publish_on_another_gateways_topics(broker: Broker) -> None:
    session = await MqttSession.open(settings(broker, "gw-a"))
    try:
        await session.publish("gh/v1/gw-a/up/event", b"mine")  # allowed
        await session.publish("gh/v1/gw-a/state", b"{}", retain=True)
        for topic in ("gh/v1/gw-b/up/event", "gh/v1/gw-b/up/telemetry", "gh/v1/gw-b/state", "gh/v1/gw-a/ack"):
            with pytest.raises(PublishRefused) as info:
                await session.publish(topic, b"spoofed")
            assert info.value.reason_code == NOT_AUTHORISED, topic
    finally:
        await session.close()


async def test_gateway_cannot_read_another_gateways_acks(broker: Broker) -> None:
    central = await MqttSession.open(settings(broker, "central"))
    gw_a = await MqttSession.open(settings(broker, "gw-a"))
    gw_b = await MqttSession.open(settings(broker, "gw-b"))
    try:
        # Mosquitto 2.0 grants the SUBACK but filters deliveries by the read ACL.
        await gw_a.subscribe("gh/v1/gw-b/ack")
        await gw_a.subscribe("gh/v1/+/ack")
        await gw_b.subscribe("gh/v1/gw-b/ack")
        await central.publish("gh/v1/gw-b/ack", b"for-b")
        await central.publish("gh/v1/gw-a/ack", b"for-a")
        # Same publisher, same QoS: the broker delivers in order, so once gw-a has its own ack
        # anything for gw-b would already have arrived.
        first = await asyncio.wait_for(gw_a.messages.get(), timeout=30)
        assert (first.topic, first.payload) == ("gh/v1/gw-a/ack", b"for-a")
        assert gw_a.messages.empty()
        got_b = await asyncio.wait_for(gw_b.messages.get(), timeout=30)
        assert got_b.payload == b"for-b"
    finally:
        for session in (central, gw_a, gw_b):
            await session.close()


async def test_certificate_identity_is_the_username(cert_broker: Broker) -> None:
    cert, key = cert_broker.client_cert("gw-a")
    cfg = MqttSettings(
        host=cert_broker.host,
        port=cert_broker.port,
        ca_file=cert_broker.ca_path,
        client_id="gw-a",
        client_cert=cert,
        client_key=key,
        connect_timeout_s=10.0,
    )
    session = await MqttSession.open(cfg)
    try:
        await session.publish("gh/v1/gw-a/up/telemetry", b"mine")
        with pytest.raises(PublishRefused) as info:
            await session.publish("gh/v1/gw-b/up/telemetry", b"spoofed")
        assert info.value.reason_code == NOT_AUTHORISED
    finally:
        await session.close()


async def test_certificate_is_required_in_certificate_mode(cert_broker: Broker) -> None:
    with pytest.raises(MqttConnectError):
        await MqttSession.open(settings(cert_broker, "gw-a"))


async def test_broker_restart_on_the_same_port(broker: Broker) -> None:
    session = await MqttSession.open(settings(broker, "gw-a"))
    broker.stop()
    await wait_until(lambda: session.closed, message="session notices the broker is gone")
    await session.close()
    broker.start()
    again = await MqttSession.open(settings(broker, "gw-a"))
    try:
        await again.publish("gh/v1/gw-a/up/event", b"after restart")
    finally:
        await again.close()
