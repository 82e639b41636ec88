"""Plain-language explanations of optimization answers (the milp kind's), from the linear model and
the result (no language model)."""

from __future__ import annotations

import math

from formalizers.milp.linear import LinearModel
from solvers.base import SolveResult, Status, Verification

MAX_LINES = 25


def _num(x: float) -> str:
    if math.isfinite(x) and abs(x - round(x)) < 1e-9:
        return f"{round(x):,}"
    return f"{x:,.6g}"


def explain_linear(lm: LinearModel, result: SolveResult, verification: Verification | None) -> str:
    """Objective, the decisions that are not zero, and the constraints that bind; or why none."""
    lines: list[str] = []
    src = lm.source
    var_desc = {v.name: v.description for v in src.variables} if src is not None else {}
    if result.status in (Status.OPTIMAL, Status.FEASIBLE) or (
        result.status is Status.TIMEOUT and result.has_solution
    ):
        goal = (
            src.objective.description
            if src is not None and src.objective.description
            else "objective"
        )
        word = {
            "OPTIMAL": "Optimal",
            "FEASIBLE": "Feasible (not proven optimal)",
            "TIMEOUT": "Best found before the time limit",
        }[result.status.value]
        verb = "maximize" if lm.sense == "maximize" else "minimize"
        assert result.objective is not None
        lines.append(f"{word}: {verb} {goal} = {_num(result.objective)}.")
        if verification is not None:
            lines.append(
                f"{verification.verdict}: "
                + f"{verification.checked} checks, largest violation {verification.max_violation:.2g}."
            )
        nonzero = [
            (c, result.values.get(c.name, 0.0))
            for c in lm.columns
            if abs(result.values.get(c.name, 0.0)) > 1e-9
        ]
        lines.append("Decisions:" if nonzero else "Every decision variable is zero.")
        for col, v in nonzero[:MAX_LINES]:
            desc = var_desc.get(col.var, "")
            lines.append(f"  {col.name} = {_num(v)}" + (f"  ({desc})" if desc else ""))
        if len(nonzero) > MAX_LINES:
            lines.append(f"  ... and {len(nonzero) - MAX_LINES} more")
        binding = []
        values = [result.values.get(c.name, 0.0) for c in lm.columns]
        for row in lm.rows:
            act = sum(a * values[c] for c, a in row.coeffs.items())
            tight = any(
                math.isfinite(b) and abs(act - b) <= 1e-7 * max(1.0, abs(b))
                for b in (row.lower, row.upper)
            )
            if tight and row.lower != row.upper:
                binding.append(row)
        if binding:
            lines.append("Limits reached (binding constraints):")
            for row in binding[:MAX_LINES]:
                lines.append(
                    f"  {row.name}: {row.text}"
                    + (f'  - "{row.description}"' if row.description else "")
                )
    elif result.status in (Status.INFEASIBLE, Status.UNBOUNDED) and result.diagnosis is not None:
        d = result.diagnosis
        if result.status is Status.INFEASIBLE:
            lines.append("Infeasible: no plan meets all the requirements at once. These conflict:")
            for m in d.members[:MAX_LINES]:
                lines.append(
                    f"  {m['name']}: {m['text']}"
                    + (f'  - "{m["description"]}"' if m.get("description") else "")
                )
            lines.append(
                "Relaxing any one of them makes the rest satisfiable."
                if d.irreducible
                else "(The set may not be minimal: the search ran out of time.)"
            )
        else:
            lines.append(f"Unbounded: {d.summary}.")
    else:
        lines.append(f"{result.status.value}: {result.message}")
    return "\n".join(lines)
