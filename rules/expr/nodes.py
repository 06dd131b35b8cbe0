"""Syntax tree of the condition language; every node keeps its 1-based line and column."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Binary", "Call", "Literal", "Node", "Ref", "Unary"]


@dataclass(frozen=True, slots=True)
class Literal:
    value: float | str | bool
    is_duration: bool
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class Ref:
    """A bare dotted name: ``level`` (same device), ``tank1.level`` (device.point)."""

    parts: tuple[str, ...]
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...]
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" or "not"
    operand: Node
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # arithmetic, comparison, "and", "or", "for"
    left: Node
    right: Node
    line: int
    col: int


Node = Literal | Ref | Call | Unary | Binary
