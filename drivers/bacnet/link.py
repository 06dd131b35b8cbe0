"""``BacnetLink``: the gateway's one bacpypes3 application on a ``bacnet_ip`` bus.

Every request to a device goes through :meth:`BacnetLink.call`, which limits the requests in
flight per device, puts a backstop deadline on bacpypes3's own APDU timeout and retries, and
translates bacpypes3's failures (``BaseException`` subclasses) to ``core.errors``. The link
also finds devices by who-is, reads each device's segmentation and max-APDU once, registers
with a BBMD as a foreign device when configured, and hands COV notifications and I-Am
announcements to the subscriptions (``drivers.bacnet.cov``).

Polls use :meth:`BacnetLink.read_multiple_fast`: the request's service data is built once by
``drivers.bacnet.rpm_codec`` and the ACK comes back as bytes, decoded by the same module; an
answer holding values it does not decode is decoded by bacpypes3 instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace, TracebackType
from typing import Any, TypeVar

import structlog

from core.errors import DeviceTimeout, FramingError, TransportError
from core.model import Event
from drivers.bacnet.config import BacnetBus, parse_host_port
from drivers.bacnet.errors import Refusal, bacnet_failures, translate
from drivers.bacnet.objects import ReadBudget
from drivers.bacnet.rpm_codec import SERVICE_CHOICE, PropertyAccessError, ResultRow, decode_ack

__all__ = ["BacnetLink", "Peer"]

_LOG = structlog.get_logger(__name__)
T = TypeVar("T")

EventSink = Callable[[Event], Awaitable[None]]


@dataclass(eq=False)
class Peer:
    """One remote device as the link knows it."""

    instance: int
    configured_address: str | None
    address: Any = None  # bacpypes3 Address once known
    budget: ReadBudget | None = None
    rpm: bool = True  # False after the device refused ReadPropertyMultiple
    limit: int | None = None  # objects per RPM after an answer did not fit
    semaphore: asyncio.Semaphore | None = None
    requests: int = 0

    @property
    def label(self) -> str:
        return f"device {self.instance}"


class BacnetLink:
    """One bacpypes3 application bound to the bus's UDP endpoint."""

    def __init__(self, bus: BacnetBus, *, events: EventSink, wall: Callable[[], float]) -> None:
        self.bus = bus
        self._events = events
        self._wall = wall
        self.app: Any = None
        self.peers: dict[int, Peer] = {}
        self.local_address = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._failures = bacnet_failures()
        # set by drivers.bacnet.cov.CovManager: notification and I-Am handlers
        self.on_notification: Callable[[Any, int, Any, list[Any]], bool] | None = None
        self.on_i_am: Callable[[int, Any], None] | None = None
        # backstop over bacpypes3's own timeout: every attempt, plus a margin
        self.deadline_s = bus.timeout_ms / 1000.0 * (bus.retries + 1) + 1.0
        # (device address, invoke id) of fast RPM requests in flight: their ACKs stay bytes
        self._raw_answers: set[tuple[Any, int]] = set()
        self.fallback_decodes = 0  # fast RPM answers bacpypes3 had to decode

    def peer(self, instance: int, address: str | None) -> Peer:
        peer = self.peers.get(instance)
        if peer is None:
            peer = Peer(instance, address, semaphore=asyncio.Semaphore(self.bus.requests_in_flight))
            self.peers[instance] = peer
        return peer

    # -- lifetime ----------------------------------------------------------------------------

    async def __aenter__(self) -> BacnetLink:
        self.app = self._build_app()
        if self.bus.bbmd is not None:
            self._tasks.append(asyncio.create_task(self._bbmd_loop(), name=f"bacnet-bbmd:{self.bus.id}"))
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.app is not None:
            self.app.close()
            self.app = None

    def _build_app(self) -> Any:
        from bacpypes3.basetypes import Segmentation
        from bacpypes3.ipv4.link import ForeignLinkLayer, NormalLinkLayer
        from bacpypes3.local.device import DeviceObject
        from bacpypes3.pdu import IPv4Address

        from drivers.bacnet.app import gateway_app_class, keep_raw_rpm_acks

        bus = self.bus
        device = DeviceObject(
            objectIdentifier=("device", bus.device_instance),
            objectName=f"gatehouse-{bus.id}",
            vendorIdentifier=999,
            vendorName="Gatehouse",
            modelName="gatehouse",
            maxApduLengthAccepted=bus.max_apdu,
            segmentationSupported=Segmentation.segmentedBoth,
            maxSegmentsAccepted=16,
            apduTimeout=bus.timeout_ms,
            numberOfApduRetries=bus.retries,
            apduSegmentTimeout=bus.timeout_ms,
        )
        app = gateway_app_class().from_object_list([device])
        app.link = self
        keep_raw_rpm_acks(app, self._raw_answers)
        # bacpypes3 reads six settings of this object for every transaction, each through the
        # local object's slow attribute machinery: give its transaction layer a plain copy
        app.asap.device_object = SimpleNamespace(
            numberOfApduRetries=bus.retries,
            apduTimeout=bus.timeout_ms,
            segmentationSupported=Segmentation.segmentedBoth,
            apduSegmentTimeout=bus.timeout_ms,
            maxSegmentsAccepted=16,
            maxApduLengthAccepted=bus.max_apdu,
        )
        host, _, prefix = bus.address.partition("/")
        sock: socket.socket | None = None
        port = bus.port
        if port == 0:
            # an ephemeral port: bind it here so the address the stack uses is the real one
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        text = f"{host}/{prefix}:{port}" if prefix else f"{host}:{port}"
        address = IPv4Address(text)
        link: Any
        if bus.bbmd is not None:
            link = ForeignLinkLayer(address)
        else:
            link = NormalLinkLayer(address, bind_socket=sock)
        app.nsap.bind(link, address=address)
        app.link_layers[device.objectIdentifier] = link
        self.local_address = f"{host}:{port}"
        self._link_layer = link
        _LOG.info("bacnet.bus_open", bus=bus.id, address=self.local_address, bbmd=bool(bus.bbmd))
        return app

    async def _bbmd_loop(self) -> None:
        from bacpypes3.pdu import IPv4Address

        bbmd = self.bus.bbmd
        assert bbmd is not None
        host, port = parse_host_port(bbmd.address)
        every_s = bbmd.reregister_s or bbmd.ttl_s / 2.0
        registered: bool | None = None
        while True:
            self._link_layer.register(IPv4Address(f"{host}:{port}"), bbmd.ttl_s)
            await asyncio.sleep(min(every_s, 5.0) if not registered else every_s)
            now = getattr(self._link_layer, "bbmdRegistrationStatus", -1) == 0
            if now != registered:
                registered = now
                kind = "bus.bbmd_registered" if now else "bus.bbmd_unregistered"
                _LOG.warning(kind, bus=self.bus.id, bbmd=bbmd.address) if not now else _LOG.info(
                    kind, bus=self.bus.id
                )
                await self._events(Event(kind, self.bus.id, self._wall(), {"bbmd": bbmd.address}))

    # -- requests ----------------------------------------------------------------------------

    async def call(self, peer: Peer, what: str, request: Callable[[], Awaitable[T]]) -> T:
        """Run one bacpypes3 request to ``peer``; raises ``TransportError``/``DeviceError``."""
        assert peer.semaphore is not None
        async with peer.semaphore:
            peer.requests += 1
            try:
                async with asyncio.timeout(self.deadline_s):
                    result = await request()
            except TimeoutError as exc:
                raise DeviceTimeout(f"{peer.label}: {what}: no answer in {self.deadline_s:.1f} s") from exc
            except self._failures as exc:
                raise translate(exc, f"{peer.label}: {what}") from exc
        return result

    async def resolve(self, peer: Peer) -> Any:
        """The device's address: configured, or found by a who-is for its instance."""
        if peer.address is not None:
            return peer.address
        from bacpypes3.pdu import Address

        if peer.configured_address is not None:
            host, port = parse_host_port(peer.configured_address)
            peer.address = Address(f"{host}:{port}")
            return peer.address
        timeout_s = self.bus.who_is_timeout_ms / 1000.0
        try:
            i_ams = await asyncio.wait_for(
                self.app.who_is(peer.instance, peer.instance, timeout=timeout_s), timeout_s + 1.0
            )
        except TimeoutError:
            i_ams = []
        except self._failures as exc:
            raise translate(exc, f"{peer.label}: who-is") from exc
        except RuntimeError as exc:  # no broadcast address on this interface
            raise TransportError(
                f"{peer.label}: who-is cannot be broadcast here ({exc}); give its address"
            ) from exc
        if not i_ams:
            raise DeviceTimeout(f"{peer.label}: no I-Am answered who-is")
        peer.address = i_ams[0].pduSource
        _LOG.info("bacnet.found", bus=self.bus.id, device=peer.instance, address=str(peer.address))
        return peer.address

    async def learn(self, peer: Peer) -> ReadBudget:
        """Read the device object's max-APDU and segmentation once (RPM, else two ReadProperty)."""
        if peer.budget is not None:
            return peer.budget
        address = await self.resolve(peer)
        objid = self.objid("device", peer.instance)
        props = ["max-apdu-length-accepted", "segmentation-supported"]
        values: dict[str, Any] = {}
        try:
            rows = await self.call(
                peer, "read device info", lambda: self.app.read_property_multiple(address, [objid, props])
            )
            for _, prop, _, value in rows:
                values[str(prop)] = value
        except Refusal as exc:
            if not exc.service_refused:
                raise
            peer.rpm = False
            _LOG.warning("bacnet.no_rpm", bus=self.bus.id, device=peer.instance, reason=exc.reason)
            for prop in props:
                values[prop] = await self.read_property(peer, objid, prop)
        max_apdu = _int_or(values.get("max-apdu-length-accepted"), 480)
        segmentation = str(values.get("segmentation-supported", "no-segmentation"))
        peer.budget = ReadBudget(
            max_apdu=min(max_apdu, self.bus.max_apdu),
            segmented=segmentation in ("segmented-both", "segmented-transmit"),
        )
        await self._remember_device(peer, max_apdu, segmentation)
        return peer.budget

    async def _remember_device(self, peer: Peer, max_apdu: int, segmentation: str) -> None:
        """Tell bacpypes3's device cache what the device takes, so its segmentation machine
        sizes requests right (it only learns that from an I-Am otherwise)."""
        from bacpypes3.app import DeviceInfo
        from bacpypes3.basetypes import Segmentation

        cache = self.app.device_info_cache
        info = await cache.get_device_info(peer.address)
        if info is None:
            info = DeviceInfo(peer.instance, peer.address)
            cache.address_cache[peer.address] = info
            cache.instance_cache[peer.instance] = info
        info.max_apdu_length_accepted = max_apdu
        info.segmentation_supported = Segmentation(segmentation)

    def objid(self, object_type: str, instance: int) -> Any:
        from bacpypes3.primitivedata import ObjectIdentifier

        return ObjectIdentifier(f"{object_type},{instance}")

    def propid(self, name: str) -> Any:
        from bacpypes3.basetypes import PropertyIdentifier

        return PropertyIdentifier(int(name)) if name.isdigit() else PropertyIdentifier(name)

    async def read_property(self, peer: Peer, objid: Any, prop: str, index: int | None = None) -> Any:
        address = await self.resolve(peer)
        pid = self.propid(prop)
        return await self.call(
            peer, f"read {objid} {prop}", lambda: self.app.read_property(address, objid, pid, index)
        )

    async def read_multiple(self, peer: Peer, specs: list[Any]) -> list[tuple[Any, Any, Any, Any]]:
        """One ReadPropertyMultiple: ``specs`` alternates object ids and property lists."""
        address = await self.resolve(peer)
        result: list[tuple[Any, Any, Any, Any]] = await self.call(
            peer, "read-property-multiple", lambda: self.app.read_property_multiple(address, specs)
        )
        return result

    async def read_multiple_fast(self, peer: Peer, payload: bytes) -> list[ResultRow]:
        """One ReadPropertyMultiple from its service data (``rpm_codec.encode_request``): the
        answer as rows of numbers and plain values, decoded by ``rpm_codec`` or, for values it
        does not decode, by bacpypes3 (values then are bacpypes3 objects)."""
        address = await self.resolve(peer)
        ack = await self.call(peer, "read-property-multiple", lambda: self._raw_request(address, payload))
        data = bytes(ack.pduData)
        try:
            return decode_ack(data)
        except FramingError as exc:
            self.fallback_decodes += 1
            _LOG.debug("bacnet.rpm_fallback", device=peer.instance, why=str(exc))
            return await self._decode_by_bacpypes3(peer, address, ack)

    async def _raw_request(self, address: Any, payload: bytes) -> Any:
        from bacpypes3.apdu import ConfirmedRequestPDU

        apdu = ConfirmedRequestPDU(SERVICE_CHOICE)
        apdu.pduDestination = address
        apdu.put_data(payload)
        future = self.app.request(apdu)  # assigns the invoke id before anything is sent
        key = (address, apdu.apduInvokeID)
        self._raw_answers.add(key)
        try:
            return await future
        finally:
            self._raw_answers.discard(key)

    async def _decode_by_bacpypes3(self, peer: Peer, address: Any, ack: Any) -> list[ResultRow]:
        """Rows from an ACK as bacpypes3 decodes it, values cast to each property's datatype
        as its own ``read_property_multiple`` does."""
        from bacpypes3.apdu import APCISequence
        from bacpypes3.constructeddata import Array
        from bacpypes3.primitivedata import Unsigned

        try:
            decoded = APCISequence.decode(ack)
            vendor_info = await self.app.get_vendor_info(device_address=address)
            rows: list[ResultRow] = []
            for result in decoded.listOfReadAccessResults:
                objid = result.objectIdentifier
                object_class = vendor_info.get_object_class(objid[0])
                for element in result.listOfResults or ():
                    prop, index = element.propertyIdentifier, element.propertyArrayIndex
                    read_result = element.readResult
                    key = (int(objid[0]), int(objid[1]), int(prop), None if index is None else int(index))
                    error = read_result.propertyAccessError
                    if error is not None:
                        rows.append((*key, PropertyAccessError(int(error.errorClass), int(error.errorCode))))
                        continue
                    datatype = object_class.get_property_type(prop) if object_class else None
                    if datatype is None:
                        rows.append((*key, None))
                        continue
                    if issubclass(datatype, Array) and index is not None:
                        datatype = Unsigned if index == 0 else datatype._subtype
                    rows.append((*key, read_result.propertyValue.cast_out(datatype)))
        except self._failures as exc:
            raise translate(exc, f"{peer.label}: read-property-multiple answer") from exc
        except (ValueError, TypeError, AttributeError, IndexError, KeyError, RuntimeError) as exc:
            raise FramingError(f"{peer.label}: read-property-multiple answer: {exc}") from exc
        return rows

    async def write_property(
        self, peer: Peer, objid: Any, prop: str, value: Any, *, priority: int | None, index: int | None = None
    ) -> None:
        address = await self.resolve(peer)
        pid = self.propid(prop)
        await self.call(
            peer,
            f"write {objid} {prop}",
            lambda: self.app.write_property(address, objid, pid, value, index, priority),
        )

    async def subscribe(
        self, peer: Peer, objid: Any, process_id: int, *, confirmed: bool | None, lifetime_s: int | None
    ) -> None:
        """SubscribeCOV; ``confirmed=None, lifetime_s=None`` cancels (clause 13.14)."""
        from bacpypes3.apdu import SimpleAckPDU, SubscribeCOVRequest

        address = await self.resolve(peer)
        request = SubscribeCOVRequest(
            subscriberProcessIdentifier=process_id, monitoredObjectIdentifier=objid, destination=address
        )
        if confirmed is not None:
            request.issueConfirmedNotifications = confirmed
        if lifetime_s is not None:
            request.lifetime = lifetime_s

        async def send() -> None:
            answer = await self.app.request(request)
            if not isinstance(answer, SimpleAckPDU):
                raise Refusal(
                    f"{peer.label}: subscribe-cov: unexpected {type(answer).__name__}",
                    kind="local",
                    reason="answer",
                )

        await self.call(peer, f"subscribe-cov {objid}", send)


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
