"""Rule expressions: any text compiles or raises ExprError (with a position), never a
RecursionError or another exception; anything that compiles evaluates without raising, whatever
the point values (NaN, infinities, huge integers, strings, missing)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from rules.expr.compiler import T, compile_expr
from rules.expr.errors import ExprError
from rules.expr.scope import Env, Scope
from tests.fuzz.support import fuzz_settings, mutated_text

SITE = "s"
POINTS = frozenset(f"{SITE}/{d}/{p}" for d in ("tank", "pump") for p in ("level", "run", "temp"))
SCOPE = Scope(SITE, POINTS, {}, device="tank")

SEEDS = [
    'point("tank.level") > 2.5 and point("pump.run") == true',
    "level < 0.3 for 30s",
    'held(point("pump.temp") * 2 + 1 >= 90, 10s) or not good("tank.level")',
    'abs(point("tank.temp") - point("pump.temp")) / 0 > 1e308',
    'count(point("tank.run"), point("pump.run")) >= 2',
    'max(point("tank.level"), 3, -1e400) == min(1, 2) # comment',
    '((((((level)))))) != "text" or any(false, true)',
    "-(-(-level)) ** 2 % 7 - 9007199254740993",
]
ALPHABET = "()!=<>+-*/%.,\"' \n\tandornotforheldpointgood0123456789e_.levelruntemptank#"

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)


def _deep(seed: str, n: int) -> str:
    return "(" * n + seed + ")" * n


@fuzz_settings()
@given(
    st.one_of(
        mutated_text(SEEDS, ALPHABET),
        st.sampled_from(SEEDS).flatmap(lambda s: st.integers(1, 3000).map(lambda n: _deep(s, n))),
        st.integers(1, 5000).map(lambda n: "not " * n + "level > 1"),
        st.integers(1, 5000).map(lambda n: "-" * n + "level > 1"),
        st.integers(1, 3000).map(lambda n: " + ".join(["level"] * n) + " > 1"),
        st.integers(1, 2000).map(lambda n: "abs(" * n + "level" + ")" * n + " > 1"),
    ),
    st.dictionaries(st.sampled_from(sorted(POINTS)), _values, max_size=len(POINTS)),
    st.floats(0, 1e10),
)
def test_expressions_compile_or_raise_expr_error_and_evaluate_safely(
    text: str, values: dict[str, object], now: float
) -> None:
    try:
        compiled = compile_expr(text, SCOPE, name="fuzz", want=T.BOOL)
    except ExprError as exc:
        assert exc.line >= 1 and exc.col >= 1
        return
    env = Env()
    env.now = now
    env.values.update({k: v for k, v in values.items() if v is not None})  # type: ignore[misc]
    result = compiled.evaluate(env)
    assert result is None or isinstance(result, bool)
    for fault in env.faults.values():
        assert isinstance(fault, str)
    if isinstance(result, float):
        assert math.isfinite(result)
