"""Edits formalist makes to a model a language model wrote, where the fault has one clear reading.

A small model declares an objective weight of 1 as a parameter named like its variable
(``tutors = 1`` beside the variable ``tutors``), then writes ``tutors * tutors`` for "the
parameter times the variable". The name is declared twice and the model does not compile;
``renamed_clashes`` gives the parameter its own name (``tutors_value``) and reads the first of
each ``X * X`` as it. Every other ``X`` stays the variable. The agent keeps the edited model only
if it then compiles, solves, verifies and is grounded (``agent.agent.Agent._amended``).

A small model also writes "the number of toy trucks must be larger than the number of toy cars"
as ``toy_truck > toy_car``, which the expression language refuses (a solver has no strict
inequality). ``strict_inequalities`` writes it ``toy_truck >= toy_car + 1`` where every variable
and number in it is whole (integer variables, integer coefficients: "larger than" is at least
one more), else ``toy_truck >= toy_car`` (the closure: an LP has no strict bound) and says so.
"""

from __future__ import annotations

import re
from typing import Any

from formalizers.milp.expr import parse_expression
from formalizers.milp.grounding import COMPARISON
from formalizers.milp.model import FiveElementModel


def renamed_clashes(model: FiveElementModel) -> tuple[FiveElementModel, list[str]] | None:
    """``model`` with each scalar parameter that shares a variable's name renamed, and the edits
    in words; None when there is no such clash or a set shares the name (no clear reading)."""
    variables = {v.name for v in model.variables}
    sets = {s.name for s in model.sets}
    clashes = [
        p.name
        for p in model.parameters
        if p.name in variables and p.name not in sets and p.value is not None and not p.index
    ]
    if not clashes:
        return None
    data = model.to_json()
    taken = variables | sets | {p.name for p in model.parameters}
    edits = []
    for name in dict.fromkeys(clashes):
        new = f"{name}_value"
        while new in taken:
            new += "_"
        taken.add(new)
        for p in data.get("parameters", []):
            if p["name"] == name:
                p["name"] = new
                break
        square = re.compile(rf"(?<![\w.]){re.escape(name)}(\s*\*\s*){re.escape(name)}(?![\w(\[])")
        for expr in _expressions(data):
            expr["expression"] = square.sub(rf"{new}\g<1>{name}", expr["expression"])
        edits.append(
            f"rename the parameter {name} to {new} (a variable has its name; in {name} * {name} "
            "the first is the parameter)"
        )
    try:
        return FiveElementModel.model_validate(data), edits
    except ValueError:
        return None


def _expressions(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = [c for c in data.get("constraints", []) if "expression" in c]
    if "expression" in data.get("objective", {}):
        out.append(data["objective"])
    return out


def _whole(text: str, model: FiveElementModel) -> bool:
    """Whether ``text`` (one side of a comparison) takes whole values only: its variables are
    integer or binary, its numbers and scalar parameters whole, and it has no division."""
    from formalizers.milp.expr import BinOp, Name, Num, Ref
    from formalizers.milp.grounding import _walk

    domains = {v.name: v.domain for v in model.variables}
    params = {p.name: p.value for p in model.parameters if p.value is not None}
    try:
        node = parse_expression(text)
    except ValueError:
        return False
    for n in _walk(node):
        if isinstance(n, Num) and not float(n.value).is_integer():
            return False
        if isinstance(n, Name | Ref) and n.id in domains and domains[n.id] == "continuous":
            return False
        if isinstance(n, Name) and n.id in params and not float(params[n.id]).is_integer():
            return False
        if isinstance(n, Ref) and n.id not in domains:
            return False  # an indexed parameter: its entries are not checked here
        if isinstance(n, BinOp) and n.op == "/":
            return False
    return True


def strict_inequalities(model: FiveElementModel) -> tuple[FiveElementModel, list[str]] | None:
    """``model`` with each constraint's one strict inequality (``a > b``, ``a < b``) written as
    the solver can take it: ``a >= b + 1`` (``a + 1 <= b``) where both sides are whole
    (``_whole``), else ``a >= b``; and the edits in words. None when no constraint has one, or
    one has two comparisons or does not parse once edited."""
    data = model.to_json()
    edits = []
    for c in data.get("constraints", []):
        text = c.get("expression", "")
        ops = list(COMPARISON.finditer(text))
        strict = [m for m in ops if m.group(0) in "<>"]
        if not strict:
            continue
        if len(ops) != 1:
            return None
        (m,) = strict
        left, right = text[: m.start()].strip(), text[m.end() :].strip()
        whole = _whole(left, model) and _whole(right, model)
        if m.group(0) == ">":
            new = f"{left} >= {right} + 1" if whole else f"{left} >= {right}"
        else:
            new = f"{left} + 1 <= {right}" if whole else f"{left} <= {right}"
        c["expression"] = new
        why = (
            "whole numbers: one more is the least that is larger"
            if whole
            else "an LP has no strict bound: its closure"
        )
        edits.append(f'write "{new}" for "{text}" ({why})')
    if not edits:
        return None
    from agent.errors import ArtifactError
    from formalizers.milp.linear import compile_model

    try:
        edited = FiveElementModel.model_validate(data)
        compile_model(edited)
    except (ValueError, ArtifactError):
        return None
    return edited, edits


_NAMES = r"[A-Za-z_]\w*(?:\[[^\]]*\])?(?:\s*,\s*[A-Za-z_]\w*(?:\[[^\]]*\])?)*"
_WHOLE_SETS = (
    r"(?:z\+?|n|\u2124|\u2115|int|integers?|whole(?:\s+numbers?)?|naturals?|natural\s+numbers|"
    r"non-?negative\s*integers)"
)
_MEMBER = re.compile(rf"^\s*\(?(?P<names>{_NAMES})\)?\s+(?:in|\u2208)\s+(?P<set>.+?)\s*$", re.I)
_IS = re.compile(
    rf"^\s*(?P<names>{_NAMES})\s+(?:is|are)\s+(?:an?\s+|all\s+)?"
    r"(?P<set>integers?|whole(?:\s+numbers?)?|binary|non-?negative\s+integers?)\s*$",
    re.I,
)
_MODULO = re.compile(r"^\s*(?P<names>[A-Za-z_]\w*(?:\[[^\]]*\])?)\s*%\s*1\s*==\s*0\s*$")
_RANGE = re.compile(r"^\{\s*(-?\d+)\s*(?:\.\.\.?|,\s*\.\.\.?\s*,)\s*(-?\d+)\s*\}$")
_LISTED = re.compile(r"^\{\s*-?\d+(?:\s*,\s*-?\d+)*\s*\}$")


def _split_top(text: str, separators: re.Pattern[str]) -> list[str]:
    """``text`` split where ``separators`` match outside brackets and parentheses."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            m = separators.match(text, i)
            if m and m.end() > i:
                parts.append(text[start:i])
                start = i = m.end()
                continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


_AND = re.compile(r"\s+and\s+|\s*&&\s*|\s*&\s*", re.I)
_COMMA = re.compile(r"\s*,\s*")


def _domain_statement(part: str) -> tuple[list[str], str] | None:
    """The variables ``part`` declares whole, and ``integer`` or ``binary``, where ``part``
    only says what values they take (``x % 1 == 0``, ``x, y in Z``, ``x in {0, 1}``, ``x is
    an integer``, ``x in {0..100}``: the bounds of a range are left to the constraints); None
    for anything else."""
    m = _MODULO.match(part)
    if m:
        return [m.group("names")], "integer"
    m = _MEMBER.match(part) or _IS.match(part)
    if not m:
        return None
    names = [n.strip() for n in _split_top(m.group("names"), _COMMA)]
    kind = m.group("set").strip()
    compact = re.sub(r"\s+", "", kind)
    if compact in ("{0,1}", "{1,0}") or kind.lower() == "binary":
        return names, "binary"
    if re.fullmatch(_WHOLE_SETS, kind, re.I) or _RANGE.match(kind) or _LISTED.match(kind):
        return names, "integer"
    return None


def compound_constraints(
    model: FiveElementModel, check: bool = True
) -> tuple[FiveElementModel, list[str]] | None:
    """``model`` with each constraint the expression language refuses for being several
    statements in one written as what it says, and the edits in words: a conjunction (``x >= 0
    and x <= 200``, ``x >= 0, y >= 0``) becomes one constraint per comparison; a statement of
    which values variables take (``x % 1 == 0``, ``x, y in Z``, ``x in {0, 1}``) becomes their
    declared domain (integer or binary, where they were declared continuous or integer) and
    leaves the constraints. None when no constraint is such, when a part of one is neither a
    single comparison nor such a statement, when a name is not a variable, or (``check``) when
    the edited model does not compile."""
    data = model.to_json()
    variables = {v["name"]: v for v in data.get("variables", [])}
    taken = {c.get("name", "") for c in data.get("constraints", [])}
    constraints: list[dict[str, Any]] = []
    edits: list[str] = []
    for c in data.get("constraints", []):
        text = c.get("expression", "")
        pieces = _split_top(text, _AND)
        statements = [_domain_statement(p) for p in pieces]
        if len(pieces) == 1 and statements[0] is None:
            pieces = _split_top(text, _COMMA)
            statements = [None] * len(pieces)
        if len(pieces) == 1 and statements[0] is None:
            constraints.append(c)
            continue
        kept: list[str] = []
        for piece, statement in zip(pieces, statements, strict=True):
            if statement is None:
                if len(COMPARISON.findall(piece)) != 1:
                    return None
                kept.append(piece)
                continue
            names, domain = statement
            declared = []
            for name in names:
                base = name.split("[", 1)[0].strip()
                if base not in variables:
                    return None
                v = variables[base]
                now = v.get("domain", "continuous")
                if now == domain or (domain == "integer" and now == "binary"):
                    continue
                v["domain"] = domain
                declared.append(base)
            if declared:
                edits.append(f'declare {", ".join(dict.fromkeys(declared))} {domain} ("{piece}")')
            else:
                edits.append(f'drop "{piece}" (the declared domain says it)')
        base_name = c.get("name", "c")
        for k, piece in enumerate(kept):
            new = dict(c, expression=piece)
            if k:
                name = f"{base_name}_{k + 1}"
                while name in taken:
                    name += "_"
                taken.add(name)
                new["name"] = name
            constraints.append(new)
        if len(kept) > 1:
            edits.append(f'split "{text}" into ' + "; ".join(f'"{p}"' for p in kept))
    if not edits:
        return None
    data["constraints"] = constraints
    from agent.errors import ArtifactError
    from formalizers.milp.linear import compile_model

    try:
        edited = FiveElementModel.model_validate(data)
        if check:
            compile_model(edited)
    except (ValueError, ArtifactError):
        return None
    return edited, edits


def renamed_duplicates(model: FiveElementModel) -> tuple[FiveElementModel, list[str]] | None:
    """``model`` with each constraint whose name an earlier one has renamed (``c2_integer``,
    ``c2_integer_2``: both constraints hold, as the model wrote them), and the edits in words;
    None when no two constraints share a name."""
    data = model.to_json()
    names = [c.get("name", "") for c in data.get("constraints", [])]
    taken = set(names)
    seen: set[str] = set()
    edits = []
    for c in data.get("constraints", []):
        name = c.get("name", "")
        if name not in seen:
            seen.add(name)
            continue
        k = 2
        while f"{name}_{k}" in taken:
            k += 1
        new = f"{name}_{k}"
        taken.add(new)
        c["name"] = new
        edits.append(
            f'rename the second constraint named {name} ("{c.get("expression", "")}") to {new}'
        )
    if not edits:
        return None
    try:
        return FiveElementModel.model_validate(data), edits
    except ValueError:
        return None
