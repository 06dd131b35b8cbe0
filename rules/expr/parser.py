"""Recursive-descent parser of the condition language.

Grammar (lowest precedence first)::

    expression  := timed END
    timed       := or_expr [ "for" DURATION ]          # held true for a duration
    or_expr     := and_expr { "or" and_expr }
    and_expr    := not_expr { "and" not_expr }
    not_expr    := "not" not_expr | comparison
    comparison  := additive [ ("<"|"<="|">"|">="|"=="|"!=") additive ]
    additive    := term { ("+"|"-") term }
    term        := unary { ("*"|"/"|"%") unary }
    unary       := "-" unary | primary
    primary     := NUMBER | DURATION | STRING | "true" | "false" | "(" timed ")"
                 | NAME "(" [ arg { "," arg } ] ")" | NAME { "." NAME }
    arg         := NAME "=" timed | timed

Comparisons do not chain (``a < b < c`` is an error: it rarely means what an installer thinks).
"""

from __future__ import annotations

from rules.expr.errors import ExprSyntaxError
from rules.expr.nodes import Binary, Call, Literal, Node, Ref, Unary
from rules.expr.tokens import Tok, Token, tokenize

__all__ = ["KEYWORDS", "parse"]

KEYWORDS = frozenset({"and", "or", "not", "for", "true", "false"})
_COMPARE = frozenset({"<", "<=", ">", ">=", "==", "!="})
_MAX_DEPTH = 64


def parse(text: str) -> Node:
    return _Parser(tokenize(text)).expression()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._i = 0
        self._depth = 0

    # -- helpers ---------------------------------------------------------------------------
    def _peek(self) -> Token:
        return self._tokens[self._i]

    def _next(self) -> Token:
        tok = self._tokens[self._i]
        if tok.kind is not Tok.END:
            self._i += 1
        return tok

    def _is_word(self, word: str) -> bool:
        tok = self._peek()
        return tok.kind is Tok.NAME and tok.text == word

    def _is_op(self, *ops: str) -> bool:
        tok = self._peek()
        return tok.kind is Tok.OP and tok.text in ops

    def _expect(self, kind: Tok, what: str) -> Token:
        tok = self._next()
        if tok.kind is not kind:
            raise self._unexpected(tok, what)
        return tok

    @staticmethod
    def _unexpected(tok: Token, wanted: str) -> ExprSyntaxError:
        found = tok.kind.value if tok.kind is Tok.END else repr(tok.text)
        return ExprSyntaxError(f"expected {wanted}, found {found}", tok.line, tok.col)

    # -- grammar ---------------------------------------------------------------------------
    def expression(self) -> Node:
        node = self._timed()
        tok = self._peek()
        if tok.kind is not Tok.END:
            raise self._unexpected(tok, "an operator or the end of the expression")
        return node

    def _timed(self) -> Node:
        self._depth += 1
        if self._depth > _MAX_DEPTH:
            tok = self._peek()
            raise ExprSyntaxError("expression is nested too deeply", tok.line, tok.col)
        node = self._or()
        if self._is_word("for"):
            kw = self._next()
            dur = self._expect(Tok.DURATION, "a duration such as 30s after 'for'")
            assert isinstance(dur.value, float)
            node = Binary("for", node, Literal(dur.value, True, dur.line, dur.col), kw.line, kw.col)
        self._depth -= 1
        return node

    def _or(self) -> Node:
        node = self._and()
        while self._is_word("or"):
            tok = self._next()
            node = Binary("or", node, self._and(), tok.line, tok.col)
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._is_word("and"):
            tok = self._next()
            node = Binary("and", node, self._not(), tok.line, tok.col)
        return node

    def _not(self) -> Node:
        if self._is_word("not"):
            tok = self._next()
            return Unary("not", self._not(), tok.line, tok.col)
        return self._comparison()

    def _comparison(self) -> Node:
        node = self._additive()
        if self._is_op(*_COMPARE):
            tok = self._next()
            node = Binary(tok.text, node, self._additive(), tok.line, tok.col)
            if self._is_op(*_COMPARE):
                bad = self._peek()
                raise ExprSyntaxError("comparisons do not chain; write 'a < b and b < c'", bad.line, bad.col)
        return node

    def _additive(self) -> Node:
        node = self._term()
        while self._is_op("+", "-"):
            tok = self._next()
            node = Binary(tok.text, node, self._term(), tok.line, tok.col)
        return node

    def _term(self) -> Node:
        node = self._unary()
        while self._is_op("*", "/", "%"):
            tok = self._next()
            node = Binary(tok.text, node, self._unary(), tok.line, tok.col)
        return node

    def _unary(self) -> Node:
        if self._is_op("-"):
            tok = self._next()
            return Unary("-", self._unary(), tok.line, tok.col)
        return self._primary()

    def _primary(self) -> Node:
        tok = self._next()
        if tok.kind is Tok.NUMBER or tok.kind is Tok.DURATION:
            assert isinstance(tok.value, float)
            return Literal(tok.value, tok.kind is Tok.DURATION, tok.line, tok.col)
        if tok.kind is Tok.STRING:
            assert isinstance(tok.value, str)
            return Literal(tok.value, False, tok.line, tok.col)
        if tok.kind is Tok.LPAREN:
            self._depth += 1
            node = self._timed()
            self._depth -= 1
            self._expect(Tok.RPAREN, "')'")
            return node
        if tok.kind is Tok.NAME:
            if tok.text in ("true", "false"):
                return Literal(tok.text == "true", False, tok.line, tok.col)
            if tok.text in KEYWORDS:
                raise ExprSyntaxError(f"'{tok.text}' cannot start a value", tok.line, tok.col)
            if self._peek().kind is Tok.LPAREN:
                return self._call(tok)
            parts = [tok.text]
            while self._peek().kind is Tok.DOT:
                self._next()
                part = self._expect(Tok.NAME, "a name after '.'")
                parts.append(part.text)
            return Ref(tuple(parts), tok.line, tok.col)
        raise self._unexpected(tok, "a value, a name or '('")

    def _call(self, name: Token) -> Node:
        self._next()  # "("
        args: list[Node] = []
        kwargs: list[tuple[str, Node]] = []
        if self._peek().kind is not Tok.RPAREN:
            while True:
                tok = self._peek()
                if tok.kind is Tok.NAME and self._tokens[self._i + 1].kind is Tok.EQUALS:
                    self._next()
                    self._next()
                    kwargs.append((tok.text, self._timed()))
                else:
                    if kwargs:
                        raise ExprSyntaxError("a positional argument after a named one", tok.line, tok.col)
                    args.append(self._timed())
                if self._peek().kind is Tok.COMMA:
                    self._next()
                    continue
                break
        self._expect(Tok.RPAREN, "',' or ')'")
        return Call(name.text, tuple(args), tuple(kwargs), name.line, name.col)
