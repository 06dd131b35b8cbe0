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

Size limits, so that no text can exhaust the stack of the parser, the compiler or the compiled
closures (every one of them walks the tree recursively): at most :data:`MAX_LENGTH` characters,
:data:`MAX_NESTING` levels of parentheses and call arguments, and a tree at most
:data:`MAX_TREE_DEPTH` nodes deep (a chain ``a + b + c ...`` is as deep as it is long, as are
``not not ...`` and ``- - ...``). Past them the text is a located ``ExprSyntaxError``. The parser
itself recurses only per nesting level; prefix operators are read in a loop.
"""

from __future__ import annotations

from rules.expr.errors import ExprSyntaxError
from rules.expr.nodes import Binary, Call, Literal, Node, Ref, Unary
from rules.expr.tokens import Tok, Token, tokenize

__all__ = ["KEYWORDS", "MAX_LENGTH", "MAX_NESTING", "MAX_TREE_DEPTH", "children", "parse"]

KEYWORDS = frozenset({"and", "or", "not", "for", "true", "false"})
_COMPARE = frozenset({"<", "<=", ">", ">=", "==", "!="})
MAX_LENGTH = 20_000
MAX_NESTING = 32
# Compiling takes about three Python frames per tree level and evaluating one or two, so a
# tree this deep stays far below the interpreter's default limit of 1000 frames even when the
# engine runs deep inside asyncio, a coordinator and the rules runtime.
MAX_TREE_DEPTH = 100


def parse(text: str) -> Node:
    if len(text) > MAX_LENGTH:
        raise ExprSyntaxError(f"expression is too long ({len(text)} characters, at most {MAX_LENGTH})", 1, 1)
    tree = _Parser(tokenize(text)).expression()
    _check_depth(tree)
    return tree


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Call):
        return (*node.args, *(value for _, value in node.kwargs))
    return ()


def _check_depth(tree: Node) -> None:
    """Refuse a tree deeper than ``MAX_TREE_DEPTH``, walked without recursion."""
    stack: list[tuple[Node, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            raise ExprSyntaxError(
                f"expression is nested too deeply (more than {MAX_TREE_DEPTH} operators inside each "
                "other); split it into several rules, or use any(), all() or count() for long lists",
                node.line,
                node.col,
            )
        stack.extend((child, depth + 1) for child in children(node))


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
        if self._depth > MAX_NESTING:
            tok = self._peek()
            raise ExprSyntaxError(
                f"expression is nested too deeply (more than {MAX_NESTING} levels of parentheses)",
                tok.line,
                tok.col,
            )
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
        # a loop, not recursion: "not not not ..." must not exhaust the parser's stack
        nots: list[Token] = []
        while self._is_word("not"):
            nots.append(self._next())
        node = self._comparison()
        for tok in reversed(nots):
            node = Unary("not", node, tok.line, tok.col)
        return node

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
        minuses: list[Token] = []
        while self._is_op("-"):
            minuses.append(self._next())
        node = self._primary()
        for tok in reversed(minuses):
            node = Unary("-", node, tok.line, tok.col)
        return node

    def _primary(self) -> Node:
        tok = self._next()
        if tok.kind is Tok.NUMBER or tok.kind is Tok.DURATION:
            assert isinstance(tok.value, float)
            return Literal(tok.value, tok.kind is Tok.DURATION, tok.line, tok.col)
        if tok.kind is Tok.STRING:
            assert isinstance(tok.value, str)
            return Literal(tok.value, False, tok.line, tok.col)
        if tok.kind is Tok.LPAREN:
            node = self._timed()
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
