"""Central's MQTT side: subscribe to every gateway's uplink and state, publish acks.

paho-mqtt 2.x (``CallbackAPIVersion.VERSION2``, MQTT v5, TLS with CA verification, never plaintext)
runs its network loop in its own thread. Incoming messages cross to asyncio through a queue
bounded by count and by bytes (``queue_size``, ``queue_max_bytes``): when ingest falls behind,
paho's thread blocks on the full queue, stops reading the socket, and TCP pushes back to the
broker, which holds the messages (QoS 1, persistent session).

The MQTT PUBACK is sent only after a batch has been stored or rejected and audited
(``manual_ack``), so a central crash between receipt and commit makes the broker deliver the batch
again. A message on any topic under a gateway's ``up/`` other than ``up/event`` and
``up/telemetry`` is rejected and audited as ``bad_route``.

Every ack is signed by central's key (``cloud_sync.downlink.DownlinkSigner``) and published from
the event loop, so the order of its ``dseq`` numbers is the order of publication.

Alarms overtake telemetry here too: event-lane batches and state messages go to their own small
queue and worker, which verifies and commits each group on its own (one short transaction), so an
alarm waits at most for the telemetry commit in progress, not for every telemetry batch that
arrived before it. Lanes have separate sequence spaces, so no order is lost; within a lane the
order of arrival is kept.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud_sync.ack import AckMessage
from cloud_sync.central.byte_queue import ByteBoundedQueue
from cloud_sync.central.config import BrokerConfig
from cloud_sync.central.ingest import Ingestor, Prepared, parse_uplink_topic
from cloud_sync.downlink import DownlinkSigner
from cloud_sync.ports import Lane

__all__ = ["CentralMqtt", "ack_topic"]

_LOG = structlog.get_logger(__name__)

UPLINK_FILTER: Final = "gh/v1/+/up/#"
STATE_FILTER: Final = "gh/v1/+/state"
_SESSION_EXPIRY_S: Final = 7 * 24 * 3600
# Batches committed together when they arrive faster than one commit takes (one fsync for all).
# Bounded in count and in bytes (≈ 50,000 backlog records) so that an alarm waiting for the
# store's lock waits for at most one such group.
_GROUP_MAX: Final = 32
_GROUP_MAX_BYTES: Final = 128 * 1024
_PRIORITY_QUEUE: Final = 64
_PRIORITY_QUEUE_BYTES: Final = 16 * 1024 * 1024
_PUT_WAIT_S: Final = 1.0


def ack_topic(gateway_id: str) -> str:
    return f"gh/v1/{gateway_id}/ack"


@dataclass(frozen=True, slots=True)
class _Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int


class CentralMqtt:
    """Async context manager; :meth:`run` is the ingest worker, to be run as a named task."""

    def __init__(self, config: BrokerConfig, ingestor: Ingestor, signer: DownlinkSigner) -> None:
        self._config = config
        self._ingestor = ingestor
        self._signer = signer
        self._queue: ByteBoundedQueue[_Incoming] = ByteBoundedQueue(
            max_items=config.queue_size, max_bytes=config.queue_max_bytes
        )
        self._priority: ByteBoundedQueue[_Incoming] = ByteBoundedQueue(
            max_items=_PRIORITY_QUEUE, max_bytes=_PRIORITY_QUEUE_BYTES
        )
        # Verified groups waiting for the store stage; small, so back-pressure reaches paho soon.
        self._verified: asyncio.Queue[tuple[list[_Incoming], list[Prepared]]] = asyncio.Queue(maxsize=2)
        self._stage_tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = threading.Event()
        self._subscribed = asyncio.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.acks_published = 0

    @property
    def queues(self) -> dict[str, ByteBoundedQueue[Any]]:
        """The ingest queues by lane, for metrics and health (read them, never change them)."""
        return {"telemetry": self._queue, "event": self._priority}

    @property
    def filters(self) -> list[str]:
        """What central subscribes; with ``shared_group`` as MQTT v5 shared subscriptions."""
        group = self._config.shared_group
        plain = [UPLINK_FILTER, STATE_FILTER]
        return plain if group is None else [f"$share/{group}/{f}" for f in plain]

    @property
    def subscribed(self) -> asyncio.Event:
        """Set once the subscriptions are granted; cleared while disconnected."""
        return self._subscribed

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self._config.ca_file))
        if self._config.client_cert is not None:
            ctx.load_cert_chain(
                str(self._config.client_cert.cert_file), str(self._config.client_cert.key_file)
            )
        return ctx

    async def __aenter__(self) -> CentralMqtt:
        self._loop = asyncio.get_running_loop()
        client = self._client
        client.tls_set_context(self._ssl_context())
        password = self._config.resolved_password()
        if self._config.username is not None and (password is not None or self._config.client_cert is None):
            client.username_pw_set(self._config.username, password)
        client.reconnect_delay_set(min_delay=1, max_delay=self._config.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = _SESSION_EXPIRY_S
        # A persistent session: batches published while central is down wait at the broker.
        client.connect_async(
            self._config.host,
            self._config.port,
            keepalive=self._config.keepalive_s,
            clean_start=False,
            properties=props,
        )
        client.loop_start()
        _LOG.info("central mqtt starting", host=self._config.host, port=self._config.port)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    # -- paho's thread ---------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            _LOG.error("central mqtt connect refused", reason=str(reason))
            return
        _LOG.info("central mqtt connected")
        client.subscribe([(f, 1) for f in self.filters])

    def _on_subscribe(self, _c: mqtt.Client, _ud: Any, _mid: int, reasons: list[Any], _props: Any) -> None:
        if any(r.is_failure for r in reasons):
            _LOG.error("central mqtt subscription refused", reasons=[str(r) for r in reasons])
            return
        _LOG.info("central mqtt subscribed", filters=self.filters)
        self._call_in_loop(self._subscribed.set)

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._call_in_loop(self._subscribed.clear)
        if not self._closing.is_set():
            _LOG.warning("central mqtt disconnected; paho reconnects", reason=str(reason))

    def _call_in_loop(self, fn: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn)

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        item = _Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        route = parse_uplink_topic(item.topic)
        queue = self._queue if route is not None and route[1] == Lane.TELEMETRY.value else self._priority
        future = asyncio.run_coroutine_threadsafe(queue.put(item, len(item.payload) + len(item.topic)), loop)
        # Block paho's thread while the queue is full (back-pressure), but wake up to notice closing.
        while not self._closing.is_set():
            try:
                future.result(timeout=_PUT_WAIT_S)
                return
            except concurrent.futures.TimeoutError:
                continue
        future.cancel()

    # -- asyncio side ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Two pipelined stages: decode+verify one group while the previous one commits."""
        async with asyncio.TaskGroup() as tg:
            self._stage_tasks = [
                tg.create_task(self._verify_stage(), name="central-mqtt-verify"),
                tg.create_task(self._store_stage(), name="central-mqtt-store"),
                tg.create_task(self._priority_stage(), name="central-mqtt-events"),
            ]

    async def _take_group(self, queue: ByteBoundedQueue[_Incoming]) -> tuple[list[_Incoming], list[Prepared]]:
        group = [await queue.get()]
        size = len(group[0].payload)
        # Whatever else is already waiting joins the group: one database commit for all.
        while len(group) < _GROUP_MAX and size < _GROUP_MAX_BYTES and not queue.empty():
            group.append(await queue.get_nowait())
            size += len(group[-1].payload)
        batches = [(item.payload, *route) for item in group if (route := parse_uplink_topic(item.topic))]
        prepared = (
            await asyncio.to_thread(self._ingestor.verify_many, batches, transport="mqtt") if batches else []
        )
        return group, prepared

    async def _verify_stage(self) -> None:
        while True:
            await self._verified.put(await self._take_group(self._queue))

    async def _priority_stage(self) -> None:
        """Events and state: verify and commit at once, beside the telemetry pipeline."""
        while True:
            group, prepared = await self._take_group(self._priority)
            acks = await asyncio.to_thread(self._commit_group, group, prepared)
            for gw, ack in acks:
                self._publish_ack(gw, ack)

    async def _store_stage(self) -> None:
        while True:
            group, prepared = await self._verified.get()
            acks = await asyncio.to_thread(self._commit_group, group, prepared)
            for gw, ack in acks:
                self._publish_ack(gw, ack)

    def _commit_group(self, group: list[_Incoming], prepared: list[Prepared]) -> list[tuple[str, AckMessage]]:
        acks: list[tuple[str, AckMessage]] = []
        if prepared:
            # One ack per gateway and lane per group: the last one carries the newest position.
            latest: dict[tuple[str, Lane], AckMessage] = {}
            for outcome in self._ingestor.commit(prepared, transport="mqtt"):
                if outcome.ack is not None:
                    latest[(outcome.gateway_id, outcome.ack.lane)] = outcome.ack
            acks += [(gw, ack) for (gw, _lane), ack in sorted(latest.items())]
        for item in group:
            if parse_uplink_topic(item.topic) is not None:
                continue
            parts = item.topic.split("/")
            if len(parts) == 4 and parts[3] == "state":
                acks += [(parts[2], ack) for ack in self._ingestor.note_state(parts[2], item.payload)]
            else:
                _LOG.warning("message on an unexpected topic", topic=item.topic[:200])
        # Rejections of this group not yet written (no batch was stored with them): audit them
        # now, in one transaction for the group, before the broker may forget the messages.
        if self._ingestor.audit_pending:
            self._ingestor.flush_audit()
        # Only now (stored, or rejected and audited) may the broker forget the messages; if the
        # database raised, no PUBACK goes out and the broker delivers them again after a restart.
        for item in group:
            if item.qos > 0:
                self._client.ack(item.mid, item.qos)
        return acks

    def publish_command(self, gateway_id: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        """Publish a signed command (QoS 1) on ``gh/v1/{gateway_id}/cmd``; thread-safe (paho's
        publish is). The caller waits on the returned info (``cloud_sync.central.commands``)."""
        return self._client.publish(f"gh/v1/{gateway_id}/cmd", payload, qos=1)

    def _publish_ack(self, gateway_id: str, ack: AckMessage) -> None:
        info = self._client.publish(ack_topic(gateway_id), self._signer.sign_ack(gateway_id, ack), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            # Not connected: the gateway gets a fresh ack when it next publishes or comes online.
            _LOG.warning("ack not published", gateway=gateway_id, lane=str(ack.lane), rc=info.rc)
            return
        self.acks_published += 1
