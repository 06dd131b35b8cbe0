"""``BacnetDevice``: the ``Driver`` of one BACnet device on a ``BacnetLink``.

Reads: the points of a poll group are read with ReadPropertyMultiple, packed to the device's
max-APDU and segmentation (read from its device object once) — present-value points carry
their status-flags along — or one ReadProperty per point for a device that refuses RPM. The
requests of a group are encoded once (``rpm_codec``) and reused on every poll; answers are
matched to points by numbers (object type, instance, property, array index). An
answer that did not fit halves the objects per request from then on. A point whose object is
subscribed for COV is not polled while its subscription holds; when every point of a group is,
the group reads the device's system-status so a dead device is still noticed. A dead device
costs one APDU timeout (times retries) per read, and the coordinator backs off.

Writes: WriteProperty at the point's priority (or the one given), a relinquish (null at that
priority) for ``None`` or ``"relinquish"``, and read-back of present-value and the priority
array slot. Engineering units are compared with the profile's once, at the first read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from core.errors import DeviceError, TransportError
from core.model import Quality, Reason, Value
from drivers.bacnet.codec import RELINQUISH, decode, encode, flags_of, is_null
from drivers.bacnet.config import BacnetDeviceConfig, BacnetPointConfig
from drivers.bacnet.errors import Refusal
from drivers.bacnet.link import BacnetLink, Peer
from drivers.bacnet.objects import COMMANDABLE_TYPES, Health, chunk, health_of
from drivers.bacnet.rpm_codec import PropertyAccessError, encode_request
from drivers.base import LinkState, PollGroup, Reading, raise_if_cancelling
from drivers.push_queue import PushQueue

__all__ = ["BacnetDevice", "BacnetGroup", "PointPlan"]

_LOG = structlog.get_logger(__name__)


@dataclass(eq=False)
class PointPlan:
    """A point as the driver reads it: its object and property as bacpypes3 values."""

    point: BacnetPointConfig
    objid: Any
    deadband: float | None = None  # the report deadband, in device units (for cov-increment)
    units_ok: bool = True
    # (object type, instance, property, array index) as numbers: how RPM answers are matched
    ref: tuple[int, int, int, int | None] = field(init=False)

    def __post_init__(self) -> None:
        from bacpypes3.basetypes import PropertyIdentifier

        name = self.point.property
        number = int(name) if name.isdigit() else int(PropertyIdentifier(name))
        self.ref = (int(self.objid[0]), int(self.objid[1]), number, self.point.array_index)

    @property
    def key(self) -> str:
        return self.point.id

    @property
    def with_status(self) -> bool:
        return self.point.property == "present-value"


@dataclass(frozen=True, eq=False)
class BacnetGroup:
    interval_s: float
    plans: tuple[PointPlan, ...]
    keys: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(p.key for p in self.plans))


class BacnetDevice:
    """One device instance on a link."""

    # Commandable objects have a 16-level priority array (drivers.base.PriorityWriter).
    priority_levels = 16

    def __init__(
        self,
        device_id: str,
        config: BacnetDeviceConfig,
        plans: Sequence[PointPlan],
        link: BacnetLink,
        *,
        poll_interval_s: float,
    ) -> None:
        self._device_id = device_id
        self.config = config
        self.link = link
        self.peer: Peer = link.peer(config.instance, config.address)
        self.plans = {plan.key: plan for plan in plans}
        groups: dict[float, list[PointPlan]] = {}
        for plan in plans:
            if plan.point.access.value == "w":
                continue
            groups.setdefault(plan.point.poll_interval_s or poll_interval_s, []).append(plan)
        self._groups = tuple(BacnetGroup(iv, tuple(ps)) for iv, ps in sorted(groups.items()))
        self._queue = PushQueue()
        self._units_checked = False
        self._failing = False
        # encoded RPM requests per (group's point keys, objects-per-request limit)
        self._requests: dict[tuple[tuple[str, ...], int | None], list[_Request]] = {}
        self.cov: Any = None  # drivers.bacnet.cov.CovManager, set by the plugin

    # -- Driver ------------------------------------------------------------------------------

    @property
    def device_id(self) -> str:
        return self._device_id

    def poll_groups(self) -> Sequence[BacnetGroup]:
        return self._groups

    def pushed(self) -> AsyncIterator[list[Reading] | LinkState]:
        return self._queue.batches()

    def put(self, reading: Reading) -> None:
        self._queue.put(reading)

    async def read(self, group: PollGroup) -> list[Reading]:
        if not isinstance(group, BacnetGroup):
            raise TypeError(f"device {self._device_id!r}: not a BACnet group: {group!r}")
        try:
            readings = await self._read(group)
        except TransportError:
            self._failing = True
            raise
        if self._failing or self.cov is not None and not self.cov.started(self):
            # back from a failure (the device may have restarted and lost its subscriptions),
            # or the first good read: (re)subscribe now
            self._failing = False
            if self.cov is not None:
                self.cov.resync(self)
        return readings

    async def _read(self, group: BacnetGroup) -> list[Reading]:
        await self.link.learn(self.peer)
        raise_if_cancelling()
        if not self._units_checked:
            await self._check_units()
        plans = [p for p in group.plans if self.cov is None or not self.cov.active(p.key)]
        if not plans:
            await self.link.read_property(
                self.peer, self.link.objid("device", self.peer.instance), "system-status"
            )
            return []
        if self.peer.rpm:
            try:
                return await self._read_rpm(plans)
            except Refusal as exc:
                if not exc.service_refused:
                    raise
                self.peer.rpm = False
                _LOG.warning("bacnet.no_rpm", device=self._device_id, reason=exc.reason)
        return await self._read_each(plans)

    def _rpm_requests(self, plans: Sequence[PointPlan]) -> list[_Request]:
        """The group's RPM requests, encoded once per objects-per-request limit."""
        cache_key = (tuple(p.key for p in plans), self.peer.limit)
        requests = self._requests.get(cache_key)
        if requests is None:
            by_object: dict[tuple[int, int], list[PointPlan]] = {}
            for plan in plans:
                by_object.setdefault(plan.ref[:2], []).append(plan)
            objects = [(obj, ps, _references(ps)) for obj, ps in by_object.items()]
            budget = self.peer.budget
            assert budget is not None
            sized = [(obj, len(refs)) for obj, _, refs in objects]
            requests = [_Request([objects[i] for i in idx]) for idx in chunk(sized, budget, self.peer.limit)]
            self._requests[cache_key] = requests
        return requests

    async def _read_rpm(self, plans: Sequence[PointPlan]) -> list[Reading]:
        readings: list[Reading] = []
        pending = list(self._rpm_requests(plans))
        while pending:
            request = pending.pop(0)
            try:
                rows = await self.link.read_multiple_fast(self.peer, request.payload)
            except Refusal as exc:
                if not exc.too_big or len(request.objects) == 1:
                    raise
                half = max(1, len(request.objects) // 2)
                self.peer.limit = half
                _LOG.info("bacnet.rpm_split", device=self._device_id, objects=len(request.objects), now=half)
                pending[:0] = [_Request(request.objects[:half]), _Request(request.objects[half:])]
                continue
            raise_if_cancelling()
            values = {(t, i, p, x): v for t, i, p, x, v in rows}
            for (object_type, instance), ps, _ in request.objects:
                flags = values.get((object_type, instance, _STATUS_FLAGS, None))
                for plan in ps:
                    raw = values.get(plan.ref, _MISSING)
                    readings.append(self._reading(plan, raw, flags if plan.with_status else None))
        return readings

    async def _read_each(self, plans: Sequence[PointPlan]) -> list[Reading]:
        readings: list[Reading] = []
        for plan in plans:
            try:
                raw = await self.link.read_property(
                    self.peer, plan.objid, plan.point.property, plan.point.array_index
                )
            except Refusal as exc:
                raw = exc
            raise_if_cancelling()
            readings.append(self._reading(plan, raw, None))
        return readings

    def _reading(self, plan: PointPlan, raw: Any, flags: Any) -> Reading:
        key = plan.key
        if raw is _MISSING:
            return Reading(key, None, Quality.BAD, Reason.DEVICE_ERROR)
        if isinstance(raw, Refusal | PropertyAccessError) or hasattr(raw, "errorCode"):
            code = raw.reason if isinstance(raw, Refusal | PropertyAccessError) else str(raw.errorCode)
            reason = (
                Reason.CONFIG_ERROR if code in ("unknown-object", "unknown-property") else Reason.DEVICE_ERROR
            )
            return Reading(key, None, Quality.BAD, reason)
        return self.value_reading(plan, raw, flags_of(flags))

    def value_reading(
        self, plan: PointPlan, raw: Any, flags: list[int] | None, ts: float | None = None
    ) -> Reading:
        """A reading from a decoded value and its status flags (polls and COV alike)."""
        point = plan.point
        try:
            value = decode(point, raw)
        except (TypeError, ValueError):
            return Reading(plan.key, None, Quality.BAD, Reason.DEVICE_ERROR, ts)
        health: Health = health_of(flags)
        if health.quality is not Quality.GOOD:
            return Reading(plan.key, value, health.quality, health.reason, ts)
        if isinstance(value, int | float) and not isinstance(value, bool):
            low, high = point.valid_min, point.valid_max
            if value != value or (low is not None and value < low) or (high is not None and value > high):
                return Reading(plan.key, value, Quality.BAD, Reason.OUT_OF_RANGE, ts)
        if not plan.units_ok:
            return Reading(plan.key, value, Quality.UNCERTAIN, Reason.CONFIG_ERROR, ts)
        return Reading(plan.key, value, Quality.GOOD, Reason.NONE, ts)

    async def _check_units(self) -> None:
        """Compare each point's expected engineering units with the object's, once."""
        self._units_checked = True
        for plan in self.plans.values():
            expected = plan.point.units
            if expected is None:
                continue
            try:
                actual = await self.link.read_property(self.peer, plan.objid, "units")
            except Refusal as exc:
                actual = f"none ({exc.reason})"
            if str(actual) != expected and str(int(actual) if isinstance(actual, int) else "") != expected:
                plan.units_ok = False
                _LOG.warning(
                    "bacnet.units_mismatch",
                    device=self._device_id,
                    point=plan.key,
                    expected=expected,
                    actual=str(actual),
                )

    # -- writes ------------------------------------------------------------------------------

    async def write(
        self, key: str, value: Value, *, verify: bool = True, priority: int | None = None
    ) -> Value | None:
        """WriteProperty at ``priority`` (default: the point's); ``None`` or ``"relinquish"``
        relinquishes that priority. With ``verify`` the priority-array slot and present-value
        are read back: returns present-value when the slot holds what was written (a higher
        priority may still win: then present-value differs and the caller sees it), the slot's
        value when it does not, and for a relinquish ``"relinquish"`` (or None) once the slot
        is empty."""
        plan = self.plans.get(key)
        if plan is None:
            raise KeyError(f"device {self._device_id} has no point {key!r}")
        point = plan.point
        if not point.writable:
            raise DeviceError(f"point '{key}' of {self._device_id} is read-only")
        level = priority if priority is not None else point.priority
        if not 1 <= level <= 16:
            raise ValueError(f"priority {level} is outside 1..16")
        relinquish = value is None or value == RELINQUISH
        commandable = point.property == "present-value"
        if relinquish:
            from bacpypes3.primitivedata import Null

            payload: Any = Null(())
        else:
            payload = encode(point, value)
        await self.link.write_property(
            self.peer,
            plan.objid,
            point.property,
            payload,
            priority=level if commandable else None,
            index=point.array_index,
        )
        raise_if_cancelling()
        if not verify or not point.verify_write:
            return None
        present = await self.link.read_property(self.peer, plan.objid, point.property, point.array_index)
        slot: Any = _MISSING
        if commandable and (point.object_type in COMMANDABLE_TYPES or point.object_type.endswith("-value")):
            try:
                slot = await self.link.read_property(self.peer, plan.objid, "priority-array", level)
            except Refusal as exc:
                if not exc.unknown:
                    raise
        held = _slot_value(slot)
        if relinquish:
            if slot is not _MISSING and held is not None:
                return decode(point, held)
            return RELINQUISH if value == RELINQUISH else None
        if slot is not _MISSING and (held is None or decode(point, held) != decode(point, payload)):
            return None if held is None else decode(point, held)
        return decode(point, present)


_MISSING: Any = object()


def _slot_value(slot: Any) -> Any:
    """The value a PriorityValue holds, None when null (or not read)."""
    if slot is _MISSING or slot is None or is_null(slot):
        return None
    if getattr(slot, "null", None) is not None:
        return None
    choice = getattr(slot, "_choice", None)
    return getattr(slot, choice) if choice else slot


_STATUS_FLAGS = 111  # property number of status-flags


@dataclass(eq=False)
class _Request:
    """One RPM request of a group: its objects (numbers, their plans, their property
    references) and the encoded service data."""

    objects: list[tuple[tuple[int, int], list[PointPlan], list[tuple[int, int | None]]]]
    payload: bytes = b""

    def __post_init__(self) -> None:
        self.payload = encode_request((t, i, refs) for (t, i), _, refs in self.objects)


def _references(plans: Sequence[PointPlan]) -> list[tuple[int, int | None]]:
    """The property references of one object's points (status-flags along with present-value)."""
    out: list[tuple[int, int | None]] = []
    for plan in plans:
        wanted = [plan.ref[2:]]
        if plan.with_status:
            wanted.append((_STATUS_FLAGS, None))
        for ref in wanted:
            if ref not in out:
                out.append(ref)
    return out
