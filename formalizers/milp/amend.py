"""Edits formalist makes to a model a language model wrote, where the fault has one clear reading.

A small model declares an objective weight of 1 as a parameter named like its variable
(``tutors = 1`` beside the variable ``tutors``), then writes ``tutors * tutors`` for "the
parameter times the variable". The name is declared twice and the model does not compile;
``renamed_clashes`` gives the parameter its own name (``tutors_value``) and reads the first of
each ``X * X`` as it. Every other ``X`` stays the variable. The agent keeps the edited model only
if it then compiles, solves, verifies and is grounded (``agent.agent.Agent._amended``).
"""

from __future__ import annotations

import re
from typing import Any

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
