"""The register image of one simulated device, built from its profile through the shared codec.

The gateway decodes a point with ``drivers.modbus.codec``; the image encodes the model's values
with the same codec and the same point definitions, so what the gateway reads is by construction
what the profile says (the "one source of truth"). Writes are decoded back into point values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog

from core.model import Value
from drivers.modbus.codec import decode, encode
from drivers.modbus.types import DataType, Table, register_count
from simulators.profile import SimPoint

__all__ = ["ILLEGAL_ADDRESS", "ILLEGAL_VALUE", "ModbusRefusal", "PointWrite", "RegisterImage"]

_LOG = structlog.get_logger(__name__)

ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03


class ModbusRefusal(Exception):
    """The request is answered with a Modbus exception code."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"modbus exception {code}")


@dataclass(frozen=True, slots=True)
class PointWrite:
    point_id: str
    value: Value


class RegisterImage:
    """Four sparse tables (address -> 16-bit value, or 0/1 for bits) and the points mapped on them."""

    def __init__(self, points: Sequence[SimPoint]) -> None:
        self.points = tuple(points)
        self._tables: dict[Table, dict[int, int]] = {t: {} for t in Table}
        # address -> points covering it, to find what a write touched and whether a read is mapped
        self._cover: dict[Table, dict[int, list[SimPoint]]] = {t: {} for t in Table}
        for point in self.points:
            for a in range(point.address, point.address + register_count(point.type, point.length)):
                self._cover[point.table].setdefault(a, []).append(point)
                self._tables[point.table].setdefault(a, 0)
        self._bad_points: set[str] = set()

    def refresh(self, values: Mapping[str, Value]) -> None:
        """Encode every point whose value the model provides; points it does not know stay as they are."""
        for point in self.points:
            if point.id not in values:
                continue
            self.set_point(point, values[point.id])

    def set_point(self, point: SimPoint, value: Value) -> None:
        table = self._tables[point.table]
        try:
            if point.type is DataType.BIT:
                regs = encode(point, bool(value), current=table.get(point.address, 0))
            elif point.type is DataType.BOOL:
                regs = encode(point, bool(value))
            else:
                regs = encode(point, value)
        except ValueError as exc:
            # A model value outside the profile's encoding is a bug in the pair; say so once.
            if point.id not in self._bad_points:
                self._bad_points.add(point.id)
                _LOG.warning("simulator value does not fit its point", point=point.id, error=str(exc))
            return
        for i, reg in enumerate(regs):
            table[point.address + i] = reg

    def get_point(self, point: SimPoint) -> Value:
        count = register_count(point.type, point.length)
        table = self._tables[point.table]
        return decode(point, [table.get(point.address + i, 0) for i in range(count)])

    def read(self, table: Table, address: int, count: int) -> list[int]:
        cover = self._cover[table]
        if not any((address + i) in cover for i in range(count)):
            raise ModbusRefusal(ILLEGAL_ADDRESS)
        data = self._tables[table]
        return [data.get(address + i, 0) for i in range(count)]

    def write(self, table: Table, address: int, values: Sequence[int]) -> list[PointWrite]:
        """Store written registers (or bits) and decode the writable points they touched.

        A write that touches no writable point is refused with ILLEGAL_ADDRESS, as a device
        refuses writes to its measured values.
        """
        cover = self._cover[table]
        touched: dict[str, SimPoint] = {}
        for i in range(len(values)):
            for point in cover.get(address + i, ()):
                if point.writable:
                    touched[point.id] = point
        if not touched:
            raise ModbusRefusal(ILLEGAL_ADDRESS)
        data = self._tables[table]
        for i, value in enumerate(values):
            data[address + i] = value & 0xFFFF
        writes: list[PointWrite] = []
        for point in touched.values():
            try:
                writes.append(PointWrite(point.id, self.get_point(point)))
            except ValueError as exc:
                raise ModbusRefusal(ILLEGAL_VALUE) from exc
        return writes
