"""The gateway's bacpypes3 application class: COV notifications and I-Am announcements go to
the link's handlers instead of bacpypes3's per-subscription queues (one dictionary lookup per
notification, no task per subscription), and malformed traffic is dropped, never raised.

``keep_raw_rpm_acks`` lets the link take ReadPropertyMultiple answers to its own requests as
bytes (decoded by ``drivers.bacnet.rpm_codec``) instead of bacpypes3's object tree.

Built lazily (``gateway_app_class``) so importing this package does not load bacpypes3.
"""

from __future__ import annotations

import functools
from typing import Any

import structlog

__all__ = ["gateway_app_class", "keep_raw_rpm_acks"]

_LOG = structlog.get_logger(__name__)


@functools.cache
def gateway_app_class() -> type[Any]:
    from bacpypes3.apdu import SimpleAckPDU
    from bacpypes3.app import Application
    from bacpypes3.errors import ServicesError

    class GatewayApplication(Application):  # type: ignore[misc]
        link: Any

        async def do_ConfirmedCOVNotificationRequest(self, apdu: Any) -> None:
            if not self._deliver(apdu):
                raise ServicesError(errorCode="unknownSubscription")
            await self.response(SimpleAckPDU(context=apdu))

        async def do_UnconfirmedCOVNotificationRequest(self, apdu: Any) -> None:
            self._deliver(apdu)

        def _deliver(self, apdu: Any) -> bool:
            handler = self.link.on_notification
            if handler is None:
                return False
            return bool(
                handler(
                    apdu.pduSource,
                    int(apdu.subscriberProcessIdentifier),
                    apdu.monitoredObjectIdentifier,
                    list(apdu.listOfValues),
                )
            )

        async def do_IAmRequest(self, apdu: Any) -> None:
            await super().do_IAmRequest(apdu)
            handler = self.link.on_i_am
            if handler is not None:
                handler(int(apdu.iAmDeviceIdentifier[1]), apdu.pduSource)

    return GatewayApplication


def keep_raw_rpm_acks(app: Any, wanted: set[tuple[Any, int]]) -> None:
    """Hand ReadPropertyMultiple ACKs for the (device address, invoke id) pairs in ``wanted`` to
    the waiting request undecoded (a generic ComplexAckPDU holding the service data).

    bacpypes3's application service access point decodes every complex ACK into its object
    tree in ``sap_response`` before the request's future sees it; that decoding is most of the
    cost of a poll. Errors, rejects, aborts and every other answer keep bacpypes3's path.
    """
    from bacpypes3.apdu import APCISequence, ComplexAckPDU
    from bacpypes3.comm import ServiceAccessPoint

    from drivers.bacnet.rpm_codec import SERVICE_CHOICE

    asap = app.asap
    decoding_response = asap.sap_response

    async def sap_response(apdu: Any) -> None:
        if (
            isinstance(apdu, ComplexAckPDU)
            and not isinstance(apdu, APCISequence)
            and apdu.apduService == SERVICE_CHOICE
            and (apdu.pduSource, apdu.apduInvokeID) in wanted
        ):
            # what bacpypes3's sap_response does after decoding, without the decoding
            await ServiceAccessPoint.sap_response(asap, apdu)
        else:
            await decoding_response(apdu)

    asap.sap_response = sap_response
