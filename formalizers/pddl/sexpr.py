"""S-expressions with positions: the first layer of reading PDDL.

Every atom and list remembers its line and column, so later checks can say where a problem is.
Comments (``; ...``) are dropped; names are lower-cased, as PDDL is case-insensitive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.errors import ArtifactError, Diagnostic

MAX_DEPTH = 200
MAX_TOKENS = 2_000_000


@dataclass(slots=True)
class Atom:
    text: str
    line: int
    col: int

    @property
    def where(self) -> str:
        return f"line {self.line}, column {self.col}"


@dataclass(slots=True)
class SList:
    items: list[Atom | SList] = field(default_factory=list)
    line: int = 0
    col: int = 0

    @property
    def where(self) -> str:
        return f"line {self.line}, column {self.col}"

    def head(self) -> str:
        return self.items[0].text if self.items and isinstance(self.items[0], Atom) else ""


SExpr = Atom | SList

_TOKEN = re.compile(r"\s*(?:(;[^\n]*)|(\()|(\))|([^\s();]+))")


def parse_sexprs(text: str, what: str = "PDDL") -> list[SExpr]:
    """All top-level s-expressions of ``text``. Raises ``ArtifactError("parse")`` for unbalanced
    parentheses, naming where the unclosed list opened or where the stray ``)`` is."""
    stack: list[SList] = [SList()]
    line_starts = [0]
    for m in re.finditer("\n", text):
        line_starts.append(m.end())

    def pos(offset: int) -> tuple[int, int]:
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - line_starts[lo] + 1

    count = 0
    end = len(text.rstrip())
    for m in _TOKEN.finditer(text, 0, end):
        count += 1
        if count > MAX_TOKENS:
            raise ArtifactError("parse", [Diagnostic(what, f"more than {MAX_TOKENS} tokens")])
        if m.group(1) is not None:
            continue
        if m.group(2) is not None:
            line, col = pos(m.start(2))
            if len(stack) > MAX_DEPTH:
                raise ArtifactError(
                    "parse",
                    [
                        Diagnostic(
                            f"{what} line {line}, column {col}",
                            f"nested more than {MAX_DEPTH} levels deep",
                        )
                    ],
                )
            lst = SList([], line, col)
            stack[-1].items.append(lst)
            stack.append(lst)
        elif m.group(3) is not None:
            if len(stack) == 1:
                line, col = pos(m.start(3))
                raise ArtifactError(
                    "parse",
                    [
                        Diagnostic(
                            f"{what} line {line}, column {col}",
                            "unbalanced parentheses: this ')' closes nothing",
                            "remove it or add the missing '('",
                        )
                    ],
                )
            stack.pop()
        elif m.group(4) is not None:
            line, col = pos(m.start(4))
            if not m.group(4).isascii():
                # The planners' translators refuse such names with a bare exit code.
                raise ArtifactError(
                    "parse",
                    [
                        Diagnostic(
                            f"{what} line {line}, column {col}",
                            f"{m.group(4)[:40]!r} has characters outside ASCII",
                            "PDDL names are ASCII letters, digits, '-' and '_'",
                        )
                    ],
                )
            stack[-1].items.append(Atom(m.group(4).lower(), line, col))
    if len(stack) > 1:
        opened = stack[-1]
        raise ArtifactError(
            "parse",
            [
                Diagnostic(
                    f"{what} line {opened.line}, column {opened.col}",
                    f"unbalanced parentheses: the '(' opened here{_label(opened)} is never closed "
                    f"({len(stack) - 1} list(s) left open at the end)",
                    "add the missing ')'",
                )
            ],
        )
    return stack[0].items


def _label(lst: SList) -> str:
    head = lst.head()
    return f" ('({head} ...')" if head else ""


def render(e: SExpr) -> str:
    """The s-expression as PDDL text."""
    if isinstance(e, Atom):
        return e.text
    return "(" + " ".join(render(i) for i in e.items) + ")"
