"""Errors of the condition language, positioned relative to the expression text.

``line`` and ``col`` are 1-based within the expression, so that the config loader can add the
YAML node's own position to point at ``site.yaml:LINE:COL``.
"""

from __future__ import annotations

__all__ = ["ExprError", "ExprSyntaxError", "ExprTypeError"]


class ExprError(ValueError):
    def __init__(self, message: str, line: int, col: int) -> None:
        self.message = message
        self.line = line
        self.col = col
        super().__init__(f"{line}:{col}: {message}")


class ExprSyntaxError(ExprError):
    """The text is not a sentence of the language (unknown character, bad nesting, ...)."""


class ExprTypeError(ExprError):
    """The sentence parses but means nothing: unknown point, wrong argument type, ..."""
