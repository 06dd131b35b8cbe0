"""The gateway's bacpypes3 application class: COV notifications and I-Am announcements go to
the link's handlers instead of bacpypes3's per-subscription queues (one dictionary lookup per
notification, no task per subscription), and malformed traffic is dropped, never raised.

Built lazily (``gateway_app_class``) so importing this package does not load bacpypes3.
"""

from __future__ import annotations

import functools
from typing import Any

import structlog

__all__ = ["gateway_app_class"]

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
