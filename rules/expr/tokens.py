"""Tokenizer of the condition language.

Names start with a letter (never ``_``), so Python dunders such as ``__import__`` cannot even be
spelled; ids with hyphens or leading digits are written as strings (``point("fire-panel/zone2")``).
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

from rules.expr.errors import ExprSyntaxError

__all__ = ["DURATION_UNITS_S", "Tok", "Token", "tokenize"]

DURATION_UNITS_S = {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Tok(enum.Enum):
    NUMBER = "number"
    DURATION = "duration"
    STRING = "string"
    NAME = "name"
    OP = "operator"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    DOT = "."
    EQUALS = "="
    END = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Tok
    text: str
    value: float | str | None
    line: int
    col: int


_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_UNIT = re.compile(r"[a-z]+")
_OPS = ("<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "%")
_SINGLE = {"(": Tok.LPAREN, ")": Tok.RPAREN, ",": Tok.COMMA, ".": Tok.DOT, "=": Tok.EQUALS}
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "'": "'"}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    line = 1
    line_start = 0
    n = len(text)
    while pos < n:
        ch = text[pos]
        col = pos - line_start + 1
        if ch == "\n":
            pos += 1
            line += 1
            line_start = pos
            continue
        if ch in " \t\r":
            pos += 1
            continue
        if ch == "#":  # a comment runs to the end of the line
            while pos < n and text[pos] != "\n":
                pos += 1
            continue
        if ch.isdigit():
            m = _NUMBER.match(text, pos)
            assert m is not None
            number = float(m.group())
            if not math.isfinite(number):
                raise ExprSyntaxError(f"number {m.group()} is out of range", line, col)
            end = m.end()
            unit_m = _UNIT.match(text, end)
            if unit_m is not None:
                unit = unit_m.group()
                if unit not in DURATION_UNITS_S:
                    raise ExprSyntaxError(
                        f"unknown duration unit {unit!r} (use ms, s, min, h or d)", line, col
                    )
                seconds = number * DURATION_UNITS_S[unit]
                if not math.isfinite(seconds):
                    raise ExprSyntaxError(f"duration {text[pos : unit_m.end()]} is out of range", line, col)
                tokens.append(Token(Tok.DURATION, text[pos : unit_m.end()], seconds, line, col))
                pos = unit_m.end()
            else:
                tokens.append(Token(Tok.NUMBER, m.group(), number, line, col))
                pos = end
            continue
        if ch.isalpha() and ch.isascii():
            m = _NAME.match(text, pos)
            assert m is not None
            tokens.append(Token(Tok.NAME, m.group(), m.group(), line, col))
            pos = m.end()
            continue
        if ch in "\"'":
            pos, value = _string(text, pos, line, col)
            tokens.append(Token(Tok.STRING, value, value, line, col))
            continue
        op = next((o for o in _OPS if text.startswith(o, pos)), None)
        if op is not None:
            if text.startswith("**", pos) or text.startswith("//", pos):
                raise ExprSyntaxError(
                    f"operator {text[pos : pos + 2]!r} is not part of the language", line, col
                )
            tokens.append(Token(Tok.OP, op, op, line, col))
            pos += len(op)
            continue
        if ch in _SINGLE:
            tokens.append(Token(_SINGLE[ch], ch, None, line, col))
            pos += 1
            continue
        raise ExprSyntaxError(f"unexpected character {ch!r}", line, col)
    tokens.append(Token(Tok.END, "", None, line, pos - line_start + 1))
    return tokens


def _string(text: str, pos: int, line: int, col: int) -> tuple[int, str]:
    quote = text[pos]
    pos += 1
    out: list[str] = []
    while pos < len(text):
        ch = text[pos]
        if ch == quote:
            return pos + 1, "".join(out)
        if ch == "\n":
            break
        if ch == "\\":
            nxt = text[pos + 1 : pos + 2]
            if nxt not in _ESCAPES:
                raise ExprSyntaxError(f"unknown escape '\\{nxt}' in string", line, col)
            out.append(_ESCAPES[nxt])
            pos += 2
            continue
        out.append(ch)
        pos += 1
    raise ExprSyntaxError("string is not closed", line, col)
