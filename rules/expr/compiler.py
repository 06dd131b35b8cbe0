"""Type-check a parsed condition and compile it into nested closures (never ``eval``).

Values are three-valued: a point whose quality is bad (or that has not been read yet) is
*unknown* (``None``), and unknown propagates through arithmetic and comparisons. ``and``/``or``
follow Kleene logic (``false and unknown`` is false, ``true or unknown`` is true), so a
condition is decided whenever the known inputs decide it, and otherwise left alone.

Arithmetic never raises and never yields infinity or NaN: an overflow (a float past 1.8e308, an
integer too large for a float), a NaN or a non-finite point value makes the result unknown and
records what happened in ``Env.faults`` under the expression's name, for the engine to report.
Integer-valued literals are exact ints only up to 2**53, so literals cannot build huge integers.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rules.expr.errors import ExprTypeError
from rules.expr.nodes import Binary, Call, Literal, Node, Ref, Unary
from rules.expr.parser import parse
from rules.expr.scope import Env, Scope

__all__ = ["CompiledExpr", "T", "compile_expr"]

Fn = Callable[[Env], Any]


class T(enum.Enum):
    NUM = "number"
    BOOL = "boolean"
    STR = "string"
    ANY = "point value"
    DURATION = "duration"
    LIST_BOOL = "list of booleans"
    LIST_NUM = "list of numbers"


_NUMERIC = (T.NUM, T.ANY, T.DURATION)
_EXACT_INT = 2.0**53


@dataclass(slots=True)
class CompiledExpr:
    source: str
    fn: Fn
    type: T
    points: frozenset[str]
    alarms: frozenset[str]
    held_s: dict[str, float]  # hold duration of every ``for``/``held`` node, by its state key
    name: str = "expr"

    @property
    def timed(self) -> bool:
        return bool(self.held_s)

    def evaluate(self, env: Env) -> Any:
        return self.fn(env)

    def next_due(self, env: Env) -> float | None:
        """Earliest wall time at which a running hold completes, if any."""
        due = [env.held[k] + d for k, d in self.held_s.items() if k in env.held]
        pending = [t for t in due if t > env.now]  # a hold already met needs no more ticks
        return min(pending) if pending else None


def compile_expr(text: str, scope: Scope, *, name: str = "expr", want: T | None = T.BOOL) -> CompiledExpr:
    """Parse, check and compile ``text``; raises ``ExprSyntaxError``/``ExprTypeError``.

    ``name`` must be unique per engine: the state of holds (``for 30s``) lives in ``Env.held``
    under ``NAME#N`` so that it can be snapshotted and two engines never share it.
    """
    tree = parse(text)
    c = _Compiler(scope, name)
    fn, typ = c.compile(tree)
    if want is T.BOOL and typ not in (T.BOOL, T.ANY):
        raise ExprTypeError(f"a condition must be true or false, this is a {typ.value}", 1, 1)
    if want is T.BOOL and typ is T.ANY:
        fn = _truthy(fn)
    return CompiledExpr(text, fn, typ, frozenset(c.points), frozenset(c.alarms), c.held_s, name)


def _truthy(fn: Fn) -> Fn:
    def f(env: Env) -> Any:
        v = fn(env)
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, int | float):
            return v != 0
        return None

    return f


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        return v
    return None


class _Compiler:
    def __init__(self, scope: Scope, name: str) -> None:
        self.scope = scope
        self.name = name
        self.points: set[str] = set()
        self.alarms: set[str] = set()
        self.held_s: dict[str, float] = {}

    def compile(self, node: Node) -> tuple[Fn, T]:
        if isinstance(node, Literal):
            return self._literal(node)
        if isinstance(node, Ref):
            return self._point(self._ref_point(node), node)
        if isinstance(node, Unary):
            return self._unary(node)
        if isinstance(node, Binary):
            return self._binary(node)
        return self._call(node)

    # -- leaves ----------------------------------------------------------------------------
    @staticmethod
    def _literal(node: Literal) -> tuple[Fn, T]:
        value = node.value
        typ = (
            T.DURATION
            if node.is_duration
            else (T.BOOL if isinstance(value, bool) else T.STR if isinstance(value, str) else T.NUM)
        )
        if (
            isinstance(value, float)
            and value.is_integer()
            and abs(value) <= _EXACT_INT
            and not node.is_duration
        ):
            value = int(value)
        return (lambda env: value), typ

    def _ref_point(self, node: Ref) -> str:
        pid = self.scope.point_id(node.parts)
        if pid is None:
            raise ExprTypeError(
                f"'{'.'.join(node.parts)}' is not a point: write device.point"
                + ("" if self.scope.device is None else " or a point of this device"),
                node.line,
                node.col,
            )
        return pid

    def _point(self, pid: str, node: Node) -> tuple[Fn, T]:
        if pid not in self.scope.points:
            raise ExprTypeError(f"unknown point {pid!r}", node.line, node.col)
        self.points.add(pid)
        name = self.name

        def f(env: Env) -> Any:
            v = env.values.get(pid)
            if v.__class__ is float and not math.isfinite(v):
                env.faults[name] = f"point {pid} is {v!r}, not a finite number"
                return None
            return v

        return f, T.ANY

    # -- operators -------------------------------------------------------------------------
    def _unary(self, node: Unary) -> tuple[Fn, T]:
        inner, typ = self.compile(node.operand)
        if node.op == "not":
            self._need(typ, (T.BOOL, T.ANY), node, "'not'")
            inner = _truthy(inner) if typ is T.ANY else inner

            def f_not(env: Env) -> Any:
                v = inner(env)
                return None if v is None else not v

            return f_not, T.BOOL
        self._need(typ, _NUMERIC, node, "'-'")

        def f_neg(env: Env) -> Any:
            v = _num(inner(env))
            return None if v is None else -v

        return f_neg, T.NUM if typ is T.ANY else typ

    def _binary(self, node: Binary) -> tuple[Fn, T]:
        if node.op == "for":
            assert isinstance(node.right, Literal)
            return self._held(node.left, float(node.right.value), node)
        lf, lt = self.compile(node.left)
        rf, rt = self.compile(node.right)
        op = node.op
        if op in ("and", "or"):
            self._need(lt, (T.BOOL, T.ANY), node.left, f"'{op}'")
            self._need(rt, (T.BOOL, T.ANY), node.right, f"'{op}'")
            lf = _truthy(lf) if lt is T.ANY else lf
            rf = _truthy(rf) if rt is T.ANY else rf
            return (_and(lf, rf) if op == "and" else _or(lf, rf)), T.BOOL
        if op in ("==", "!="):
            if T.ANY not in (lt, rt) and not ({lt, rt} <= set(_NUMERIC) or lt is rt):
                raise ExprTypeError(f"cannot compare a {lt.value} with a {rt.value}", node.line, node.col)
            return _equality(lf, rf, op == "!="), T.BOOL
        self._need(lt, _NUMERIC, node.left, f"'{op}'")
        self._need(rt, _NUMERIC, node.right, f"'{op}'")
        if op in ("<", "<=", ">", ">="):
            return _ordering(lf, rf, op), T.BOOL
        typ = T.DURATION if T.DURATION in (lt, rt) and op in "+-" else T.NUM
        return _arith(lf, rf, op, self.name, f"'{op}' at {node.line}:{node.col}"), typ

    def _held(self, inner_node: Node, duration_s: float, node: Node) -> tuple[Fn, T]:
        inner, typ = self.compile(inner_node)
        self._need(typ, (T.BOOL, T.ANY), inner_node, "a hold ('for' / held)")
        inner = _truthy(inner) if typ is T.ANY else inner
        if duration_s <= 0:
            raise ExprTypeError("a hold needs a positive duration", node.line, node.col)
        key = f"{self.name}#{len(self.held_s)}"
        self.held_s[key] = duration_s

        def f(env: Env) -> Any:
            v = inner(env)
            if v is True:
                since = env.held.get(key)
                if since is None:
                    env.held[key] = since = env.now
                return env.now - since >= duration_s
            env.held.pop(key, None)  # an unknown breaks the hold: it must be seen true throughout
            return v

        return f, T.BOOL

    # -- functions -------------------------------------------------------------------------
    def _call(self, node: Call) -> tuple[Fn, T]:
        name = node.name
        if name == "held":
            self._arity(node, 2)
            dur = node.args[1]
            if not (isinstance(dur, Literal) and dur.is_duration):
                raise ExprTypeError("held(condition, DURATION): the duration is like 30s", dur.line, dur.col)
            return self._held(node.args[0], float(dur.value), node)
        if name == "point":
            self._arity(node, 1)
            return self._point(self._string_point(node.args[0]), node)
        if name == "good":
            self._arity(node, 1)
            arg = node.args[0]
            pid = self._ref_point(arg) if isinstance(arg, Ref) else self._string_point(arg)
            self._point(pid, node)
            return (lambda env: env.values.get(pid) is not None), T.BOOL
        if name == "alarm":
            self._arity(node, 1)
            keys = self._alarm_ref(node.args[0])
            return _any_active(keys), T.BOOL
        if name == "alarms":
            return self._alarms(node)
        if name in ("any", "all", "count"):
            items = self._list(node, T.LIST_BOOL)
            fn = {"any": _any, "all": _all, "count": _count}[name](items)
            return fn, T.NUM if name == "count" else T.BOOL
        if name in ("min", "max"):
            items = self._list(node, T.LIST_NUM)
            return _minmax(items, min if name == "min" else max), T.NUM
        if name == "abs":
            self._arity(node, 1)
            inner, typ = self.compile(node.args[0])
            self._need(typ, _NUMERIC, node.args[0], "abs()")

            def f_abs(env: Env) -> Any:
                v = _num(inner(env))
                return None if v is None else abs(v)

            return f_abs, T.NUM
        raise ExprTypeError(
            f"unknown function {name!r} (known: abs, alarm, alarms, all, any, count, good, held, "
            "max, min, point)",
            node.line,
            node.col,
        )

    def _arity(self, node: Call, n: int) -> None:
        if len(node.args) != n or node.kwargs:
            raise ExprTypeError(f"{node.name}() takes {n} argument(s)", node.line, node.col)

    def _string_point(self, arg: Node) -> str:
        if not (isinstance(arg, Literal) and isinstance(arg.value, str)):
            raise ExprTypeError('write the point as a string: point("site/device/point")', arg.line, arg.col)
        text = arg.value
        if "/" in text:
            return text
        pid = self.scope.point_id(tuple(text.split(".")))
        if pid is None:
            raise ExprTypeError(f"{text!r} is not device.point", arg.line, arg.col)
        return pid

    def _alarm_ref(self, arg: Node) -> list[str]:
        if isinstance(arg, Ref):
            keys = self.scope.alarm_keys(arg.parts)
            label = ".".join(arg.parts)
        elif isinstance(arg, Literal) and isinstance(arg.value, str):
            keys = self.scope.alarm_keys_by_id(arg.value)
            label = arg.value
        else:
            raise ExprTypeError("alarm() takes an alarm or point reference", arg.line, arg.col)
        if not keys:
            raise ExprTypeError(f"no alarm is defined for {label!r}", arg.line, arg.col)
        self.alarms.update(keys)
        return keys

    def _alarms(self, node: Call) -> tuple[Fn, T]:
        filters: dict[str, str] = {}
        for key, value in node.kwargs:
            if key not in ("zone", "priority", "class", "device"):
                raise ExprTypeError(
                    f"alarms() filters are zone, priority, class and device, not {key!r}",
                    value.line,
                    value.col,
                )
            if not isinstance(value, Literal) or isinstance(value.value, bool):
                raise ExprTypeError(f"alarms({key}=...) takes a string", value.line, value.col)
            v = value.value
            filters[key] = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
        keys: list[str] = []
        for arg in node.args:
            keys.extend(self._alarm_ref(arg))
        if filters:
            keys.extend(
                self.scope.select(
                    filters.get("zone"), filters.get("priority"), filters.get("class"), filters.get("device")
                )
            )
        if not keys:
            raise ExprTypeError("alarms(...) selects no alarm", node.line, node.col)
        keys = sorted(set(keys))
        self.alarms.update(keys)
        return (lambda env: [k in env.active for k in keys]), T.LIST_BOOL

    def _list(self, node: Call, want: T) -> list[tuple[Fn, T]]:
        if node.kwargs:
            raise ExprTypeError(f"{node.name}() takes no named arguments", node.line, node.col)
        if not node.args:
            raise ExprTypeError(f"{node.name}() needs arguments", node.line, node.col)
        items = [self.compile(a) for a in node.args]
        elem = (T.BOOL, T.ANY) if want is T.LIST_BOOL else _NUMERIC
        for (_, typ), arg in zip(items, node.args, strict=True):
            if typ is not want and typ not in elem:
                raise ExprTypeError(f"{node.name}() takes {want.value}, not a {typ.value}", arg.line, arg.col)
        return items

    @staticmethod
    def _need(typ: T, allowed: tuple[T, ...], node: Node, what: str) -> None:
        if typ not in allowed:
            raise ExprTypeError(f"{what} cannot take a {typ.value}", node.line, node.col)


def _and(lf: Fn, rf: Fn) -> Fn:
    def f(env: Env) -> Any:
        a = lf(env)
        b = rf(env)  # evaluated even when a is false, so holds on the right keep their clocks
        if a is False or b is False:
            return False
        if a is None or b is None:
            return None
        return True

    return f


def _or(lf: Fn, rf: Fn) -> Fn:
    def f(env: Env) -> Any:
        a = lf(env)
        b = rf(env)
        if a is True or b is True:
            return True
        if a is None or b is None:
            return None
        return False

    return f


def _equality(lf: Fn, rf: Fn, negate: bool) -> Fn:
    def f(env: Env) -> Any:
        a = lf(env)
        b = rf(env)
        if a is None or b is None:
            return None
        return (a != b) if negate else (a == b)

    return f


def _ordering(lf: Fn, rf: Fn, op: str) -> Fn:
    def f(env: Env) -> Any:
        a = _num(lf(env))
        b = _num(rf(env))
        if a is None or b is None:
            return None
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        return a >= b

    return f


def _arith(lf: Fn, rf: Fn, op: str, name: str, where: str) -> Fn:
    def f(env: Env) -> Any:
        a = _num(lf(env))
        b = _num(rf(env))
        if a is None or b is None:
            return None
        try:
            if op == "+":
                r = a + b
            elif op == "-":
                r = a - b
            elif op == "*":
                r = a * b
            elif b == 0:
                return None  # division by zero is unknown, not a crash of the rules engine
            else:
                r = a / b if op == "/" else a % b
        except OverflowError as exc:  # an int too large for a float
            env.faults[name] = f"arithmetic overflow in {where}: {exc}"
            return None
        if r.__class__ is float and not math.isfinite(r):
            what = "is not a number (NaN)" if math.isnan(r) else "overflowed (beyond ±1.8e308)"
            env.faults[name] = f"arithmetic overflow: the result of {where} {what}"
            return None
        return r

    return f


def _any_active(keys: list[str]) -> Fn:
    if len(keys) == 1:
        key = keys[0]
        return lambda env: key in env.active
    return lambda env: any(k in env.active for k in keys)


def _flatten(items: list[tuple[Fn, T]], env: Env) -> list[Any]:
    out: list[Any] = []
    for fn, typ in items:
        v = fn(env)
        if typ in (T.LIST_BOOL, T.LIST_NUM):
            out.extend(v)
        else:
            out.append(v)
    return out


def _any(items: list[tuple[Fn, T]]) -> Fn:
    def f(env: Env) -> Any:
        vals = _flatten(items, env)
        if any(v is True for v in vals):
            return True
        return None if any(v is None for v in vals) else False

    return f


def _all(items: list[tuple[Fn, T]]) -> Fn:
    def f(env: Env) -> Any:
        vals = _flatten(items, env)
        if any(v is False for v in vals):
            return False
        return None if any(v is None for v in vals) else True

    return f


def _count(items: list[tuple[Fn, T]]) -> Fn:
    return lambda env: sum(1 for v in _flatten(items, env) if v is True)


def _minmax(items: list[tuple[Fn, T]], pick: Callable[[list[float]], float]) -> Fn:
    def f(env: Env) -> Any:
        vals = [_num(v) for v in _flatten(items, env)]
        known = [v for v in vals if v is not None]
        if not known or len(known) != len(vals):
            return None
        return pick(known)

    return f
