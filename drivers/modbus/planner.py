"""Pure read planner: merge a device's points into as few block reads as the device allows.

Points are grouped by poll interval, then by table (one function code per table); within a
group they are sorted by address and merged left to right while the hole between the block so
far and the next point is at most ``max_gap`` registers and the block stays within the cap
(125 registers or 2,000 bits per request by the standard; less for devices that say so).
Greedy merging is optimal here: extending the current block as far as the rules allow never
leaves more work for the blocks after it.

Overlapping points (several ``bit`` points of one register, a string and a word inside it)
share the read. Each ``ReadBlock`` carries its points with their offset into the block and a
precompiled decoder, so decoding a block is one call per point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from drivers.modbus.codec import Decoder, shared_decoder
from drivers.modbus.types import RegisterSpec, Table, register_count

__all__ = [
    "MAX_BITS_PER_READ",
    "MAX_REGISTERS_PER_READ",
    "BlockPoint",
    "ReadBlock",
    "plan_reads",
]

MAX_REGISTERS_PER_READ = 125  # FC 03/04, Modbus Application Protocol v1.1b3 §6.3/6.4
MAX_BITS_PER_READ = 2000  # FC 01/02, §6.1/6.2
_ADDRESS_SPACE = 65536

# Tables in function-code order, so that plans come out in a stable, readable order.
_TABLE_ORDER = {Table.COIL: 0, Table.DISCRETE_INPUT: 1, Table.HOLDING: 2, Table.INPUT: 3}


@dataclass(frozen=True, slots=True)
class BlockPoint:
    """One point inside a block: its key, where it starts in the block, how to decode it."""

    key: str
    offset: int
    count: int
    decode: Decoder = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: ``count`` registers (or bits) of ``table`` from ``start``.

    Satisfies ``drivers.base.PollGroup`` (``interval_s`` and ``keys``).
    """

    table: Table
    start: int
    count: int
    interval_s: float
    points: tuple[BlockPoint, ...]
    keys: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(p.key for p in self.points))

    @property
    def end(self) -> int:
        """One past the last register (or bit) read."""
        return self.start + self.count


def _point_count(spec: RegisterSpec) -> int:
    return register_count(spec.type, spec.length)


def _default_interval(default_interval_s: float) -> Callable[[RegisterSpec], float]:
    def interval_of(spec: RegisterSpec) -> float:
        own = getattr(spec, "poll_interval_s", None)
        return float(own) if own is not None else default_interval_s

    return interval_of


def plan_reads(
    points: Iterable[RegisterSpec],
    *,
    max_registers: int = MAX_REGISTERS_PER_READ,
    max_bits: int = MAX_BITS_PER_READ,
    max_gap: int = 16,
    default_interval_s: float = 5.0,
    interval_of: Callable[[RegisterSpec], float] | None = None,
) -> list[ReadBlock]:
    """Merge ``points`` into block reads, ordered by interval, table and address.

    ``interval_of`` gives a point's poll interval; by default a point's own ``poll_interval_s``
    attribute if it has one and is not None, else ``default_interval_s``. ``max_gap`` is the
    largest hole (in registers, or bits for coils and discrete inputs) worth reading through.

    Raises ``ValueError`` for a point larger than the cap, a point past address 65535, two
    points with the same key, or limits outside what Modbus allows.
    """
    if not 1 <= max_registers <= MAX_REGISTERS_PER_READ:
        raise ValueError(f"max_registers must be 1..{MAX_REGISTERS_PER_READ}, not {max_registers}")
    if not 1 <= max_bits <= MAX_BITS_PER_READ:
        raise ValueError(f"max_bits must be 1..{MAX_BITS_PER_READ}, not {max_bits}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, not {max_gap}")
    interval = interval_of or _default_interval(default_interval_s)

    groups: dict[tuple[float, Table], list[tuple[int, int, RegisterSpec]]] = {}
    seen: set[str] = set()
    for spec in points:
        if spec.id in seen:
            raise ValueError(f"point {spec.id!r} appears twice")
        seen.add(spec.id)
        count = _point_count(spec)
        cap = max_bits if spec.table.is_bits else max_registers
        if count > cap:
            raise ValueError(
                f"point {spec.id!r} needs {count} {'bits' if spec.table.is_bits else 'registers'}, "
                f"more than the {cap} this device accepts per read"
            )
        if spec.address < 0 or spec.address + count > _ADDRESS_SPACE:
            raise ValueError(f"point {spec.id!r} at {spec.address} runs outside 0..65535")
        interval_s = interval(spec)
        if not interval_s > 0:
            raise ValueError(f"point {spec.id!r}: poll interval must be > 0, not {interval_s}")
        groups.setdefault((interval_s, spec.table), []).append((spec.address, count, spec))

    blocks: list[ReadBlock] = []
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], _TABLE_ORDER[kv[0][1]]))
    for (interval_s, table), members in ordered:
        cap = max_bits if table.is_bits else max_registers
        blocks.extend(_merge(table, interval_s, members, cap=cap, max_gap=max_gap))
    return blocks


def _merge(
    table: Table,
    interval_s: float,
    members: list[tuple[int, int, RegisterSpec]],
    *,
    cap: int,
    max_gap: int,
) -> list[ReadBlock]:
    members.sort(key=lambda m: (m[0], m[1], m[2].id))
    blocks: list[ReadBlock] = []
    current: list[tuple[int, int, RegisterSpec]] = []
    start = end = 0
    for address, count, spec in members:
        if current and address - end <= max_gap and max(end, address + count) - start <= cap:
            current.append((address, count, spec))
            end = max(end, address + count)
            continue
        if current:
            blocks.append(_block(table, interval_s, start, end, current))
        current = [(address, count, spec)]
        start, end = address, address + count
    if current:
        blocks.append(_block(table, interval_s, start, end, current))
    return blocks


def _block(
    table: Table, interval_s: float, start: int, end: int, members: list[tuple[int, int, RegisterSpec]]
) -> ReadBlock:
    points = tuple(
        BlockPoint(key=spec.id, offset=address - start, count=count, decode=shared_decoder(spec))
        for address, count, spec in members
    )
    return ReadBlock(table=table, start=start, count=end - start, interval_s=interval_s, points=points)
