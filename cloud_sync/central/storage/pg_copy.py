"""PostgreSQL's binary ``COPY`` format for central's telemetry rows, built from columns. Pure.

asyncpg's ``copy_records_to_table`` encodes one Python tuple per row, and making those tuples
cost more than PostgreSQL spends storing them. Here a batch's columns become the COPY stream in
a few C-level passes: a template row with every field that is the same for the whole batch
(lengths, nulls, the value's kind, the reason, historical, seq) is repeated, then each varying
fixed-size field is written into it column by column with strided slice assignment. A batch
that does not fit that shape (nulls mixed with values, text values, differing reasons) is
encoded row by row, which is slower but stores exactly the same.

Format (PostgreSQL docs, "COPY", binary format): an 11-byte signature, flags and extension
length (int32 each), then per row an int16 field count and per field an int32 length (-1 for
NULL) and the value in network byte order; int16 -1 ends the stream.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Sequence
from typing import Any, Final

__all__ = [
    "COPY_HEADER",
    "COPY_TRAILER",
    "TELEMETRY_COLUMNS",
    "encode_value",
    "one_layout",
    "telemetry_copy_rows",
]

COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER: Final = struct.pack(">h", -1)
TELEMETRY_COLUMNS: Final = (
    "point",
    "ts",
    "source_ts",
    "vnum",
    "vtext",
    "vkind",
    "quality",
    "reason",
    "historical",
    "seq",
)
_EXACT: Final = 2**53  # larger integers lose digits as a float8: their digits go to vtext too
_SWAP: Final = sys.byteorder == "little"
_NULL: Final = struct.pack(">i", -1)
_KIND: Final = {type(None): 0, bool: 1, int: 2, float: 3}
_NUMERIC: Final = frozenset({bool, int, float})
_INT4: Final = struct.Struct(">ii")
_FLOAT8: Final = struct.Struct(">id")
_INT2: Final = struct.Struct(">ih")
_TEXT_LEN: Final = struct.Struct(">i")


def encode_value(value: Any) -> tuple[float | None, str | None, int]:
    """A sample's value → (vnum, vtext, vkind); vkind 0 null, 1 bool, 2 int, 3 float, 4 text."""
    if value is None:
        return None, None, 0
    if value is True or value is False:
        return float(value), None, 1
    if isinstance(value, int):
        return float(value), (str(value) if abs(value) > _EXACT else None), 2
    if isinstance(value, float):
        return value, None, 3
    return None, str(value), 4


def _network(code: str, values: Sequence[Any]) -> bytes:
    column = array(code, values)
    if _SWAP:
        column.byteswap()
    return column.tobytes()


def _text(value: str) -> bytes:
    data = value.encode()
    return _TEXT_LEN.pack(len(data)) + data


def one_layout(source: Sequence[float | None], value: Sequence[Any], reason: Sequence[str]) -> bool:
    """True when every row of these columns encodes to the same layout, the fast case of
    :func:`telemetry_copy_rows`: no source time or all of them, only numbers that a float8
    holds exactly (no null, text or very large integer), one reason for all."""
    if not value:
        return True
    nulls = source.count(None)
    types = set(map(type, value))
    return (
        (nulls == 0 or nulls == len(source))
        and types <= _NUMERIC
        and (int not in types or _small([x for x in value if type(x) is int]))
        and reason.count(reason[0]) == len(reason)
    )


def telemetry_copy_rows(
    point: Sequence[int],
    ts: Sequence[float],
    source: Sequence[float | None],
    value: Sequence[Any],
    quality: Sequence[int],
    reason: Sequence[str],
    historical: Sequence[bool],
    seq: Sequence[int],
) -> bytes:
    """Rows in :data:`TELEMETRY_COLUMNS` order, without header or trailer.

    ``point`` holds the points' integer ids; the value columns are encoded as
    :func:`encode_value` says. All eight sequences have one entry per row.
    """
    n = len(point)
    if (
        not n
        == len(ts)
        == len(source)
        == len(value)
        == len(quality)
        == len(reason)
        == len(historical)
        == len(seq)
    ):
        raise ValueError("telemetry columns differ in length")
    if n == 0:
        return b""
    if one_layout(source, value, reason):
        return _strided(point, ts, source, value, quality, reason[0], historical, seq)
    return b"".join(
        _row(*row) for row in zip(point, ts, source, value, quality, reason, historical, seq, strict=True)
    )


def _small(ints: list[int]) -> bool:
    return min(ints) >= -_EXACT and max(ints) <= _EXACT


def _strided(
    point: Sequence[int],
    ts: Sequence[float],
    source: Sequence[float | None],
    value: Sequence[Any],
    quality: Sequence[int],
    reason: str,
    historical: Sequence[bool],
    seq: Sequence[int],
) -> bytes:
    # Every row has the same size here: build one row with the batch-wide fields filled in,
    # note where the varying ones go, repeat it n times and write each varying column at a
    # stride of one row, byte by byte (each pass is one C loop over the batch).
    template = bytearray(struct.pack(">h", len(TELEMETRY_COLUMNS)))
    varying: list[tuple[int, int, bytes]] = []  # (offset, width, the column's bytes)

    def field(width: int, code: str, column: Sequence[Any]) -> None:
        template.extend(struct.pack(">i", width))
        varying.append((len(template), width, _network(code, column)))
        template.extend(bytes(width))

    n = len(point)
    field(4, "i", point)
    field(8, "d", ts)
    if source[0] is None:
        template.extend(_NULL)
    else:
        field(8, "d", source)
    field(8, "d", value)
    template.extend(_NULL)  # vtext: only text values and very large integers have one
    types = set(map(type, value))
    if len(types) == 1:
        template.extend(_INT2.pack(2, _KIND[types.pop()]))
    else:
        field(2, "h", list(map(_KIND.__getitem__, map(type, value))))
    field(2, "h", quality)
    template.extend(_text(reason))
    if historical.count(historical[0]) == n:
        template.extend(struct.pack(">ib", 1, historical[0]))
    else:
        field(1, "b", historical)
    if seq.count(seq[0]) == n:
        template.extend(struct.pack(">iq", 8, seq[0]))
    else:
        field(8, "q", seq)
    size = len(template)
    out = bytearray(template * n)
    for offset, width, data in varying:
        for k in range(width):
            out[offset + k :: size] = data[k::width]
    return bytes(out)


def _row(
    point: int,
    ts: float,
    source: float | None,
    value: Any,
    quality: int,
    reason: str,
    historical: bool,
    seq: int,
) -> bytes:
    vnum, vtext, vkind = encode_value(value)
    return b"".join(
        (
            struct.pack(">h", len(TELEMETRY_COLUMNS)),
            _INT4.pack(4, point),
            _FLOAT8.pack(8, ts),
            _NULL if source is None else _FLOAT8.pack(8, source),
            _NULL if vnum is None else _FLOAT8.pack(8, vnum),
            _NULL if vtext is None else _text(vtext),
            _INT2.pack(2, vkind),
            _INT2.pack(2, quality),
            _text(reason),
            struct.pack(">ib", 1, historical),
            struct.pack(">iq", 8, seq),
        )
    )
