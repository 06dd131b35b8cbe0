"""The condition language: grammar, three-valued evaluation, holds, positions, and safety."""

from __future__ import annotations

import pytest

from core.model import Value
from rules.expr import AlarmMeta, Env, ExprSyntaxError, ExprTypeError, Scope, compile_expr

SCOPE = Scope(
    "s",
    frozenset({"s/tank1/level", "s/tank1/temp", "s/fp/a", "s/fp/b", "s/fp/c", "s/lift/floor"}),
    {
        "s/fp/a/fire": AlarmMeta("s/fp/a/fire", "s/fp/a", "2", "critical", "fire"),
        "s/fp/b/fire": AlarmMeta("s/fp/b/fire", "s/fp/b", "2", "critical", "fire"),
        "s/fp/c/fault": AlarmMeta("s/fp/c/fault", "s/fp/c", "2", "medium", "fault"),
        "s/lift/floor/code.5": AlarmMeta("s/lift/floor/code.5", "s/lift/floor", None, "high", None),
    },
)


def env(values: dict[str, Value] | None = None, active: set[str] | None = None, now: float = 0.0) -> Env:
    e = Env()
    e.values.update(values or {})
    e.active.update(active or set())
    e.now = now
    return e


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tank1.level < 0.5", True),
        ("tank1.level * 2 + 1 == 1.6", True),
        ("-tank1.level < 0", True),
        ("abs(tank1.temp - 20) > 4", True),
        ("max(tank1.level, tank1.temp) == 25", True),
        ("min(tank1.level, 1) == 0.3", True),
        ("not (tank1.level > 1) and tank1.temp >= 25", True),
        ("tank1.level > 1 or tank1.temp != 25", False),
        ('point("s/tank1/level") == 0.3', True),
        ("point('tank1.level') < 1", True),
        ("good(tank1.level)", True),
        ("10 % 4 == 2 and 1 / 4 == 0.25", True),
    ],
)
def test_arithmetic_logic_and_functions(text: str, expected: bool) -> None:
    c = compile_expr(text, SCOPE)
    assert c.evaluate(env({"s/tank1/level": 0.3, "s/tank1/temp": 25})) is expected


def test_alarm_references_and_counts() -> None:
    two = compile_expr("alarm(fp.a) and alarm(fp.b.fire)", SCOPE)
    counted = compile_expr('count(alarms(zone="2", class="fire")) >= 2', SCOPE)
    by_priority = compile_expr('any(alarms(priority="fire"))', SCOPE)
    enum = compile_expr('alarm(lift.floor.code) or alarm("s/fp/c/fault")', SCOPE)
    assert two.alarms == {"s/fp/a/fire", "s/fp/b/fire"}
    one = env(active={"s/fp/a/fire", "s/fp/c/fault"})
    both = env(active={"s/fp/a/fire", "s/fp/b/fire"})
    assert (two.evaluate(one), two.evaluate(both)) == (False, True)
    assert (counted.evaluate(one), counted.evaluate(both)) == (False, True)
    assert by_priority.evaluate(one) is True and by_priority.evaluate(env()) is False
    assert enum.evaluate(env(active={"s/lift/floor/code.5"})) is True
    assert enum.evaluate(env()) is False


def test_unknown_values_propagate_by_kleene_logic() -> None:
    unknown = env({"s/tank1/temp": 25})  # level is bad quality: absent
    assert compile_expr("tank1.level < 1", SCOPE).evaluate(unknown) is None
    assert compile_expr("tank1.level < 1 and tank1.temp > 30", SCOPE).evaluate(unknown) is False
    assert compile_expr("tank1.level < 1 or tank1.temp > 20", SCOPE).evaluate(unknown) is True
    assert compile_expr("good(tank1.level)", SCOPE).evaluate(unknown) is False
    assert compile_expr("tank1.temp / 0 > 1", SCOPE).evaluate(unknown) is None


def test_for_duration_holds_incrementally_and_restarts_when_broken() -> None:
    c = compile_expr("tank1.level < 0.5 for 60s", SCOPE, name="x")
    same = compile_expr("held(tank1.level < 0.5, 1min)", SCOPE, name="y")
    e = env({"s/tank1/level": 0.3}, now=100.0)
    assert c.evaluate(e) is False and same.evaluate(e) is False
    assert c.next_due(e) == 160.0
    e.now = 159.0
    assert c.evaluate(e) is False
    e.now = 160.0
    assert c.evaluate(e) is True and same.evaluate(e) is True
    e.values["s/tank1/level"] = 0.9
    e.now = 161.0
    assert c.evaluate(e) is False
    e.values["s/tank1/level"] = 0.1
    e.now = 200.0
    assert c.evaluate(e) is False  # the hold starts over
    e.now = 260.0
    assert c.evaluate(e) is True


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [
        ("tank1.level <", 1, 14, "expected a value"),
        ("(tank1.level < 1", 1, 17, "expected ')'"),
        ("tank1.level < 1 <", 1, 17, "do not chain"),
        ("1 < 2 < 3", 1, 7, "do not chain"),
        ("tank1.level < 1 for 30", 1, 21, "duration"),
        ("tank1.level < 3 parsecs", 1, 17, "expected an operator"),
        ("tank1.level < 30x", 1, 15, "unknown duration unit"),
        ("tank1.level\n  and tank1.temp >\n  ", 3, 3, "expected a value"),
        ("'open", 1, 1, "not closed"),
    ],
)
def test_syntax_errors_carry_positions(text: str, line: int, col: int, fragment: str) -> None:
    with pytest.raises(ExprSyntaxError) as info:
        compile_expr(text, SCOPE)
    assert (info.value.line, info.value.col) == (line, col)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("text", "col", "fragment"),
    [
        ("tank2.level > 1", 1, "unknown point"),
        ("tank1.level and 1 + true", 21, "'+' cannot take a boolean"),
        ("tank1.level > 'high'", 15, "'>' cannot take a string"),
        ("alarm(fp.zzz)", 7, "no alarm"),
        ('count(alarms(zone="9")) > 0', 7, "selects no alarm"),
        ("sqrt(4) > 1", 1, "unknown function"),
        ("tank1.level + 1", 1, "must be true or false"),
        ("held(tank1.level > 1, 5)", 23, "duration"),
        ("a.b.c.d > 1", 1, "is not a point"),
    ],
)
def test_type_errors_carry_positions(text: str, col: int, fragment: str) -> None:
    with pytest.raises(ExprTypeError) as info:
        compile_expr(text, SCOPE)
    assert info.value.col == col
    assert fragment in info.value.message


@pytest.mark.parametrize(
    "text",
    [
        '__import__("os").system("true")',
        "tank1.__class__",
        "tank1.level.__class__.__mro__",
        "().__class__",
        "[x for x in ()]",
        "{}",
        "lambda: 1",
        "tank1.level ** 1000000",
        "tank1.level; 1",
        "'a'.upper()",
        "tank1.level[0]",
        "f'{1}'",
        "`id`",
        "_private",
    ],
)
def test_python_internals_are_not_reachable(text: str) -> None:
    with pytest.raises(ExprSyntaxError):
        compile_expr(text, SCOPE)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    with pytest.raises(ExprSyntaxError, match="nested too deeply"):
        compile_expr("(" * 500 + "true" + ")" * 500, SCOPE)


def test_bare_name_means_a_point_of_the_own_device() -> None:
    c = compile_expr("level < 0.5 and temp > 1", SCOPE.in_device("tank1"))
    assert c.points == {"s/tank1/level", "s/tank1/temp"}
