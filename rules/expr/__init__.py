"""The safe condition language of alarm and linkage rules (see ``docs/rules.md``).

Text is tokenized, parsed with positions, type-checked against the known points and alarms and
compiled once into closures; nothing is ever handed to Python's ``eval``.
"""

from rules.expr.compiler import CompiledExpr, T, compile_expr
from rules.expr.errors import ExprError, ExprSyntaxError, ExprTypeError
from rules.expr.parser import parse
from rules.expr.scope import AlarmMeta, Env, Scope, site_alarm_key

__all__ = [
    "AlarmMeta",
    "CompiledExpr",
    "Env",
    "ExprError",
    "ExprSyntaxError",
    "ExprTypeError",
    "Scope",
    "T",
    "compile_expr",
    "parse",
    "site_alarm_key",
]
