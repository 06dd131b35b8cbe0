"""``ModbusDevice``: one Modbus device (one unit id on one link) behind the ``Driver`` protocol.

The device plans its reads once (``drivers.modbus.planner``), reads a block per ``read`` call
through its link, and decodes with the block's precompiled decoders. It knows nothing of the
poll loop, backoff or online state: that is the coordinator's job (``edge.coordinator``).

Quality rules of a reading:

- a value outside the point's ``valid_min``/``valid_max`` is ``BAD``/``OUT_OF_RANGE`` with the
  value kept, so that the dashboard can show what the device said;
- a NaN or infinite float from the device is ``BAD``/``OUT_OF_RANGE`` (value ``nan``);
- an enum point keeps its raw integer; the label is the consumer's business. Writes to an enum
  point accept either the integer or its label.

Writes pick the function code from the table and size: FC 05 for a coil, FC 06 for one
register, FC 16 for several, and a read-modify-write with FC 03 + FC 06 for a ``bit`` point
(FC 22 mask-write is not supported widely enough to rely on). With verification the point is
read back and its engineering value returned; comparing it with what was asked is up to the
caller, because devices legitimately clamp or round what they are given.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Protocol

import structlog

from core.errors import DeviceError
from core.model import Quality, Reason, Value
from drivers.base import PollGroup, Reading
from drivers.modbus.codec import Decoder, compile_decoder, encode
from drivers.modbus.planner import (
    MAX_BITS_PER_READ,
    MAX_REGISTERS_PER_READ,
    BlockPoint,
    ReadBlock,
    plan_reads,
)
from drivers.modbus.types import DataType, RegisterSpec, Table, register_count

__all__ = ["ModbusDevice", "ModbusLink", "ModbusPoint"]

_LOG = structlog.get_logger(__name__)

_WRITABLE = frozenset({"rw", "w"})
_ILLEGAL_DATA_ADDRESS = 2
# (key, offset in block, decoder, needs a check, valid_min, valid_max)
_PointCheck = tuple[str, int, Decoder, bool, float, float]
# One shared object each: ``-math.inf`` written in the loop made a new float for every point.
_NO_LOW = -math.inf
_NO_HIGH = math.inf
_MAX_REGISTERS_PER_WRITE = 123  # FC 16, Modbus Application Protocol v1.1b3 §6.12


class ModbusPoint(RegisterSpec, Protocol):
    """What the device needs of a point. ``edge.config.models.PointConfig`` fits it."""

    @property
    def access(self) -> str: ...  # "r", "rw" or "w" (a StrEnum fits)
    @property
    def valid_min(self) -> float | None: ...
    @property
    def valid_max(self) -> float | None: ...
    @property
    def verify_write(self) -> bool: ...
    @property
    def enum(self) -> Mapping[int, str] | None: ...
    @property
    def poll_interval_s(self) -> float | None: ...


class ModbusLink(Protocol):
    """The requests a device makes of its link (``ModbusTcpLink``; an RTU link fits too)."""

    async def read(self, unit: int, table: Table, start: int, count: int) -> list[int]: ...
    async def write_coil(self, unit: int, address: int, value: bool) -> None: ...
    async def write_register(self, unit: int, address: int, value: int) -> None: ...
    async def write_registers(self, unit: int, address: int, values: Sequence[int]) -> None: ...


class _Plan:
    """A point list's read plan, shared by every device with the same points and limits.

    Devices of one profile get the same point objects, so 2,000 meters of one model plan their
    blocks, per-point decoders and range checks once instead of 2,000 times (about 5 KB a
    device of 30 points; issue 19). Read-only once made.
    """

    __slots__ = ("__weakref__", "checks", "groups", "points")

    def __init__(
        self,
        device_id: str,
        points: Sequence[ModbusPoint],
        max_registers: int,
        max_bits: int,
        max_gap: int,
        poll_interval_s: float,
    ) -> None:
        by_id: dict[str, ModbusPoint] = {}
        for point in points:
            if point.id in by_id:
                raise ValueError(f"device {device_id!r}: point {point.id!r} appears twice")
            by_id[point.id] = point
        # Holding the points keeps their id()s, the cache key, from being reused.
        self.points: Mapping[str, ModbusPoint] = by_id
        readable = [p for p in by_id.values() if str(p.access) != "w"]
        self.groups: tuple[ReadBlock, ...] = tuple(
            plan_reads(
                readable,
                max_registers=max_registers,
                max_bits=max_bits,
                max_gap=max_gap,
                default_interval_s=poll_interval_s,
            )
        )
        # Keyed by id(): hashing a block hashes all its points, too slow for every read. The
        # blocks are kept alive by self.groups (and a device's split pieces by the device).
        self.checks: dict[int, tuple[_PointCheck, ...]] = {
            id(g): _compile_checks(by_id, g) for g in self.groups
        }


# A plan lives as long as a device uses it.
_PLANS: weakref.WeakValueDictionary[tuple[object, ...], _Plan] = weakref.WeakValueDictionary()


def _compile_checks(points: Mapping[str, ModbusPoint], group: ReadBlock) -> tuple[_PointCheck, ...]:
    """Per point: whether its value needs a NaN or range check, and the range."""
    checks: list[_PointCheck] = []
    for bp in group.points:
        point = points[bp.key]
        numeric = point.type not in (DataType.STRING, DataType.BIT, DataType.BOOL)
        low = _NO_LOW if point.valid_min is None else float(point.valid_min)
        high = _NO_HIGH if point.valid_max is None else float(point.valid_max)
        ranged = numeric and (point.valid_min is not None or point.valid_max is not None)
        floating = point.type in (DataType.FLOAT32, DataType.FLOAT64) or (
            numeric and (point.scale != 1 or point.offset != 0)
        )
        checks.append((bp.key, bp.offset, bp.decode, ranged or floating, low, high))
    return tuple(checks)


class ModbusDevice:
    """One device: ``device_id`` is its id in the site, ``unit`` its Modbus unit id."""

    def __init__(
        self,
        device_id: str,
        unit: int,
        link: ModbusLink,
        points: Iterable[ModbusPoint],
        *,
        poll_interval_s: float = 5.0,
        max_registers: int = MAX_REGISTERS_PER_READ,
        max_bits: int = MAX_BITS_PER_READ,
        max_gap: int = 16,
    ) -> None:
        if not 0 <= unit <= 255:
            raise ValueError(f"device {device_id!r}: unit id {unit} is outside 0..255")
        self._device_id = device_id
        self.unit = unit
        self.link = link
        points = tuple(points)
        key = (tuple(map(id, points)), max_registers, max_bits, max_gap, poll_interval_s)
        plan = _PLANS.get(key)
        if plan is None:
            plan = _Plan(device_id, points, max_registers, max_bits, max_gap, poll_interval_s)
            _PLANS[key] = plan
        self._plan = plan  # shared with every device of the same points and limits
        self._points: Mapping[str, ModbusPoint] = plan.points
        self._groups: tuple[ReadBlock, ...] = plan.groups
        # Blocks the device refused as a whole, with the per-point reads that replace them.
        self._split_blocks: dict[int, tuple[ReadBlock, ...]] = {}
        # The plan's until this device splits a block; then a copy of its own with the pieces.
        self._checks: dict[int, tuple[_PointCheck, ...]] = plan.checks

    # --- Driver protocol ------------------------------------------------------------------------

    @property
    def device_id(self) -> str:
        return self._device_id

    def poll_groups(self) -> Sequence[ReadBlock]:
        return self._groups

    async def read(self, group: PollGroup) -> list[Reading]:
        """Read one block. Raises ``TransportError`` or ``DeviceError`` from the link.

        Many devices answer exception 2 (illegal data address) for a block that reads through
        a hole they do not map. Then the block is split into one read per point from now on,
        and a point the device still refuses on its own reads as ``BAD``/``CONFIG_ERROR``.
        """
        if not isinstance(group, ReadBlock):
            raise TypeError(f"device {self._device_id!r}: not a Modbus read block: {group!r}")
        pieces = self._split_blocks.get(id(group))
        if pieces is None:
            try:
                registers = await self.link.read(self.unit, group.table, group.start, group.count)
            except DeviceError as exc:
                if exc.code != _ILLEGAL_DATA_ADDRESS:
                    raise
                pieces = _split(group)
                if id(group) in self._checks:  # one of ours: remember the split
                    self._split_blocks[id(group)] = pieces
                    if self._checks is self._plan.checks:
                        self._checks = dict(self._plan.checks)
                    for piece in pieces:
                        self._checks[id(piece)] = _compile_checks(self._points, piece)
                _LOG.warning(
                    "modbus.block_split",
                    device=self._device_id,
                    table=str(group.table),
                    start=group.start,
                    count=group.count,
                    reads=len(pieces),
                )
            else:
                return self._decode(group, registers)
        readings: list[Reading] = []
        for piece in pieces:
            try:
                registers = await self.link.read(self.unit, piece.table, piece.start, piece.count)
            except DeviceError as exc:
                if exc.code != _ILLEGAL_DATA_ADDRESS:
                    raise
                readings.extend(Reading(key, None, Quality.BAD, Reason.CONFIG_ERROR) for key in piece.keys)
                continue
            readings.extend(self._decode(piece, registers))
        return readings

    def _decode(self, group: ReadBlock, registers: Sequence[int]) -> list[Reading]:
        checks = self._checks.get(id(group))
        if checks is None:  # an equal block planned elsewhere: fine, just not cached
            checks = _compile_checks(self._points, group)
        readings: list[Reading] = []
        append = readings.append
        for key, offset, decode, check, low, high in checks:
            value = decode(registers, offset)
            # ``value != value`` is the NaN test; the codec turns infinities into NaN.
            if check and (value != value or not low <= value <= high):  # type: ignore[operator]
                append(Reading(key, value, Quality.BAD, Reason.OUT_OF_RANGE))
            else:
                append(Reading(key, value))
        return readings

    async def write(self, key: str, value: Value, *, verify: bool = True) -> Value | None:
        """Write one point; with ``verify`` (and the point's ``verify_write``) read it back.

        Returns the read-back engineering value, or None when not verified. Raises
        ``ValueError`` before any I/O for an unknown or read-only point or a value that does not
        fit; ``TransportError`` or ``DeviceError`` from the link.
        """
        point = self._writable_point(key)
        value = self._enum_code(point, value)
        unit = self.unit
        if point.table is Table.COIL:
            (bit,) = encode(point, value)
            await self.link.write_coil(unit, point.address, bool(bit))
        elif point.type is DataType.BIT:
            (current,) = await self.link.read(unit, Table.HOLDING, point.address, 1)
            (register,) = encode(point, value, current=current)
            await self.link.write_register(unit, point.address, register)
        else:
            registers = encode(point, value)
            if len(registers) > _MAX_REGISTERS_PER_WRITE:
                raise ValueError(
                    f"device {self._device_id!r}: point {key!r} spans {len(registers)} registers; "
                    f"one write carries at most {_MAX_REGISTERS_PER_WRITE}"
                )
            if len(registers) == 1:
                await self.link.write_register(unit, point.address, registers[0])
            else:
                await self.link.write_registers(unit, point.address, registers)
        _LOG.info("modbus.write", device=self._device_id, point=key, value=value)
        if not (verify and point.verify_write) or str(point.access) == "w":
            return None
        return await self.read_point(key)

    def pushed(self) -> AsyncIterator[Reading] | None:
        return None

    # --- helpers --------------------------------------------------------------------------------

    async def read_point(self, key: str) -> Value:
        """Read and decode one point on its own (for read-back; polling uses blocks)."""
        point = self._points.get(key)
        if point is None:
            raise ValueError(f"device {self._device_id!r} has no point {key!r}")
        count = register_count(point.type, point.length)
        registers = await self.link.read(self.unit, point.table, point.address, count)
        return compile_decoder(point)(registers, 0)

    def _writable_point(self, key: str) -> ModbusPoint:
        point = self._points.get(key)
        if point is None:
            raise ValueError(f"device {self._device_id!r} has no point {key!r}")
        if str(point.access) not in _WRITABLE:
            raise ValueError(f"device {self._device_id!r}: point {key!r} is read-only")
        if point.table not in (Table.COIL, Table.HOLDING):
            raise ValueError(
                f"device {self._device_id!r}: point {key!r} is in the read-only {point.table} table"
            )
        return point

    def _enum_code(self, point: ModbusPoint, value: Value) -> Value:
        if not isinstance(value, str) or not point.enum or point.type is DataType.STRING:
            return value
        for code, label in point.enum.items():
            if label == value:
                return code
        raise ValueError(f"device {self._device_id!r}: point {point.id!r} has no state {value!r}")


def _split(group: ReadBlock) -> tuple[ReadBlock, ...]:
    """One block per distinct span of ``group``'s points (bits of one register stay together)."""
    spans: dict[tuple[int, int], list[BlockPoint]] = {}
    for point in group.points:
        spans.setdefault((point.offset, point.count), []).append(point)
    return tuple(
        ReadBlock(
            table=group.table,
            start=group.start + offset,
            count=count,
            interval_s=group.interval_s,
            points=tuple(BlockPoint(p.key, 0, p.count, p.decode) for p in points),
        )
        for (offset, count), points in sorted(spans.items())
    )
