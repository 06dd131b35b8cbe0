"""Modbus vocabulary shared by the planner, the codec, the config models and the simulators."""

from __future__ import annotations

import enum
from typing import Protocol

__all__ = ["REGISTER_COUNT", "DataType", "RegisterSpec", "Table", "WordOrder", "register_count"]


class DataType(enum.StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BIT = "bit"  # one bit of a holding/input register
    BOOL = "bool"  # a coil or a discrete input
    STRING = "string"


REGISTER_COUNT: dict[DataType, int] = {
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.BIT: 1,
    DataType.BOOL: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.FLOAT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT64: 4,
}


class WordOrder(enum.StrEnum):
    """Byte order of a multi-register value, letters naming bytes from most significant (A).

    ABCD big-endian (the Modbus default), CDAB word-swapped, BADC byte-swapped, DCBA little-endian.
    For 64-bit values the pattern extends: CDAB swaps every pair of words, and so on.
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


class Table(enum.StrEnum):
    """The four Modbus data tables; the function code follows from the table."""

    COIL = "coil"  # FC 01 read, FC 05/15 write
    DISCRETE_INPUT = "discrete_input"  # FC 02
    HOLDING = "holding"  # FC 03 read, FC 06/16 write
    INPUT = "input"  # FC 04

    @property
    def is_bits(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)


class RegisterSpec(Protocol):
    """What the planner and codec need of a point. ``edge.config.models.PointConfig`` fits it."""

    @property
    def id(self) -> str: ...
    @property
    def table(self) -> Table: ...
    @property
    def address(self) -> int: ...
    @property
    def type(self) -> DataType: ...
    @property
    def order(self) -> WordOrder: ...
    @property
    def bit(self) -> int | None: ...
    @property
    def length(self) -> int | None: ...
    @property
    def scale(self) -> float: ...
    @property
    def offset(self) -> float: ...


def register_count(data_type: DataType, length: int | None = None) -> int:
    """Registers (or bits, for coils and discrete inputs) a value of this type occupies."""
    if data_type is DataType.STRING:
        return length or 1
    return REGISTER_COUNT[data_type]
