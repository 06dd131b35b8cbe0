"""One simulated BACnet device: a bacpypes3 application on its own UDP port, with request
counters and the faults a real controller shows.

Faults: ``silent`` (every datagram dropped, as a powered-off device), ``slow`` (answers delayed
by ``delay_ms``), ``out_of_service`` (objects out of service: their status flags say so and the
physics stops moving them), ``fault`` (reliability set, the fault flag raised), ``no_rpm``
(ReadPropertyMultiple rejected as an unrecognized service). A device built with
``segmentation=False`` and a small ``max_apdu`` cannot send segmented answers.

ReadPropertyMultiple requests are answered by ``simulators.bacnet.fast_rpm`` from the objects'
stored values when it can (``fast_rpm=False``: always by bacpypes3, as the reference).
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bacpypes3.apdu import (
    APDU,
    AbortPDU,
    AbortReason,
    APCISequence,
    ComplexAckPDU,
    ConfirmedRequestPDU,
    ReadPropertyMultipleRequest,
)
from bacpypes3.app import Application
from bacpypes3.basetypes import Reliability, Segmentation
from bacpypes3.errors import UnrecognizedService
from bacpypes3.ipv4.link import NormalLinkLayer
from bacpypes3.local.device import DeviceObject
from bacpypes3.pdu import PDU, IPv4Address

from simulators.bacnet.fast_rpm import RpmAnswers, install_fast_rpm
from simulators.bacnet.objects import ObjectSpec, make_object

__all__ = ["FAULTS", "FaultSettings", "SimApplication", "SimDevice"]

FAULTS: dict[str, str] = {
    "silent": "the device stops answering (every datagram dropped)",
    "slow": "every answer is delayed by delay_ms (default 1500)",
    "out_of_service": "objects (all, or key=TYPE,N) are out of service and stop following the physics",
    "fault": "an object's (key=TYPE,N) reliability is set: its fault flag is raised",
    "no_rpm": "ReadPropertyMultiple is rejected (unrecognized service)",
}


@dataclass(slots=True)
class FaultSettings:
    silent: bool = False
    slow_ms: float = 0.0
    no_rpm: bool = False


class SimApplication(Application):  # type: ignore[misc]
    """bacpypes3 application that counts confirmed requests and can refuse RPM or stall."""

    sim: SimDevice

    async def indication(self, apdu: APDU) -> None:
        if isinstance(apdu, ConfirmedRequestPDU):
            # a request fast_rpm passed on undecoded is a generic ConfirmedRequestPDU
            name = "ReadPropertyMultipleRequest" if type(apdu) is ConfirmedRequestPDU else type(apdu).__name__
            self.sim.counts[name] += 1
        delay = self.sim.faults.slow_ms
        if delay:
            await asyncio.sleep(delay / 1000.0)
        await super().indication(apdu)

    async def response(self, apdu: APDU) -> None:
        # A device that cannot segment cannot send an answer longer than its own buffer; the
        # bacpypes3 server would size it by the client's limit instead.
        unsegmented = not self.sim.segmentation and isinstance(apdu, ComplexAckPDU)
        if unsegmented and len(_service_data(apdu)) > self.sim.max_apdu:
            abort = AbortPDU(reason=AbortReason.segmentationNotSupported, context=apdu)
            abort.apduSrv = True
            abort.pduDestination = apdu.pduDestination
            await super().response(abort)
            return
        await super().response(apdu)

    async def do_ConfirmedRequestPDU(self, apdu: ConfirmedRequestPDU) -> None:
        """An RPM request fast_rpm passed on undecoded: answered from the objects' values, or
        decoded and answered by bacpypes3 when it holds anything fast_rpm does not answer."""
        answer = self.sim.answers.answer(bytes(apdu.pduData))
        if answer is None:
            decoded = APCISequence.decode(apdu)
            decoded.pduSource = apdu.pduSource
            await self.do_ReadPropertyMultipleRequest(decoded)
            return
        ack = ComplexAckPDU(apdu.apduService, context=apdu)
        ack.put_data(answer)
        await self.response(ack)

    async def do_ReadPropertyMultipleRequest(self, apdu: ReadPropertyMultipleRequest) -> None:
        if self.sim.faults.no_rpm:
            raise UnrecognizedService()
        await super().do_ReadPropertyMultipleRequest(apdu)


@dataclass(eq=False)
class SimDevice:
    """A device instance with its objects; ``start`` binds ``host:port`` (0: a free port)."""

    instance: int
    objects: list[ObjectSpec]
    name: str = ""
    model_name: str = "GH-SIM"
    host: str = "127.0.0.1"
    port: int = 0
    max_apdu: int = 1476
    segmentation: bool = True
    cov_increment_writable: bool = True
    fast_rpm: bool = True
    faults: FaultSettings = field(default_factory=FaultSettings)
    counts: Counter[str] = field(default_factory=Counter)
    app: SimApplication | None = None
    local: dict[str, Any] = field(default_factory=dict)
    oos: set[str] = field(default_factory=set)
    answers: RpmAnswers = field(default_factory=RpmAnswers)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        device = DeviceObject(
            objectIdentifier=("device", self.instance),
            objectName=self.name or f"sim-{self.instance}",
            vendorIdentifier=999,
            vendorName="Gatehouse simulator",
            modelName=self.model_name,
            maxApduLengthAccepted=self.max_apdu,
            segmentationSupported=(
                Segmentation.segmentedBoth if self.segmentation else Segmentation.noSegmentation
            ),
            apduTimeout=1000,
            numberOfApduRetries=1,
        )
        app = SimApplication.from_object_list([device])
        app.sim = self
        link = NormalLinkLayer(IPv4Address(self.address), bind_socket=sock)
        app.nsap.bind(link, address=IPv4Address(self.address))
        app.link_layers[device.objectIdentifier] = link
        self._wrap_receive(link)
        self.answers = RpmAnswers()
        install_fast_rpm(app, lambda: self.fast_rpm and not self.faults.no_rpm)
        self.local = {}
        for spec in self.objects:
            obj = make_object(spec, cov_increment_writable=self.cov_increment_writable)
            app.add_object(obj)
            self.answers.add(obj)
            self.local[spec.key] = obj
        for key in self.oos:
            self.local[key].outOfService = True
        self.app = app

    def _wrap_receive(self, link: NormalLinkLayer) -> None:
        server = link.server
        receive = server.confirmation

        async def confirmation(pdu: PDU) -> None:
            if not self.faults.silent:
                await receive(pdu)

        server.confirmation = confirmation

    def stop(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None

    # -- control ------------------------------------------------------------------------------

    def obj(self, key: str) -> Any:
        try:
            return self.local[key]
        except KeyError:
            raise KeyError(f"device {self.instance} has no object {key!r}") from None

    def get(self, key: str) -> Any:
        value = self.obj(key).presentValue
        if hasattr(value, "asn1"):  # BinaryPV
            return str(value) == "active"
        return (
            value if isinstance(value, bool) else (float(value) if isinstance(value, float) else int(value))
        )

    def set(self, key: str, value: float | bool | int, *, force: bool = False) -> None:
        """Set a present-value as the process would; an object out of service keeps its value
        unless ``force`` (that is an operator writing it)."""
        obj = self.obj(key)
        if key in self.oos and not force:
            return
        kind = key.split(",")[0]
        if kind.startswith("binary"):
            obj.presentValue = "active" if value else "inactive"
        elif kind.startswith("multi"):
            obj.presentValue = int(value)
        else:
            obj.presentValue = float(value)

    def priority_array(self, key: str) -> list[Any]:
        out: list[Any] = []
        for pv in self.obj(key).priorityArray:
            out.append(None if pv.null is not None else getattr(pv, pv._choice))
        return out

    def inject(self, fault: str, params: dict[str, Any] | None = None) -> None:
        params = params or {}
        if fault == "silent":
            self.faults.silent = True
        elif fault == "slow":
            self.faults.slow_ms = float(params.get("delay_ms", 1500))
        elif fault == "no_rpm":
            self.faults.no_rpm = True
        elif fault == "out_of_service":
            keys = [str(params["key"])] if "key" in params else list(self.local)
            for key in keys:
                self.oos.add(key)
                self.obj(key).outOfService = True
        elif fault == "fault":
            self.obj(str(params["key"])).reliability = Reliability(
                str(params.get("reliability", "unreliableOther"))
            )
        else:
            raise ValueError(f"no fault {fault!r} (known: {', '.join(FAULTS)})")

    def clear(self) -> None:
        self.faults = FaultSettings()
        for key in list(self.oos):
            self.obj(key).outOfService = False
        self.oos.clear()
        for obj in self.local.values():
            if getattr(obj, "reliability", None) not in (None, Reliability.noFaultDetected):
                obj.reliability = Reliability.noFaultDetected


def _service_data(apdu: APDU) -> bytes:
    """An answer's service data: encoded by bacpypes3, or already bytes (fast_rpm)."""
    if isinstance(apdu, APCISequence):
        return bytes(apdu.encode().pduData)
    return bytes(apdu.pduData)
