"""The small expression algebra of five-element models, and its parser.

Model text is data: it is tokenised and parsed here by a recursive-descent parser, never handed to
Python's ``eval``. The accepted language:

    comparison := expr (("<=" | ">=" | "==" | "=") expr){1,2}
    expr       := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := ("-" | "+") unary | power
    power      := atom (("^" | "**") NUMBER)?
    atom       := NUMBER | STRING | NAME | NAME "[" expr ("," expr)* "]" | "(" expr ")" | sum
    sum        := "sum" "(" expr ("for" NAME "in" NAME ("," NAME "in" NAME)*)+ ("if" cond)? ")"
    cond       := disjunctions of conjunctions of ("not" cond | comparison with != < > too | NAME "in" NAME)

Anything else (attribute access, calls other than ``sum``, lambdas, dunder names, huge exponents,
input nested deeper than ``MAX_DEPTH``) is rejected with an ``ExprSyntaxError`` that says where and why.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import NamedTuple

MAX_LENGTH = 20_000
"""Longest expression text accepted, in characters."""
MAX_DEPTH = 64
"""Deepest nesting of parentheses, brackets and operators accepted."""
MAX_EXPONENT = 16
"""Largest exponent magnitude accepted in ``a ^ n``."""


class ExprSyntaxError(ValueError):
    """The text is not in the expression language. ``pos`` is the 0-based character offset."""

    def __init__(self, message: str, pos: int, text: str) -> None:
        self.message = message
        self.pos = pos
        self.text = text
        super().__init__(f"{message} at column {pos + 1}: {_excerpt(text, pos)}")


def _excerpt(text: str, pos: int) -> str:
    start = max(0, pos - 20)
    snippet = text[start : pos + 20].replace("\n", " ")
    marker = " " * (pos - start) + "^"
    return f"'{snippet}'\n  {marker}"


# ---------------------------------------------------------------------------------------------
# AST. ``pos`` is the offset of a node's first character. Nodes are shared through the parse cache,
# so nothing may change them after parsing; they are not frozen only because frozen dataclasses
# take three times as long to build, which shows in ``benchmarks/pipeline_overhead.py``.


@dataclass(slots=True)
class Num:
    value: float
    pos: int = 0


@dataclass(slots=True)
class Str:
    value: str
    pos: int = 0


@dataclass(slots=True)
class Name:
    id: str
    pos: int = 0


@dataclass(slots=True)
class Ref:
    """``name[i, j]``: an indexed parameter or variable."""

    id: str
    indices: tuple[Node, ...]
    pos: int = 0


@dataclass(slots=True)
class BinOp:
    op: str  # one of + - * / ^
    left: Node
    right: Node
    pos: int = 0


@dataclass(slots=True)
class Neg:
    operand: Node
    pos: int = 0


@dataclass(slots=True)
class Binder:
    """``for i in S``: the index name ``var`` ranges over the members of set ``set``."""

    var: str
    set: str
    pos: int = 0


@dataclass(slots=True)
class Sum:
    body: Node
    binders: tuple[Binder, ...]
    cond: Node | None
    pos: int = 0


@dataclass(slots=True)
class Compare:
    """A chain ``a op b [op c]``; ops from ``<= >= == != < >``."""

    ops: tuple[str, ...]
    operands: tuple[Node, ...]
    pos: int = 0


@dataclass(slots=True)
class InSet:
    """``i in S`` inside a condition."""

    item: Node
    set: str
    pos: int = 0


@dataclass(slots=True)
class BoolOp:
    op: str  # "and" | "or"
    values: tuple[Node, ...]
    pos: int = 0


@dataclass(slots=True)
class Not:
    operand: Node
    pos: int = 0


Node = Num | Str | Name | Ref | BinOp | Neg | Sum | Compare | InSet | BoolOp | Not

# ---------------------------------------------------------------------------------------------
# Tokeniser

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<str>'[^'\\\n]{0,200}'|"[^"\\\n]{0,200}")
    | (?P<op>\*\*|<=|>=|==|!=|[-+*/^()\[\],<>=:])
    | (?P<bad>\S)
    )
    """,
    re.VERBOSE,
)
_GROUPS = {index: name for name, index in _TOKEN.groupindex.items()}
_KEYWORDS = frozenset({"sum", "for", "in", "if", "and", "or", "not"})
_FORBIDDEN_WORDS = {
    "lambda": "lambdas are not part of the expression language",
    "import": "imports are not part of the expression language",
    "def": "definitions are not part of the expression language",
    "class": "definitions are not part of the expression language",
    "yield": "generators are not part of the expression language",
    "await": "not part of the expression language",
}


class _Tok(NamedTuple):
    kind: str  # num | name | str | op | kw | end
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    # One pass of finditer: every non-blank character falls in some group ("bad" catches the rest),
    # so the matches tile the text and only trailing blanks match no group.
    toks: list[_Tok] = []
    # Trailing blanks end the scan: the pattern's leading \s* would otherwise retry at each of them.
    for m in _TOKEN.finditer(text, 0, len(text.rstrip())):
        group = m.lastindex
        if group is None:
            continue
        kind = _GROUPS[group]
        pos = m.start(group)
        tok = m.group(group)
        if kind == "name":
            if tok in _KEYWORDS:
                kind = "kw"
            elif tok.startswith("__") or tok.endswith("__"):
                raise ExprSyntaxError(
                    f"names with double underscores ({tok}) are not allowed", pos, text
                )
            elif tok in _FORBIDDEN_WORDS:
                raise ExprSyntaxError(f"'{tok}': {_FORBIDDEN_WORDS[tok]}", pos, text)
        elif kind == "bad":
            if tok == ".":
                raise ExprSyntaxError("attribute access ('.') is not allowed", pos, text)
            if tok in "{}":
                raise ExprSyntaxError(
                    "braces are not allowed; write sums as sum(expr for i in SET if condition)",
                    pos,
                    text,
                )
            if tok in "'\"":
                raise ExprSyntaxError("unterminated or over-long string", pos, text)
            raise ExprSyntaxError(f"unexpected character {tok!r}", pos, text)
        toks.append(_Tok(kind, tok, pos))
    toks.append(_Tok("end", "", len(text)))
    return toks


# ---------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    # -- helpers --
    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: _Tok | None = None) -> ExprSyntaxError:
        tok = tok or self.peek()
        return ExprSyntaxError(message, tok.pos, self.text)

    def expect(self, text: str, what: str = "") -> _Tok:
        tok = self.peek()
        if tok.text != text or tok.kind not in ("op", "kw"):
            found = "the end of the expression" if tok.kind == "end" else repr(tok.text)
            raise self.error(f"expected {what or repr(text)} but found {found}")
        return self.next()

    def enter(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", tok)

    def leave(self) -> None:
        self.depth -= 1

    # -- grammar --
    def parse_top(self, allow_compare: bool) -> Node:
        node = self.comparison() if allow_compare else self.expr()
        tok = self.peek()
        if tok.kind != "end":
            if tok.text == "(":
                raise self.error("calls are not allowed (only sum(...) is)", tok)
            raise self.error(f"unexpected {tok.text!r} after a complete expression", tok)
        return node

    def comparison(self) -> Node:
        start = self.peek()
        first = self.expr()
        ops: list[str] = []
        operands: list[Node] = [first]
        while (
            self.peek().text in ("<=", ">=", "==", "=", "<", ">", "!=") and self.peek().kind == "op"
        ):
            tok = self.next()
            if tok.text in ("<", ">", "!="):
                raise self.error(
                    f"'{tok.text}' is not allowed in a constraint; use <=, >= or ==", tok
                )
            ops.append("==" if tok.text == "=" else tok.text)
            operands.append(self.expr())
        if not ops:
            return first
        if len(ops) > 2:
            raise self.error("at most two comparisons may be chained (lo <= expr <= hi)", start)
        if len(ops) == 2 and (ops[0] != ops[1] or ops[0] == "=="):
            raise self.error(
                "a chained comparison must be lo <= expr <= hi or hi >= expr >= lo", start
            )
        return Compare(tuple(ops), tuple(operands), start.pos)

    def expr(self) -> Node:
        left = self.term()
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            tok = self.next()
            self.enter(tok)
            right = self.term()
            self.leave()
            left = BinOp(tok.text, left, right, tok.pos)
        return left

    def term(self) -> Node:
        left = self.unary()
        while self.peek().kind == "op" and self.peek().text in ("*", "/"):
            tok = self.next()
            self.enter(tok)
            right = self.unary()
            self.leave()
            left = BinOp(tok.text, left, right, tok.pos)
        return left

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("-", "+"):
            self.next()
            self.enter(tok)
            operand = self.unary()
            self.leave()
            return operand if tok.text == "+" else Neg(operand, tok.pos)
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("^", "**"):
            self.next()
            sign = 1.0
            if self.peek().text == "-" and self.peek().kind == "op":
                self.next()
                sign = -1.0
            exp_tok = self.peek()
            if exp_tok.kind != "num":
                raise self.error("an exponent must be a number written out (like x ^ 2)", exp_tok)
            self.next()
            value = sign * float(exp_tok.text)
            if abs(value) > MAX_EXPONENT:
                raise self.error(
                    f"exponent {exp_tok.text} is too large (at most {MAX_EXPONENT})", exp_tok
                )
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text in ("^", "**"):
                raise self.error("chained exponents are not allowed", nxt)
            return BinOp("^", base, Num(value, exp_tok.pos), tok.pos)
        return base

    def atom(self) -> Node:
        tok = self.peek()
        if tok.kind == "num":
            self.next()
            value = float(tok.text)
            if not math.isfinite(value) or abs(value) > 1e30:
                raise self.error(f"number {tok.text} is too large", tok)
            return Num(value, tok.pos)
        if tok.kind == "str":
            self.next()
            return Str(tok.text[1:-1], tok.pos)
        if tok.kind == "op" and tok.text == "(":
            self.next()
            self.enter(tok)
            inner = self.expr()
            self.leave()
            self.expect(")", "')'")
            return inner
        if tok.kind == "kw" and tok.text == "sum":
            return self.sum_expr()
        if tok.kind == "name":
            self.next()
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text == "[":
                self.next()
                self.enter(nxt)
                indices = [self.expr()]
                while self.peek().text == "," and self.peek().kind == "op":
                    self.next()
                    indices.append(self.expr())
                self.leave()
                self.expect("]", "']' or ','")
                return Ref(tok.text, tuple(indices), tok.pos)
            if nxt.kind == "op" and nxt.text == "(":
                raise self.error(
                    f"calls are not allowed ('{tok.text}(...)'); the only function is sum(...)", tok
                )
            return Name(tok.text, tok.pos)
        if tok.kind == "end":
            raise self.error("expression ended early; an operand is missing")
        if tok.kind == "kw":
            raise self.error(f"keyword '{tok.text}' is out of place")
        raise self.error(f"unexpected {tok.text!r}")

    def sum_expr(self) -> Node:
        start = self.next()  # "sum"
        self.enter(start)
        self.expect("(", "'(' after sum")
        body = self.expr()
        binders: list[Binder] = []
        if not (self.peek().kind == "kw" and self.peek().text == "for"):
            raise self.error("sum(...) needs at least one 'for i in SET'")
        while self.peek().kind == "kw" and self.peek().text == "for":
            self.next()
            binders.append(self.binder())
            while self.peek().kind == "op" and self.peek().text == ",":
                self.next()
                binders.append(self.binder())
        cond: Node | None = None
        if self.peek().kind == "kw" and self.peek().text == "if":
            self.next()
            cond = self.condition()
        self.expect(")", "')' to close sum(")
        self.leave()
        names = [b.var for b in binders]
        if len(set(names)) != len(names):
            raise ExprSyntaxError(
                "the same index name is bound twice in one sum", start.pos, self.text
            )
        return Sum(body, tuple(binders), cond, start.pos)

    def binder(self) -> Binder:
        var = self.peek()
        if var.kind != "name":
            raise self.error("expected an index name after 'for'")
        self.next()
        if not (self.peek().kind == "kw" and self.peek().text == "in"):
            raise self.error(f"expected 'in SET' after 'for {var.text}'")
        self.next()
        set_tok = self.peek()
        if set_tok.kind != "name":
            raise self.error("expected a set name after 'in'")
        self.next()
        return Binder(var.text, set_tok.text, var.pos)

    # conditions: or > and > not > comparison / membership
    def condition(self) -> Node:
        start = self.peek()
        values = [self.conjunction()]
        while self.peek().kind == "kw" and self.peek().text == "or":
            self.next()
            values.append(self.conjunction())
        return values[0] if len(values) == 1 else BoolOp("or", tuple(values), start.pos)

    def conjunction(self) -> Node:
        start = self.peek()
        values = [self.negation()]
        while self.peek().kind == "kw" and self.peek().text == "and":
            self.next()
            values.append(self.negation())
        return values[0] if len(values) == 1 else BoolOp("and", tuple(values), start.pos)

    def negation(self) -> Node:
        tok = self.peek()
        if tok.kind == "kw" and tok.text == "not":
            self.next()
            self.enter(tok)
            inner = self.negation()
            self.leave()
            return Not(inner, tok.pos)
        if tok.kind == "op" and tok.text == "(" and self._paren_holds_condition():
            self.next()
            self.enter(tok)
            inner = self.condition()
            self.leave()
            self.expect(")", "')'")
            return inner
        left = self.expr()
        nxt = self.peek()
        if nxt.kind == "kw" and nxt.text == "in":
            self.next()
            set_tok = self.peek()
            if set_tok.kind != "name":
                raise self.error("expected a set name after 'in'")
            self.next()
            return InSet(left, set_tok.text, tok.pos)
        if nxt.kind == "op" and nxt.text in ("<=", ">=", "==", "=", "<", ">", "!="):
            self.next()
            right = self.expr()
            op = "==" if nxt.text == "=" else nxt.text
            return Compare((op,), (left, right), tok.pos)
        raise self.error(
            "a condition must compare two values (i != j, d[i] > 0) or test 'i in SET'"
        )

    def _paren_holds_condition(self) -> bool:
        """Whether the '(' at the cursor opens a parenthesised condition rather than a value."""
        depth = 0
        for tok in self.toks[self.i :]:
            if tok.kind == "op" and tok.text in ("(", "["):
                depth += 1
            elif tok.kind == "op" and tok.text in (")", "]"):
                depth -= 1
                if depth == 0:
                    return False
            elif depth == 1 and (
                (tok.kind == "kw" and tok.text in ("and", "or", "not", "in"))
                or (tok.kind == "op" and tok.text in ("<=", ">=", "==", "=", "<", ">", "!="))
            ):
                return True
        return False


def _check_length(text: str) -> None:
    if not isinstance(text, str):
        raise ExprSyntaxError(f"an expression must be text, not {type(text).__name__}", 0, "")
    if len(text) > MAX_LENGTH:
        raise ExprSyntaxError(
            f"expression is too long ({len(text)} characters, at most {MAX_LENGTH})", 0, text[:60]
        )
    if not text.strip():
        raise ExprSyntaxError("expression is empty", 0, text)


def parse_expression(text: str) -> Node:
    """Parse an arithmetic expression (an objective, a bound). Raises ``ExprSyntaxError``."""
    _check_length(text)
    return _parse_expression(text)


@functools.lru_cache(maxsize=4096)
def _parse_expression(text: str) -> Node:
    return _Parser(text).parse_top(allow_compare=False)


def parse_constraint(text: str) -> Compare:
    """Parse a constraint ``lhs op rhs`` or ``lo <= expr <= hi``. Raises ``ExprSyntaxError``."""
    _check_length(text)
    return _parse_constraint(text)


@functools.lru_cache(maxsize=4096)
def _parse_constraint(text: str) -> Compare:
    node = _Parser(text).parse_top(allow_compare=True)
    if not isinstance(node, Compare):
        raise ExprSyntaxError("a constraint needs a comparison: <=, >= or ==", len(text), text)
    return node


def parse_condition(text: str) -> Node:
    """Parse an index condition (``i != j``, ``t > 1 and d[i] > 0``). Raises ``ExprSyntaxError``."""
    _check_length(text)
    return _parse_condition(text)


def clear_caches() -> None:
    """Forget every parsed expression (benchmarks use it to time parsing honestly)."""
    for f in (_parse_expression, _parse_constraint, _parse_condition):
        f.cache_clear()


@functools.lru_cache(maxsize=4096)
def _parse_condition(text: str) -> Node:
    parser = _Parser(text)
    node = parser.condition()
    if parser.peek().kind != "end":
        raise parser.error(f"unexpected {parser.peek().text!r} after a complete condition")
    return node


def names_in(node: Node) -> set[str]:
    """Every symbol name a node refers to (sets in binders included)."""
    out: set[str] = set()
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Name):
            out.add(n.id)
        elif isinstance(n, Ref):
            out.add(n.id)
            stack.extend(n.indices)
        elif isinstance(n, BinOp):
            stack.extend((n.left, n.right))
        elif isinstance(n, Neg | Not):
            stack.append(n.operand)
        elif isinstance(n, Sum):
            stack.append(n.body)
            out.update(b.set for b in n.binders)
            if n.cond is not None:
                stack.append(n.cond)
        elif isinstance(n, Compare):
            stack.extend(n.operands)
        elif isinstance(n, BoolOp):
            stack.extend(n.values)
        elif isinstance(n, InSet):
            out.add(n.set)
            stack.append(n.item)
    return out


def unparse(node: Node) -> str:
    """Text of a node in the expression language (used to name a term in feedback)."""
    if isinstance(node, Num):
        v = node.value
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(node, Str):
        # The tokenizer takes no escapes: quote with the mark the text does not contain.
        return f"'{node.value}'" if "'" not in node.value else f'"{node.value}"'
    if isinstance(node, Name):
        return node.id
    if isinstance(node, Ref):
        return f"{node.id}[{', '.join(unparse(i) for i in node.indices)}]"
    if isinstance(node, BinOp):
        # Walk the left spine without recursion: a flat chain of many terms is a deep tree.
        spine = []
        left: Node = node
        while isinstance(left, BinOp):
            spine.append(left)
            left = left.left
        text = unparse(left)
        for b in reversed(spine):
            text = f"({text} {b.op} {unparse(b.right)})"
        return text
    if isinstance(node, Neg):
        return f"-{unparse(node.operand)}"
    if isinstance(node, Sum):
        binders = ", ".join(f"{b.var} in {b.set}" for b in node.binders)
        cond = f" if {unparse(node.cond)}" if node.cond is not None else ""
        return f"sum({unparse(node.body)} for {binders}{cond})"
    if isinstance(node, Compare):
        parts = [unparse(node.operands[0])]
        for op, operand in zip(node.ops, node.operands[1:], strict=True):
            parts.append(f"{op} {unparse(operand)}")
        return " ".join(parts)
    if isinstance(node, InSet):
        return f"{unparse(node.item)} in {node.set}"
    if isinstance(node, BoolOp):
        return f" {node.op} ".join(f"({unparse(v)})" for v in node.values)
    if isinstance(node, Not):
        return f"not ({unparse(node.operand)})"
    raise TypeError(f"not an expression node: {node!r}")
