"""One YAML file with the position of every node, so a problem can be reported as
``site.yaml:12:7: devices[3].unit: ...``.

Round-trip parsing (which keeps positions) is pure Python and several times slower than the
libyaml-backed safe parser, so a file is read with the fast parser and the round-trip tree is
built only when a position is first asked for, that is, only when there is a problem to locate.

This module sits below the site loader, every section owner (the uplink, the dashboard,
the rules host) and central's own configuration, which all read YAML with positions.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import structlog
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode

from core.errors import ConfigError, ConfigProblem

__all__ = ["Loc", "Located", "YamlDocument", "format_loc", "plain", "read_yaml"]

# A path into a document: mapping keys and sequence indexes, e.g. ("devices", 3, "unit").
Loc = tuple[str | int, ...]


class Located(Protocol):
    """A problem at a path in the document; ``at_key`` points at a mapping key, not its value."""

    @property
    def loc(self) -> Loc: ...
    @property
    def message(self) -> str: ...
    @property
    def at_key(self) -> bool: ...


_LOG = structlog.get_logger(__name__)
_UNPARSED: Any = object()


def format_loc(loc: Loc) -> str:
    """``("devices", 3, "points", 0, "address")`` -> ``devices[3].points[0].address``."""
    text = ""
    for step in loc:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "(top level)"


class _CheckedScalars:
    """Turns a scalar the resolver took for a number or a date but the constructor cannot build
    (``-_``, ``._``, ``0x_``, ``2024-02-30``) into a located YAML error instead of a bare
    ``ValueError`` or ``IndexError`` from inside ruamel (found by tests/fuzz)."""

    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)  # type: ignore[misc]
        except (ValueError, IndexError, OverflowError) as exc:
            if not isinstance(node, ScalarNode):
                raise
            kind = str(tag or node.tag or "").rsplit(":", 1)[-1]
            if kind == "timestamp":
                problem = f"{node.value!r} is not a valid date ({exc})"
            elif kind in ("int", "float"):
                problem = f"{node.value!r} looks like a number but is not one"
            else:
                problem = f"{node.value!r} cannot be read as {kind or 'a value'} ({exc})"
            problem += "; put it in quotes if it is text"
            raise ConstructorError(None, None, problem, node.start_mark) from exc


class _SafeConstructor(_CheckedScalars, SafeConstructor):
    pass


class _RoundTripConstructor(_CheckedScalars, RoundTripConstructor):
    pass


def _yaml(typ: str) -> YAML:
    if typ == "safe":
        # typ="safe" uses libyaml's parser when ruamel.yaml.clib is installed, else pure Python.
        yaml = YAML(typ="safe")
        yaml.Constructor = _SafeConstructor
    else:
        yaml = YAML(typ="rt", pure=True)
        yaml.Constructor = _RoundTripConstructor
    return yaml


class YamlDocument:
    """One YAML file: the data as plain Python values (what pydantic validates) and, on demand,
    the round-trip tree that knows the position of every node.

    The round-trip parser is pure Python and several times slower than the C-accelerated safe
    parser, so a clean file is read only by the fast one; the tree is built the first time a
    position is asked for, that is, only when there is a problem to locate.
    """

    __slots__ = ("_tree", "data", "file", "text")

    def __init__(self, file: str, text: str, data: Any, tree: Any = _UNPARSED) -> None:
        self.file = file
        self.text = text
        self.data = data
        self._tree = tree

    @property
    def tree(self) -> Any:
        if self._tree is _UNPARSED:
            try:
                self._tree = _yaml("rt").load(self.text)
            except YAMLError:
                # The fast parser accepted the text; without a tree, positions fall back to 1:1.
                _LOG.warning("round_trip_parse_failed", file=self.file)
                self._tree = None
        return self._tree

    def position(self, loc: Loc, *, at_key: bool = False) -> tuple[int, int]:
        """1-based line and column of the node at ``loc``.

        Walks as deep as the file goes: for a key that is missing, that is the mapping that
        lacks it. A value is located at the value (``address: -1`` points at ``-1``) except
        when ``at_key`` asks for the key, or the value is empty and so has no position.
        """
        node = self.tree
        line, col = (node.lc.line, node.lc.col) if isinstance(node, CommentedMap | CommentedSeq) else (0, 0)
        for n, step in enumerate(loc):
            last = n == len(loc) - 1
            try:
                if isinstance(node, CommentedMap) and step in node:
                    child = node[step]
                    use_key = (last and at_key) or child is None
                    line, col = node.lc.key(step) if use_key else node.lc.value(step)
                    node = child
                    continue
                if isinstance(node, CommentedSeq) and isinstance(step, int) and 0 <= step < len(node):
                    line, col = node.lc.item(step)
                    node = node[step]
                    continue
            except (KeyError, IndexError, TypeError):
                # Keys merged in from an anchor (``<<: *x``) have no position of their own.
                pass
            if isinstance(node, CommentedMap | CommentedSeq):
                line, col = node.lc.line, node.lc.col
            break
        return line + 1, col + 1

    def problem(self, issue: Located) -> ConfigProblem:
        line, col = self.position(issue.loc, at_key=issue.at_key)
        return ConfigProblem(self.file, line, col, format_loc(issue.loc), issue.message)


# Deeper than any site or profile needs; deeper documents would exhaust Python's recursion
# limit in the parser or the validation after it (found by tests/fuzz).
MAX_DEPTH = 64


def read_yaml(path: Path) -> YamlDocument:
    """Parse one YAML file. Raises ``OSError`` if it cannot be read and ``ConfigError`` (with
    the parser's own position) if it is not valid YAML: bad indentation, a tab, a duplicate key."""
    file = str(path)
    try:
        doc = _read_yaml(path, file)
    except RecursionError:
        doc = None
    if doc is None or _too_deep(doc.data):
        message = f"nested more than {MAX_DEPTH} levels deep; a configuration file needs only a few"
        raise ConfigError([ConfigProblem(file, 1, 1, "(file)", message)])
    return doc


def _too_deep(data: Any) -> bool:
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return False


def _read_yaml(path: Path, file: str) -> YamlDocument:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [ConfigProblem(file, line, 1, "(file)", "not UTF-8 text; save the file as UTF-8")]
        ) from exc
    try:
        data = _yaml("safe").load(text)
    except YAMLError:
        # Parse again in round-trip mode: its errors carry the marks and wording we report.
        pass
    else:
        return YamlDocument(file, text, plain(data))
    try:
        tree = _yaml("rt").load(text)
    except MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(file, exc)]) from exc
    except YAMLError as exc:
        raise ConfigError([ConfigProblem(file, 1, 1, "(file)", f"not valid YAML: {exc}")]) from exc
    return YamlDocument(file, text, plain(tree), tree)


def _syntax_problem(file: str, exc: MarkedYAMLError) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = str(exc.problem or exc.context or "invalid YAML")
    if "'\\t'" in problem:
        message = "a tab character: indent YAML with spaces only"
    elif "duplicate key" in problem:
        message = problem.removeprefix("found ")
    elif "mapping values are not allowed" in problem or "expected <block end>" in problem:
        message = "bad indentation or a missing ':': this line does not line up with the keys above it"
    else:
        message = f"not valid YAML: {problem}"
        if exc.context:
            message += f" ({exc.context})"
    return ConfigProblem(file, line, col, "(syntax)", message)


def plain(node: Any) -> Any:
    """The round-trip tree as plain dicts, lists and scalars, so pydantic sees ordinary types
    (ruamel's ScalarFloat, HexInt or TimeStamp subclasses would otherwise leak through)."""
    if isinstance(node, Mapping):
        return {plain(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime.date):
        return node.isoformat()
    return str(node)
