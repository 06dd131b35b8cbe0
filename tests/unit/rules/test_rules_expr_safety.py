"""The condition language fails safely (issue 17, item 6).

Deep nesting of any construct and huge operator chains are located syntax errors, never a
``RecursionError``; arithmetic that overflows or yields NaN makes the rule's result unknown with
a ``rule.bad_value`` event instead of an exception that would take the device's coordinator down.
A seeded fuzz run pushes 100,000 random and mutated expressions through the parser and compiler:
anything but the language's own errors is a bug.
"""

from __future__ import annotations

import random
import sys

import pytest

from rules.expr import Env, ExprError, ExprSyntaxError, compile_expr, parse
from rules.expr.parser import MAX_TREE_DEPTH
from tests.unit.rules.builders import engine, good, kinds, pid
from tests.unit.rules.test_rules_expr import SCOPE, env

DEEP = 5000


@pytest.mark.parametrize(
    "text",
    [
        "not " * DEEP + "true",
        "-" * DEEP + "1 > 0",
        "- " * DEEP + "1 > 0",
        "abs(" * DEEP + "1" + ")" * DEEP + " > 0",
        "(" * DEEP + "true" + ")" * DEEP,
        " + ".join(["tank1.level"] * DEEP) + " > 0",
        " and ".join(["true"] * DEEP),
        " or ".join(["tank1.level > 1"] * DEEP),
        "1" + " * 2" * DEEP + " > 0",
        "held(" * 200 + "true" + ", 1s)" * 200,
        "max(" * DEEP + "1" + ")" * DEEP + " > 0",
    ],
)
def test_deep_or_long_expressions_are_located_errors(text: str) -> None:
    with pytest.raises(ExprSyntaxError, match="nested too deeply|too long") as info:
        compile_expr(text, SCOPE)
    assert info.value.line >= 1 and info.value.col >= 1


def test_the_deepest_allowed_expression_compiles_and_evaluates_on_a_short_stack() -> None:
    # As deep as the parser lets through, evaluated with little stack left (the engine runs
    # inside asyncio, a coordinator and the rules runtime): no RecursionError anywhere.
    text = " + ".join(["tank1.level"] * (MAX_TREE_DEPTH - 1)) + " > 0"
    nested = "-(" * 21 + "tank1.level" + ")" * 21 + " * 2 > 0"  # odd: negative
    limit = sys.getrecursionlimit()
    compiled = [compile_expr(text, SCOPE), compile_expr(nested, SCOPE)]

    def deep(n: int) -> list[object]:
        if n:
            return deep(n - 1)
        return [c.evaluate(env({"s/tank1/level": 1.0})) for c in compiled]

    assert deep(limit - 700) == [True, False]


def test_a_literal_out_of_range_is_a_located_error() -> None:
    with pytest.raises(ExprSyntaxError, match="out of range") as info:
        compile_expr("tank1.level > 1e400", SCOPE)
    assert (info.value.line, info.value.col) == (1, 15)


@pytest.mark.parametrize(
    "text",
    [
        "tank1.level + 1e300 * 1e300 / 3 > 0",  # an int too large for a float: OverflowError
        "tank1.level * 1e300 * 1e300 + 0.5 > 0",
        "tank1.level * 1e300 * 1e10 > 0",  # float overflow: inf
        "tank1.level * 1e300 * 1e10 - tank1.level * 1e300 * 1e10 > 0",  # inf - inf: NaN
        "abs(tank1.temp * 1e308 * 10) > 0",
        "max(tank1.level * 1e308 * 10, 1) > 0",
    ],
)
def test_overflow_and_nan_are_unknown_with_a_fault(text: str) -> None:
    c = compile_expr(text, SCOPE, name="r1")
    e = env({"s/tank1/level": 1.0, "s/tank1/temp": 2.0})
    assert c.evaluate(e) is None
    assert "r1" in e.faults


def test_a_nan_point_value_is_unknown() -> None:
    c = compile_expr("tank1.level > 1 or tank1.level <= 1", SCOPE, name="r2")
    e = env({"s/tank1/level": float("nan")})
    assert c.evaluate(e) is None and "r2" in e.faults


def test_the_engine_survives_an_overflowing_condition_and_says_so() -> None:
    rules = {"alarms": [{"id": "huge", "kind": "condition", "expr": "tank.level * 1e300 * 1e300 / 3 > 1"}]}
    eng = engine({"tank.level": [], "tank.temp": [{"id": "hot", "kind": "high", "setpoint": 50.0}]}, rules)
    eng.feed(good("tank.level", 2, 0))  # raised OverflowError out of feed before the fix
    out = eng.drain().events
    assert [(e.kind, e.data["rule"]) for e in out] == [("rule.bad_value", "s/_site/huge")]
    assert "overflow" in out[0].data["error"]
    eng.feed(good("tank.level", 3, 1))  # still bad: one event per fault, not one per sample
    assert kinds(eng) == []
    eng.feed(good("tank.temp", 60.0, 2))  # the rest of the engine works on
    assert kinds(eng) == [("alarm.raised", pid("tank.temp") + "/hot")]
    eng.feed(good("tank.level", 0, 3))  # 0 * huge is exact: the rule is good again
    assert kinds(eng) == [("rule.value_ok", "s/_site/huge")]
    assert eng.alarm("s/_site/huge").active is False


_PIECES = ["(", "not ", "-", "abs(", " and ", " + ", ")", "1e308 * ", " / 0"]


def _mutations(rng: random.Random, seeds: list[str], alphabet: str) -> str:
    text = rng.choice(seeds)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(5)
        pos = rng.randint(0, len(text))
        if op == 0:
            text = text[:pos] + rng.choice(alphabet) + text[pos:]
        elif op == 1 and text:
            text = text[:pos] + text[pos + 1 :]
        elif op == 2:
            other = rng.choice(seeds)
            a = rng.randint(0, len(other))
            text = text[:pos] + other[a : a + rng.randint(1, 12)] + text[pos:]
        elif op == 3:
            # now and then deep enough to pass the nesting and depth limits
            times = rng.randint(100, 400) if rng.random() < 0.005 else rng.randint(1, 8)
            text = text[:pos] + rng.choice(_PIECES) * times + text[pos:]
        else:
            text = text[:pos] + text[pos:][::-1]
    return text


def test_fuzz_100k_expressions_raise_only_the_language_errors() -> None:
    rng = random.Random(17)
    seeds = [
        "tank1.level < 0.5 and not (tank1.temp >= 25)",
        'count(alarms(zone="2", class="fire")) >= 2 for 30s',
        "held(alarm(fp.a) or alarm(fp.b.fire), 1min)",
        "abs(tank1.temp - 20) * 3 / 4 % 2 > max(1, min(2, tank1.level))",
        "point('s/tank1/level') != -1e3 or good(tank1.level)",
        'any(alarms(priority="critical")) and lift.floor == 5',
    ]
    alphabet = "()+-*/%<>=!.,'\" \n\tabcdefnorstxyz0123456789_#é\\"
    env_ = env({"s/tank1/level": 1e300, "s/tank1/temp": -1e300, "s/lift/floor": 5})
    env_.active.add("s/fp/a/fire")
    parsed = 0
    for i in range(100_000):
        text = (
            _mutations(rng, seeds, alphabet)
            if i % 4
            else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        )
        try:
            if i % 10:
                parse(text)
            else:
                compile_expr(text, SCOPE, name=f"f{i}").evaluate(env_)
            parsed += 1
        except ExprError:
            pass
    assert parsed > 1000  # the mutations keep enough valid sentences to reach the compiler


def test_env_faults_start_empty() -> None:
    assert Env().faults == {}
