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
