"""COV subscriptions of one link: SubscribeCOV per object (confirmed or unconfirmed as the device
is configured), renewed at half their lifetime, resubscribed when a device comes back (a read
succeeds after failing) or announces itself with an I-Am (it restarted), cov-increment written
from the point's report deadband where the device allows, and polling for objects that refuse.

Notifications are matched by subscriber process id (one per subscription, unique on the link)
and become ``Reading``s on the device's ``pushed()`` queue. BACnet COV notifications carry no
timestamp of the change, so ``source_ts`` stays None.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import structlog

from core.errors import TransportError
from drivers.bacnet.codec import flags_of
from drivers.bacnet.config import CovMode
from drivers.bacnet.errors import Refusal

if TYPE_CHECKING:
    from drivers.bacnet.device import BacnetDevice, PointPlan
    from drivers.bacnet.link import BacnetLink

__all__ = ["CovManager", "Subscription"]

_LOG = structlog.get_logger(__name__)


@dataclass(eq=False)
class Subscription:
    device: BacnetDevice
    objid: Any
    plans: list[PointPlan]
    process_id: int
    state: str = "pending"  # pending → active | refused; failed → retried
    renew_at: float = 0.0
    increment_done: bool = False
    renewals: int = field(default=0)


class CovManager:
    """Every COV subscription on one ``BacnetLink``."""

    def __init__(self, link: BacnetLink) -> None:
        self.link = link
        self.subs: dict[int, Subscription] = {}
        self._by_device: dict[str, list[Subscription]] = {}
        self._active_keys: set[str] = set()
        self._started: set[str] = set()
        self._next_id = 1
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.notifications = 0
        link.on_notification = self._notify
        link.on_i_am = self._i_am

    def add(self, device: BacnetDevice, plans: list[PointPlan]) -> None:
        """Subscribe the objects of ``plans`` (their ``cov: true`` present-value points)."""
        if device.config.cov is CovMode.OFF:
            return
        by_object: dict[Any, list[PointPlan]] = {}
        for plan in plans:
            if plan.point.cov and plan.point.property == "present-value":
                by_object.setdefault(plan.objid, []).append(plan)
        subs = self._by_device.setdefault(device.device_id, [])
        for objid, object_plans in by_object.items():
            sub = Subscription(device, objid, object_plans, self._next_id)
            self._next_id += 1
            self.subs[sub.process_id] = sub
            subs.append(sub)
        device.cov = self

    # -- what the device asks ------------------------------------------------------------------

    def active(self, key: str) -> bool:
        return key in self._active_keys

    def started(self, device: BacnetDevice) -> bool:
        return device.device_id in self._started

    def resync(self, device: BacnetDevice) -> None:
        """Subscribe (again) every subscription of ``device`` now."""
        self._started.add(device.device_id)
        for sub in self._by_device.get(device.device_id, ()):
            if sub.state != "refused":
                sub.renew_at = 0.0
        self._wake.set()

    # -- lifetime ----------------------------------------------------------------------------

    async def __aenter__(self) -> CovManager:
        self._task = asyncio.create_task(self._loop(), name=f"bacnet-cov:{self.link.bus.id}")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # cancel what the devices hold, briefly: a dead device must not delay shutdown
        active = [s for s in self.subs.values() if s.state == "active"]
        if active:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await asyncio.gather(*(self._cancel(s) for s in active), return_exceptions=True)

    async def _cancel(self, sub: Subscription) -> None:
        with contextlib.suppress(TransportError, Refusal):
            await self.link.subscribe(
                sub.device.peer, sub.objid, sub.process_id, confirmed=None, lifetime_s=None
            )

    async def _loop(self) -> None:
        while True:
            now = time.monotonic()
            due = [
                s
                for s in self.subs.values()
                if s.state != "refused" and s.renew_at <= now and self.started(s.device)
            ]
            if due:
                await asyncio.gather(*(self._subscribe(s) for s in due))
            upcoming = [
                s.renew_at for s in self.subs.values() if s.state != "refused" and self.started(s.device)
            ]
            delay = max(0.05, min(upcoming) - time.monotonic()) if upcoming else 3600.0
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _subscribe(self, sub: Subscription) -> None:
        config = sub.device.config
        lifetime = config.cov_lifetime_s
        try:
            await self._write_increment(sub)
            await self.link.subscribe(
                sub.device.peer,
                sub.objid,
                sub.process_id,
                confirmed=config.cov is CovMode.CONFIRMED,
                lifetime_s=lifetime,
            )
        except Refusal as exc:
            # the object does not do COV: poll it instead, for good
            sub.state = "refused"
            self._set_active(sub, False)
            _LOG.info(
                "bacnet.cov_refused", device=sub.device.device_id, object=str(sub.objid), reason=exc.reason
            )
            return
        except TransportError as exc:
            sub.state = "failed"
            sub.renew_at = time.monotonic() + min(lifetime / 2.0, 30.0)
            self._set_active(sub, False)  # polled meanwhile: the poll tells the coordinator it is gone
            _LOG.debug(
                "bacnet.cov_failed", device=sub.device.device_id, object=str(sub.objid), error=str(exc)
            )
            return
        sub.state = "active"
        sub.renewals += 1
        sub.renew_at = time.monotonic() + max(0.5, lifetime * 0.5)
        self._set_active(sub, True)

    async def _write_increment(self, sub: Subscription) -> None:
        """cov-increment from the report deadband, for analog objects, once; a device that
        does not allow it keeps its own."""
        if sub.increment_done or not str(sub.objid[0]).startswith("analog"):
            return
        deadbands = [p.deadband for p in sub.plans if p.deadband is not None]
        if not deadbands:
            sub.increment_done = True
            return
        try:
            await self.link.write_property(
                sub.device.peer, sub.objid, "cov-increment", float(min(deadbands)), priority=None
            )
        except Refusal as exc:
            _LOG.info(
                "bacnet.cov_increment_kept",
                device=sub.device.device_id,
                object=str(sub.objid),
                reason=exc.reason,
            )
        sub.increment_done = True

    def _set_active(self, sub: Subscription, active: bool) -> None:
        for plan in sub.plans:
            if active:
                self._active_keys.add(plan.key)
            else:
                self._active_keys.discard(plan.key)

    # -- from the application ----------------------------------------------------------------

    def _notify(self, source: Any, process_id: int, objid: Any, values: list[Any]) -> bool:
        sub = self.subs.get(process_id)
        if sub is None or sub.objid != objid:
            return False
        self.notifications += 1
        present: Any = None
        flags: list[int] | None = None
        for item in values:
            prop = str(item.propertyIdentifier)
            if prop == "present-value":
                present = _cast(objid, item)
            elif prop == "status-flags":
                flags = flags_of(_cast(objid, item))
        if present is None:
            return True
        for plan in sub.plans:
            sub.device.put(sub.device.value_reading(plan, present, flags))
        return True

    def _i_am(self, instance: int, address: Any) -> None:
        """A device announced itself: it may have restarted (and lost its subscriptions), or
        moved. Resubscribe what it held."""
        for subs in self._by_device.values():
            if not subs or subs[0].device.peer.instance != instance:
                continue
            peer = subs[0].device.peer
            if peer.configured_address is None and peer.address is not None and peer.address != address:
                peer.address = address
            if self.started(subs[0].device):
                self.resync(subs[0].device)


_TYPES: dict[tuple[Any, str], Any] = {}


def _cast(objid: Any, item: Any) -> Any:
    """A notification's value (an ``Any``) as the property's type."""
    from bacpypes3.vendor import get_vendor_info

    key = (objid[0], str(item.propertyIdentifier))
    ptype = _TYPES.get(key)
    if ptype is None:
        object_class = get_vendor_info(0).get_object_class(objid[0])
        ptype = object_class.get_property_type(item.propertyIdentifier) if object_class else None
        _TYPES[key] = ptype
    if ptype is None:
        return None
    return item.value.cast_out(ptype)
