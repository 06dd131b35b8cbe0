"""paho-mqtt 2.x wrapped as one async-friendly MQTT v5 session over TLS.

One :class:`MqttSession` is one connection: it is opened, used, and closed; it never reconnects
by itself (paho's own reconnect is switched off). Reconnecting with capped, jittered backoff is
the caller's job (``cloud_sync.uplink``), which keeps the policy in one place and testable.

paho calls its callbacks in its network thread; every result is handed to the event loop with
``loop.call_soon_threadsafe``. A QoS 1 publish resolves when the PUBACK arrives: success for any
reason code below 0x80 (e.g. 0x10 "no matching subscribers"), :class:`PublishRefused` for a
failure code (e.g. 0x87 "not authorised", which Mosquitto 2.0 sends to MQTT v5 clients when the
ACL denies a publish; v3.1.1 clients would get a silent success instead, hence v5 only).

TLS is always on, the broker certificate is always verified against the configured CA and its
hostname checked; there is no plaintext fallback.

Errors::

    SyncError (cloud_sync.errors)
    └── MqttError
        ├── MqttConnectError   TCP/TLS failed or the broker refused CONNECT (reason code kept)
        ├── MqttDisconnected   the session ended before the operation completed
        └── PublishRefused     the broker answered a publish with a failure reason code
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud_sync.errors import SyncError

__all__ = [
    "IncomingMessage",
    "MqttConnectError",
    "MqttDisconnected",
    "MqttError",
    "MqttSession",
    "MqttSettings",
    "PublishRefused",
    "Will",
    "tls_context",
]

_LOG = structlog.get_logger(__name__)


class MqttError(SyncError):
    pass


class MqttConnectError(MqttError):
    def __init__(self, message: str, *, reason_code: int | None = None) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class MqttDisconnected(MqttError):
    pass


class PublishRefused(MqttError):
    def __init__(self, topic: str, reason_code: int, reason: str) -> None:
        super().__init__(f"broker refused publish to {topic}: 0x{reason_code:02x} {reason}")
        self.topic = topic
        self.reason_code = reason_code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True
    qos: int = 1


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int
    ca_file: Path
    client_id: str
    username: str | None = None
    password: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    keepalive_s: int = 30
    connect_timeout_s: float = 15.0
    max_inflight: int = 64
    # 0: a fresh session every time (the gateway resends everything unacknowledged anyway).
    # > 0: a persistent session, so the broker queues QoS 1 messages while this client is away
    # (what central wants for the uplink topics).
    session_expiry_s: int = 0
    incoming_queue_size: int = 1024


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    topic: str
    payload: bytes


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(settings.ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if settings.client_cert is not None:
        ctx.load_cert_chain(
            str(settings.client_cert), str(settings.client_key) if settings.client_key else None
        )
    return ctx


def _connect_properties(settings: MqttSettings) -> Properties | None:
    if settings.session_expiry_s == 0:
        return None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = settings.session_expiry_s
    return props


class MqttSession:
    """One connected MQTT v5 session. Create with :meth:`open`; always :meth:`close`."""

    def __init__(self, settings: MqttSettings, loop: asyncio.AbstractEventLoop) -> None:
        self._settings = settings
        self._loop = loop
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
        )
        self._client.max_inflight_messages_set(settings.max_inflight)
        # Guards the two maps below, shared between paho's thread and the event loop's.
        # Never held while calling into paho, so it cannot deadlock with paho's own locks.
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[asyncio.Future[None], str]] = {}
        self._early: dict[int, ReasonCode] = {}
        self._subscribes: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._early_subscribes: dict[int, list[ReasonCode]] = {}
        self._connected: asyncio.Future[None] = loop.create_future()
        self._closed = asyncio.Event()
        self._close_reason: str = ""
        self.messages: asyncio.Queue[IncomingMessage] = asyncio.Queue(settings.incoming_queue_size)
        self.dropped_messages = 0
        # Called on the event loop whenever a message arrives or the session ends, so an owner
        # can wait on a single event instead of several futures.
        self.listener: Callable[[], None] | None = None
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # -- opening and closing -----------------------------------------------------------------
    @classmethod
    async def open(cls, settings: MqttSettings, *, will: Will | None = None) -> MqttSession:
        session = cls(settings, asyncio.get_running_loop())
        await session._connect(will)
        return session

    async def _connect(self, will: Will | None) -> None:
        s = self._settings
        client = self._client
        try:
            client.tls_set_context(tls_context(s))
        except (OSError, ValueError) as exc:
            raise MqttConnectError(f"cannot load TLS material: {exc}") from exc
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if will is not None:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        try:
            # connect() does the TCP connect and the TLS handshake (certificate verification):
            # blocking work, so it runs in a worker thread.
            await asyncio.wait_for(
                asyncio.to_thread(
                    client.connect,
                    s.host,
                    s.port,
                    s.keepalive_s,
                    clean_start=s.session_expiry_s == 0,
                    properties=_connect_properties(s),
                ),
                timeout=s.connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            # A timed-out connect may still complete in its thread: close whatever it opened.
            await self.close(reason="connect failed")
            raise MqttConnectError(f"cannot connect to {s.host}:{s.port}: {exc}") from exc
        client.loop_start()
        try:
            await asyncio.wait_for(asyncio.shield(self._connected), timeout=s.connect_timeout_s)
        except TimeoutError as exc:
            await self.close()
            raise MqttConnectError(f"no CONNACK from {s.host}:{s.port}") from exc
        except MqttError:
            await self.close()
            raise

    async def close(self, *, reason: str = "closed") -> None:
        """Disconnect cleanly (no Last Will) and stop paho's thread; idempotent."""
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self._finish(reason)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def close_reason(self) -> str:
        return self._close_reason

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # -- operations --------------------------------------------------------------------------
    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Queue a publish; the future completes on PUBACK (QoS 1) or when written (QoS 0)."""
        future: asyncio.Future[None] = self._loop.create_future()
        if self.closed:
            future.set_exception(MqttDisconnected(f"session closed: {self._close_reason}"))
            return future
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            reason = paho.error_string(info.rc)
            future.set_exception(MqttDisconnected(f"publish to {topic} not sent: {reason}"))
            return future
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._pending[info.mid] = (future, topic)
        if early is not None:
            self._resolve_publish(future, topic, early)
        return future

    async def subscribe(self, topic: str, *, qos: int = 1) -> None:
        future: asyncio.Future[list[ReasonCode]] = self._loop.create_future()
        result, mid = self._client.subscribe(topic, qos=qos)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttDisconnected(f"subscribe to {topic} not sent: {paho.error_string(result)}")
        with self._lock:
            early = self._early_subscribes.pop(mid, None)
            if early is None:
                self._subscribes[mid] = future
        codes = early if early is not None else await future
        for code in codes:
            if code.is_failure:
                raise PublishRefused(topic, code.value, str(code))

    # -- paho callbacks (paho's thread) ------------------------------------------------------
    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Properties | None
    ) -> None:
        if rc.is_failure:
            error = MqttConnectError(f"broker refused the connection: {rc}", reason_code=rc.value)
            self._loop.call_soon_threadsafe(self._set_connected, error)
        else:
            self._loop.call_soon_threadsafe(self._set_connected, None)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._loop.call_soon_threadsafe(self._set_connected, MqttConnectError("connection failed"))

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Properties | None
    ) -> None:
        self._loop.call_soon_threadsafe(self._finish, f"disconnected: {rc}")

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, rc: ReasonCode, props: Properties | None
    ) -> None:
        with self._lock:
            entry = self._pending.pop(mid, None)
            if entry is None:
                # paho can call back before publish() has returned the mid to us.
                self._early[mid] = rc
                return
        future, topic = entry
        self._loop.call_soon_threadsafe(self._resolve_publish, future, topic, rc)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        codes: list[ReasonCode],
        props: Properties | None,
    ) -> None:
        with self._lock:
            future = self._subscribes.pop(mid, None)
            if future is None:
                self._early_subscribes[mid] = codes
                return
        self._loop.call_soon_threadsafe(_set_result, future, codes)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._loop.call_soon_threadsafe(self._enqueue, IncomingMessage(message.topic, bytes(message.payload)))

    # -- event-loop side ---------------------------------------------------------------------
    def _set_connected(self, error: MqttError | None) -> None:
        if self._connected.done():
            return
        if error is None:
            self._connected.set_result(None)
        else:
            self._connected.set_exception(error)

    def _resolve_publish(self, future: asyncio.Future[None], topic: str, rc: ReasonCode) -> None:
        if future.done():
            return
        if rc.is_failure:
            future.set_exception(PublishRefused(topic, rc.value, str(rc)))
        else:
            future.set_result(None)

    def _enqueue(self, message: IncomingMessage) -> None:
        try:
            self.messages.put_nowait(message)
        except asyncio.QueueFull:
            # Acks are cumulative and central repeats them; the resend timer covers a lost one.
            self.dropped_messages += 1
            _LOG.warning("mqtt.incoming_dropped", topic=message.topic, dropped=self.dropped_messages)
        if self.listener is not None:
            self.listener()

    def _finish(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self._close_reason = reason
        self._closed.set()
        if not self._connected.done():
            self._connected.set_exception(MqttConnectError(f"connection closed before CONNACK: {reason}"))
            # Nobody may be awaiting it any more; mark the exception as retrieved.
            self._connected.exception()
        with self._lock:
            pending = list(self._pending.values())
            subscribes = list(self._subscribes.values())
            self._pending.clear()
            self._subscribes.clear()
            self._early.clear()
            self._early_subscribes.clear()
        for future, topic in pending:
            if not future.done():
                future.set_exception(MqttDisconnected(f"publish to {topic} unconfirmed: {reason}"))
        for sub in subscribes:
            if not sub.done():
                sub.set_exception(MqttDisconnected(f"subscribe unconfirmed: {reason}"))
        if self.listener is not None:
            self.listener()


def _set_result(future: asyncio.Future[list[ReasonCode]], codes: list[ReasonCode]) -> None:
    if not future.done():
        future.set_result(codes)
