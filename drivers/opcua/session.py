"""The link to one OPC UA server: secure channel, session, subscriptions, polls and writes.

One ``OpcUaLink`` per ``opcua`` bus. It connects (checking the server certificate against the
trust list before any secure channel is opened, and never falling back to a weaker policy),
resolves browse paths, then:

- groups subscribed points by sampling interval into one subscription each, with a
  data-change filter (absolute deadband) where the report policy has one;
- polls the rest (and all points of a server that refuses subscriptions) with one batched Read
  per interval;
- hands every value to its device's ``pushed()`` with the server's source timestamp.

When the session or channel is lost every device gets one ``LinkState(False, reason)``; the link
retries with a capped, jittered exponential backoff on a fresh client, re-resolves, re-creates
the subscriptions (whose first notification re-sends every current value, so nothing is left
stale) and sends ``LinkState(True)`` once before the first value.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import structlog
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import Subscription
from asyncua.crypto import security_policies
from asyncua.ua.attribute_ids import AttributeIds

from core.errors import ConnectionLost, DeviceError, TransportError
from core.model import Event, Quality, Reason, Value
from drivers.base import LinkState, Reading
from drivers.opcua.calls import LinkRefused, call, status_name
from drivers.opcua.certs import (
    CertificateProblem,
    UntrustedCertificate,
    check_trusted,
    ensure_application_certificate,
)
from drivers.opcua.codec import VARIANT_TYPE_NAMES, encode, quality_of
from drivers.opcua.config import Identity, OpcUaBus, PointMode, SecurityMode, SecurityPolicy
from drivers.opcua.device import Item, OpcUaDevice
from drivers.opcua.resolve import resolve_items
from drivers.opcua.subscription import ChangesHandler, create_bulk_subscription

__all__ = ["LinkRefused", "LinkStats", "OpcUaLink", "default_application_uri", "first_certificate"]

_LOG = structlog.get_logger(__name__)

_POLICY_CLASSES: dict[SecurityPolicy, Any] = {
    SecurityPolicy.BASIC256SHA256: security_policies.SecurityPolicyBasic256Sha256,
    SecurityPolicy.AES128_SHA256_RSAOAEP: security_policies.SecurityPolicyAes128Sha256RsaOaep,
    SecurityPolicy.AES256_SHA256_RSAPSS: security_policies.SecurityPolicyAes256Sha256RsaPss,
}
_MODES = {
    SecurityMode.SIGN: ua.MessageSecurityMode.Sign,
    SecurityMode.SIGN_AND_ENCRYPT: ua.MessageSecurityMode.SignAndEncrypt,
}
# A monitored item the server would not filter: asked again without the deadband.
_FILTER_REFUSED = frozenset({0x80430000, 0x80440000, 0x80450000})
_MIN_PUBLISH_MS = 50.0


class LinkStats:
    __slots__ = ("connects", "losses", "polls", "values")

    def __init__(self) -> None:
        self.connects = 0
        self.losses = 0
        self.values = 0
        self.polls = 0


def default_application_uri() -> str:
    return f"urn:{socket.gethostname()}:gatehouse"


class OpcUaLink:
    """Async context manager: runs the session to ``bus.endpoint`` for ``devices``."""

    def __init__(
        self,
        bus: OpcUaBus,
        devices: Sequence[OpcUaDevice],
        *,
        site_dir: Path,
        events: Callable[[Event], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._bus = bus
        self.devices = list(devices)
        self._site_dir = site_dir
        self._events = events
        self._rng = rng or random.Random()
        self._wall = wall
        self._app_uri = bus.application_uri or default_application_uri()
        self._client: Client | None = None
        self._online: bool | None = None
        self._lost: asyncio.Future[str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_refusal = ""
        self.last_error = ""
        self.stats = LinkStats()
        self.polled_only = False  # the server refused subscriptions this session

    def _path(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self._site_dir / path

    @property
    def items(self) -> list[Item]:
        return [item for device in self.devices for item in device.items.values()]

    # -- lifetime -----------------------------------------------------------------------------

    async def __aenter__(self) -> OpcUaLink:
        self._task = asyncio.create_task(self._run(), name=f"opcua:{self._bus.id}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while True:
            client: Client | None = None
            healthy = False
            try:
                client = self._new_client()
                await self._connect(client)
                failures = 0
                self._last_refusal = ""
                healthy = True
                reason = await self._serve(client)
                healthy = False
            except LinkRefused as exc:
                reason = str(exc)
                await self._refused(reason)
            except TransportError as exc:
                reason = str(exc) or type(exc).__name__
            finally:
                self._client = None
                if client is not None:
                    await self._close(client, healthy=healthy)
            self.last_error = reason
            self._set_online(False, reason)
            failures += 1
            bus = self._bus
            delay = min(bus.backoff_max_s, bus.reconnect_min_s * 2 ** min(failures - 1, 16))
            delay *= self._rng.uniform(0.5, 1.0)
            _LOG.info("opcua reconnect scheduled", bus=bus.id, delay_s=round(delay, 2), error=reason)
            await asyncio.sleep(delay)

    def _set_online(self, online: bool, error: str = "") -> None:
        if self._online is online:
            return
        self._online = online
        if online:
            self.stats.connects += 1
            _LOG.info("opcua session up", bus=self._bus.id, endpoint=self._bus.endpoint)
        else:
            if self._online is not None:
                self.stats.losses += 1
            _LOG.warning("opcua session down", bus=self._bus.id, endpoint=self._bus.endpoint, error=error)
        state = LinkState(online, error)
        for device in self.devices:
            device.put(state)

    async def _refused(self, message: str) -> None:
        if message == self._last_refusal:
            return
        self._last_refusal = message
        _LOG.error("opcua connection refused", bus=self._bus.id, error=message)
        if self._events is not None:
            await self._events(Event("bus.refused", self._bus.id, self._wall(), {"error": message}))

    # -- connecting ---------------------------------------------------------------------------

    async def open_client(self) -> Client:
        """A connected client with the bus's security and identity (for discovery); close it
        with ``close_client``. Raises ``LinkRefused`` or another ``TransportError``."""
        client = self._new_client()
        try:
            await self._connect(client)
        except BaseException:
            await self._close(client, healthy=False)
            raise
        return client

    async def close_client(self, client: Client) -> None:
        await self._close(client, healthy=True)

    def _new_client(self) -> Client:
        bus = self._bus
        client = Client(bus.endpoint, timeout=bus.timeout_ms / 1000, watchdog_intervall=bus.keepalive_s)
        client.application_uri = self._app_uri
        client.name = client.description = f"Gatehouse gateway ({socket.gethostname()})"
        client.product_uri = "urn:gatehouse:gateway"
        client.session_timeout = int(bus.session_timeout_s * 1000)
        return client

    async def _connect(self, client: Client) -> None:
        bus = self._bus
        # GetEndpoints over an unsecured channel is how every client learns what a server
        # offers and its certificate; no session is opened on it.
        endpoints = await call(client.connect_and_get_server_endpoints(), timeout_s=2 * bus.timeout_ms / 1000)
        if bus.security_policy is SecurityPolicy.NONE:
            if not any(e.SecurityPolicyUri == security_policies.SecurityPolicyNone.URI for e in endpoints):
                raise LinkRefused(
                    f"server offers no None-security endpoint (it offers {_offered(endpoints)}); "
                    "set security_policy/security_mode to one of those"
                )
        else:
            await self._secure(client, endpoints)
        if bus.identity is Identity.USERNAME:
            assert bus.username is not None and bus.password_file is not None
            client.set_user(bus.username)
            client.set_password(self._password(self._path(bus.password_file)))
        elif bus.identity is Identity.CERTIFICATE:
            assert bus.user_certificate is not None and bus.user_private_key is not None
            await client.load_client_certificate(str(self._path(bus.user_certificate)))
            await client.load_private_key(self._path(bus.user_private_key))
        # Generous: a secure handshake is several RSA operations on a slow gateway.
        await call(client.connect(auto_reconnect=False), timeout_s=4 * bus.timeout_ms / 1000, refusal=True)
        self._client = client

    async def _secure(self, client: Client, endpoints: list[ua.EndpointDescription]) -> None:
        bus = self._bus
        cert_path, key_path = self._path(bus.certificate), self._path(bus.private_key)
        host = socket.gethostname()
        try:
            await asyncio.to_thread(
                ensure_application_certificate,
                cert_path,
                key_path,
                self._app_uri,
                host,
                create=bus.create_certificate,
            )
        except CertificateProblem as exc:
            raise LinkRefused(str(exc)) from exc
        policy_cls = _POLICY_CLASSES[bus.security_policy]
        mode = _MODES[bus.security_mode]
        chosen = [e for e in endpoints if e.SecurityPolicyUri == policy_cls.URI and e.SecurityMode == mode]
        if not chosen:
            raise LinkRefused(
                f"server offers no {bus.security_policy.value}/{bus.security_mode.value} endpoint "
                f"(it offers {_offered(endpoints)}); change security_policy/security_mode"
            )
        server_der = first_certificate(chosen[0].ServerCertificate or b"")
        if not server_der:
            raise LinkRefused("the server's endpoint carries no certificate; cannot open a secure channel")
        try:
            await asyncio.to_thread(
                check_trusted, server_der, self._path(bus.trust_dir), self._path(bus.rejected_dir)
            )
        except UntrustedCertificate as exc:
            raise LinkRefused(str(exc)) from exc
        try:
            await client.set_security(
                policy_cls, str(cert_path), str(key_path), server_certificate=server_der, mode=mode
            )
        except (ValueError, OSError) as exc:
            raise LinkRefused(
                f"cannot load the gateway certificate {cert_path} / key {key_path}: {exc}"
            ) from exc

    @staticmethod
    def _password(path: Path) -> str:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise LinkRefused(f"cannot read password_file {path}: {exc.strerror}") from exc
        return lines[0] if lines else ""

    async def _close(self, client: Client, *, healthy: bool) -> None:
        client.connection_lost_callback = None
        if healthy:
            with suppress(TransportError, DeviceError):
                await call(client.disconnect(), timeout_s=self._bus.timeout_ms / 1000)
            return
        # A dead transport: stop asyncua's tasks and drop the socket, without a CloseSession
        # that could only time out.
        with suppress(TransportError, DeviceError):
            await call(client.close_session(), timeout_s=1.0)
        with suppress(OSError, AttributeError):
            client.disconnect_socket()

    # -- one session --------------------------------------------------------------------------

    async def _serve(self, client: Client) -> str:
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[str] = loop.create_future()
        self._lost = lost

        async def on_lost(exc: Exception) -> None:
            self._lose(f"connection lost: {exc or type(exc).__name__}")

        client.connection_lost_callback = on_lost
        unresolved = await resolve_items(
            client, self.devices, self._bus.max_nodes_per_request, self._bus.timeout_ms / 1000
        )
        self._set_online(True)
        for item, status in unresolved:
            quality, reason = quality_of(status)
            item.device.put(Reading(item.key, None, quality, reason))
        live = [i for i in self.items if i.node is not None]
        tasks: list[asyncio.Task[None]] = []
        try:
            polled = [i for i in live if i.mode is PointMode.POLL]
            subscribed = [i for i in live if i.mode is PointMode.SUBSCRIBE]
            self.polled_only = False
            polled += await self._subscribe(client, subscribed, tasks)
            by_interval: dict[int, list[Item]] = {}
            for item in polled:
                by_interval.setdefault(max(item.sampling_ms, 100), []).append(item)
            for interval_ms, items in sorted(by_interval.items()):
                tasks.append(asyncio.create_task(self._guard(self._poll_loop(client, interval_ms, items))))
            return await lost
        except TransportError as exc:
            return str(exc)
        finally:
            self._lost = None
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task

    def _lose(self, reason: str) -> None:
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)

    async def _guard(self, coro: Awaitable[None]) -> None:
        try:
            await coro
        except TransportError as exc:
            self._lose(str(exc) or type(exc).__name__)

    # -- subscriptions ------------------------------------------------------------------------

    async def _subscribe(
        self, client: Client, items: list[Item], tasks: list[asyncio.Task[None]]
    ) -> list[Item]:
        """Create one subscription per sampling interval; returns the items to poll instead."""
        by_interval: dict[int, list[Item]] = {}
        for item in items:
            by_interval.setdefault(item.sampling_ms, []).append(item)
        fallback: list[Item] = []
        for interval_ms, group in sorted(by_interval.items()):
            handles: dict[int, Item] = {}
            try:
                sub = await call(
                    create_bulk_subscription(
                        client,
                        max(float(interval_ms), _MIN_PUBLISH_MS),
                        self._changes_handler(handles),
                        self._on_status,
                    ),
                    timeout_s=self._bus.timeout_ms / 1000,
                )
            except DeviceError as exc:
                _LOG.warning(
                    "server refused a subscription; polling instead", bus=self._bus.id, error=str(exc)
                )
                self.polled_only = True
                fallback.extend(group)
                continue
            await self._monitor(sub, group, handles)
        return fallback

    async def _monitor(self, sub: Subscription, items: list[Item], handles: dict[int, Item]) -> None:
        """Create the monitored items of ``items`` in batches; an item whose deadband filter the
        server refuses is asked for again without it."""
        step = self._bus.max_nodes_per_request
        retry: list[Item] = []
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            refused = await self._create_items(sub, chunk, handles, with_filter=True)
            retry.extend(
                item for item, code in refused if code in _FILTER_REFUSED and item.deadband is not None
            )
            self._report_refused(
                [(i, c) for i, c in refused if not (c in _FILTER_REFUSED and i.deadband is not None)]
            )
        if retry:
            self._report_refused(await self._create_items(sub, retry, handles, with_filter=False))

    async def _create_items(
        self, sub: Subscription, items: list[Item], handles: dict[int, Item], *, with_filter: bool
    ) -> list[tuple[Item, int]]:
        requests = []
        for item in items:
            handle = len(handles) + 1
            handles[handle] = item
            requests.append(_monitored_item(item, handle, item.deadband if with_filter else None))
        results = await call(sub.create_monitored_items(requests), timeout_s=self._bus.timeout_ms / 1000)
        return [
            (item, int(result.value))
            for item, result in zip(items, results, strict=True)
            if isinstance(result, ua.StatusCode)
        ]

    def _report_refused(self, refused: list[tuple[Item, int]]) -> None:
        for item, code in refused:
            quality, reason = quality_of(code)
            _LOG.warning("monitored item refused", point=item.key, status=status_name(code))
            item.device.put(Reading(item.key, None, quality, reason))

    def _changes_handler(self, handles: dict[int, Item]) -> ChangesHandler:
        deliver = self._deliver

        def on_changes(notifications: Sequence[ua.MonitoredItemNotification]) -> None:
            get = handles.get
            for notification in notifications:
                item = get(notification.ClientHandle)
                if item is not None:
                    deliver(item, notification.Value)

        return on_changes

    def _on_status(self, status: ua.StatusCode) -> None:
        if status.is_bad():
            self._lose(f"subscription ended by the server: {status.name}")

    def _deliver(self, item: Item, dv: ua.DataValue) -> None:
        status = dv.StatusCode
        code = status.value if status is not None else 0
        variant = dv.Value
        raw = variant.Value if variant is not None else None
        stamp = dv.SourceTimestamp or dv.ServerTimestamp
        source_ts = stamp.timestamp() if stamp is not None else None
        if not code & 0xC0000000:
            value, quality, reason = item.convert(raw)
        else:
            quality, reason = quality_of(code)
            value = None
            if quality is Quality.UNCERTAIN and raw is not None:
                value, converted, why = item.convert(raw)
                if converted is Quality.BAD:
                    quality, reason = converted, why
        self.stats.values += 1
        item.device.put(Reading(item.key, value, quality, reason, source_ts))

    # -- polling ------------------------------------------------------------------------------

    async def _poll_loop(self, client: Client, interval_ms: int, items: list[Item]) -> None:
        loop = asyncio.get_running_loop()
        period = interval_ms / 1000
        due = loop.time()
        while True:
            await self.read_items(client, items)
            due += period
            now = loop.time()
            if due < now:  # missed ticks are skipped, not bunched
                due = now + period - (now - due) % period
            await asyncio.sleep(due - now)

    async def read_items(self, client: Client, items: list[Item]) -> None:
        """One batched Read per ``max_nodes_per_request`` items, delivered as readings."""
        step = self._bus.max_nodes_per_request
        timeout_s = self._bus.timeout_ms / 1000
        for start in range(0, len(items), step):
            chunk = [item for item in items[start : start + step] if item.node is not None]
            nodes = [item.node for item in chunk if item.node is not None]
            try:
                values = await call(
                    client.uaclient.read_attributes(nodes, AttributeIds.Value), timeout_s=timeout_s
                )
            except DeviceError as exc:
                for item in chunk:
                    item.device.put(Reading(item.key, None, Quality.BAD, Reason.DEVICE_ERROR))
                _LOG.warning("server refused a read", bus=self._bus.id, error=str(exc))
                continue
            self.stats.polls += 1
            for item, dv in zip(chunk, values, strict=True):
                self._deliver(item, dv)

    # -- writes -------------------------------------------------------------------------------

    async def write_item(self, item: Item, value: Value, *, verify: bool) -> Value | None:
        client = self._client
        if client is None or not self._online:
            raise ConnectionLost(f"not connected to {self._bus.endpoint}: {self.last_error or 'connecting'}")
        if item.node is None:
            raise DeviceError(f"point '{item.key}' has no node on the server (see its quality)")
        assert item.point.type is not None  # the config model requires it for writable points
        raw = encode(item.point, value)
        variant = ua.Variant(raw, getattr(ua.VariantType, VARIANT_TYPE_NAMES[item.point.type]))
        timeout_s = self._bus.timeout_ms / 1000
        results = await call(
            client.uaclient.write_attributes([item.node], [ua.DataValue(variant)], AttributeIds.Value),
            timeout_s=timeout_s,
        )
        status = results[0]
        if not status.is_good():
            raise DeviceError(
                f"server refused writing {value!r} to '{item.key}' ({item.point.address}): {status.name}",
                code=status.value,
            )
        if not verify:
            return None
        values = await call(
            client.uaclient.read_attributes([item.node], AttributeIds.Value), timeout_s=timeout_s
        )
        dv = values[0]
        code = dv.StatusCode.value if dv.StatusCode is not None else 0
        if code & 0xC0000000:
            raise DeviceError(f"read-back of '{item.key}' failed: {status_name(code)}", code=code)
        readback, quality, _reason = item.convert(dv.Value.Value if dv.Value is not None else None)
        if quality is Quality.BAD:
            raise DeviceError(f"read-back of '{item.key}' gave an unusable value {readback!r}")
        return readback


def _monitored_item(item: Item, handle: int, deadband: float | None) -> ua.MonitoredItemCreateRequest:
    params = ua.MonitoringParameters()
    params.ClientHandle = handle
    params.SamplingInterval = float(item.sampling_ms)
    params.QueueSize = item.point.queue_size
    params.DiscardOldest = True
    if deadband is not None:
        flt = ua.DataChangeFilter()
        flt.Trigger = ua.DataChangeTrigger.StatusValue
        flt.DeadbandType = ua.DeadbandType.Absolute
        flt.DeadbandValue = float(deadband)
        params.Filter = flt
    read_id = ua.ReadValueId()
    read_id.NodeId = item.node
    read_id.AttributeId = AttributeIds.Value
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = read_id
    request.MonitoringMode = ua.MonitoringMode.Reporting
    request.RequestedParameters = params
    return request


def _offered(endpoints: list[ua.EndpointDescription]) -> str:
    names = sorted({f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}" for e in endpoints})
    return ", ".join(names) or "nothing"


def first_certificate(chain: bytes) -> bytes:
    """The first DER certificate of a concatenated chain (a server may send its chain)."""
    if len(chain) < 4 or chain[0] != 0x30:
        return chain
    length_byte = chain[1]
    if length_byte < 0x80:
        return chain[: 2 + length_byte]
    count = length_byte & 0x7F
    length = int.from_bytes(chain[2 : 2 + count], "big")
    return chain[: 2 + count + length]
