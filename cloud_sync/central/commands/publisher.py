"""Where central's signed commands go: QoS 1 on ``gh/v1/{gateway}/cmd``.

Two ways, one interface (:class:`CommandPublisher`):

* :class:`IngestMqttPublisher` — a process that ingests over MQTT (``--role all``) already has a
  connection as the broker's ``central`` user, which the ACL allows to publish commands;
* :class:`MqttCommandPublisher` — an API-only process (``--role api``) opens a small connection
  of its own with the same credentials (client id ``<client_id>-cmd``), on first use, and opens
  it again after it dropped.

``publish`` returns once the broker has the message (PUBACK), or raises :class:`NotSent` when
it cannot have it. A gateway that is offline does not get it later: gateways keep no session,
and ``not_after`` bounds the command anyway (it shows as ``expired``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Protocol

import paho.mqtt.client as mqtt
import structlog

from cloud_sync.central.config import BrokerConfig
from cloud_sync.mqtt_client import MqttError, MqttSession, MqttSettings

__all__ = ["CommandPublisher", "IngestMqttPublisher", "MqttCommandPublisher", "NotSent", "command_topic"]

_LOG = structlog.get_logger(__name__)
_PUBACK_WAIT_S: Final = 10.0


def command_topic(gateway_id: str) -> str:
    return f"gh/v1/{gateway_id}/cmd"


class NotSent(Exception):
    """The broker did not take the command (no connection, refused); the reason is the text."""


class CommandPublisher(Protocol):
    async def publish(self, gateway_id: str, payload: bytes) -> None: ...

    async def close(self) -> None: ...


class _PahoPublishing(Protocol):
    def publish_command(self, gateway_id: str, payload: bytes) -> Any: ...


class IngestMqttPublisher:
    """Through the ingest connection (``CentralMqtt.publish_command``), paho's own thread."""

    def __init__(self, mqtt_side: _PahoPublishing) -> None:
        self._mqtt = mqtt_side

    async def publish(self, gateway_id: str, payload: bytes) -> None:
        info: mqtt.MQTTMessageInfo = self._mqtt.publish_command(gateway_id, payload)
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            # paho keeps a QoS 1 message queued while it reconnects: not lost, just late, and
            # not_after still bounds it. The command stays pending.
            _LOG.warning("command queued while central's broker connection is down", gateway=gateway_id)
            return
        try:
            await asyncio.to_thread(info.wait_for_publish, _PUBACK_WAIT_S)
        except (ValueError, RuntimeError) as exc:
            raise NotSent(str(exc)) from exc

    async def close(self) -> None:
        return None  # the connection is the ingest side's


class MqttCommandPublisher:
    """A connection of its own, for a central process that does not ingest over MQTT."""

    def __init__(self, config: BrokerConfig) -> None:
        self._config = config
        self._session: MqttSession | None = None
        self._lock = asyncio.Lock()

    def _settings(self) -> MqttSettings:
        c = self._config
        return MqttSettings(
            host=c.host,
            port=c.port,
            ca_file=c.ca_file,
            client_id=f"{c.client_id}-cmd",
            username=c.username,
            password=c.resolved_password(),
            client_cert=c.client_cert.cert_file if c.client_cert else None,
            client_key=c.client_cert.key_file if c.client_cert else None,
            keepalive_s=c.keepalive_s,
            connect_timeout_s=10.0,
        )

    async def _open(self) -> MqttSession:
        async with self._lock:
            if self._session is None or self._session.closed:
                try:
                    self._session = await MqttSession.open(self._settings())
                except MqttError as exc:
                    raise NotSent(f"broker unavailable: {exc}") from exc
            return self._session

    async def publish(self, gateway_id: str, payload: bytes) -> None:
        for attempt in (1, 2):  # a session that dropped since the last command: open it again once
            session = await self._open()
            try:
                await asyncio.wait_for(
                    session.publish(command_topic(gateway_id), payload, qos=1), _PUBACK_WAIT_S
                )
                return
            except (MqttError, TimeoutError) as exc:
                if attempt == 2 or not session.closed:
                    raise NotSent(str(exc) or "no PUBACK from the broker") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
