"""The grammar of the ASP subset we accept: facts, normal rules, integrity constraints, choice rules,
``#count``, ``#minimize``/``#maximize``, ``#show``, comments, shaped so that every rule is safe by
construction: each rule's variables are bound by its first body literal, and an aggregate's or a
choice's local variable by its own condition (``asp_grammar``). EBNF in the GBNF dialect; a
complete sample is checked by ``check_program``."""

from __future__ import annotations

from functools import cache
from typing import Any

from agent.llm.grammar import Bounds, Grammar, alternatives, lit
from formalizers.asp.program import check_program, extract_program


def _class_without(c: str) -> str:
    """``[a-zA-Z0-9_]`` without the lowercase letter ``c``."""
    lower = "".join(
        f"{lo}-{hi}" if lo != hi else lo
        for lo, hi in (("a", chr(ord(c) - 1)), (chr(ord(c) + 1), "z"))
        if lo <= hi
    )
    return f"[{lower}A-Z0-9_]"


def _ident_not(keyword: str, rest: str, max_len: int) -> str:
    """A GBNF expression for identifiers (a lowercase letter, then ``rest`` characters) of at most
    ``max_len`` characters, other than the lowercase ``keyword`` (clingo's ``not``)."""
    first = keyword[0]
    first_class = _class_without(first).replace("A-Z0-9_", "")
    alts = [f"{first_class} {rest}{{0,{max(max_len - 1, 0)}}}"]
    for i in range(1, len(keyword)):
        prefix = keyword[:i]
        alts.append(lit(prefix))
        left = max_len - i - 1
        if left >= 0:
            alts.append(f"{lit(prefix)} {_class_without(keyword[i])} {rest}{{0,{left}}}")
    if max_len > len(keyword):
        alts.append(f"{lit(keyword)} {rest}{{1,{max_len - len(keyword)}}}")
    return " | ".join(f"({a})" for a in alts)


@cache
def asp_grammar(bounds: Bounds | None = None) -> Grammar:
    """The ASP subset we accept, safe by construction (see the module docstring), under
    ``bounds`` (default ``Bounds()``); it rebuilds itself under other bounds
    (``Grammar.with_bounds``)."""
    b = bounds or Bounds()
    n = max(min(b.max_name, 16), 2)
    rest = "[a-zA-Z0-9_]"
    rules = [
        f'root ::= stmt ("\\n" stmt){{0,{max(b.max_statements - 1, 0)}}}',
        "stmt ::= fact | show | comment | choice0"
        + "".join(f" | rule{k} | cons{k} | choice{k} | opt{k}" for k in (1, 2, 3)),
        f"ident ::= {_ident_not('not', rest, n)}",
        'int ::= "0" | [1-9] [0-9]{0,3}',
        'cmp ::= "=" | "!=" | "<=" | "<" | ">=" | ">"',
        "const ::= ident | int",
        'fterm ::= ident | int | int ".." int',
        'fact ::= ident ("(" fterm (", " fterm){0,2} ")")? "."',
        'show ::= "#show " ident "/" [0-3] "."',
        f'comment ::= "% " [^\\x00-\\x1f\\x7f]{{0,{min(b.max_string or 60, 60)}}}',
        'lb ::= (int " ")?',
        'ub ::= (" " int)?',
        'lterms0 ::= "L" | "L, " const | const ", L"',
        'celem0 ::= ident "(" lterms0 ") : " ident "(L)"',
        'choice0 ::= lb "{ " celem0 ("; " celem0){0,1} " }" ub "."',
    ]
    for k in (1, 2, 3):
        names = ["X", "Y", "Z"][:k]
        rules += [
            f"var{k} ::= {alternatives(names)}",
            f"term{k} ::= var{k} | const",
            f'hterm{k} ::= term{k} | var{k} " + " int',
            f"bind{k} ::= ident {lit('(' + ', '.join(names) + ')')}",
            f'atom{k} ::= ident ("(" term{k} (", " term{k}){{0,2}} ")")?',
            f'lterms{k} ::= "L" | "L, " term{k} | term{k} ", L"',
            f'count{k} ::= "#count {{ L : " ident "(" lterms{k} ") }} " cmp " " int',
            f'lit{k} ::= atom{k} | "not " atom{k} | var{k} " " cmp " " term{k} | count{k}',
            f'body{k} ::= bind{k} (", " lit{k}){{0,3}}',
            f'head{k} ::= ident ("(" hterm{k} (", " hterm{k}){{0,2}} ")")?',
            f'rule{k} ::= head{k} " :- " body{k} "."',
            f'cons{k} ::= ":- " body{k} "."',
            f'celem{k} ::= ident "(" lterms{k} ") : " ident "(L)"',
            f'choice{k} ::= lb "{{ " celem{k} ("; " celem{k}){{0,1}} " }}" ub " :- " body{k} "."',
            f'opt{k} ::= ("#minimize" | "#maximize") " {{ " (var{k} | int) (", " var{k}){{0,2}} '
            f'" : " body{k} " }}."',
        ]
    return Grammar("asp", "ebnf", "\n".join(rules), "asp", _asp_validator, asp_grammar)


def _asp_validator(text: str) -> Any:
    return check_program(extract_program(text))
