"""Independent verification of a solution against its artifact.

Nothing the solver says is trusted: every constraint and the objective are recomputed from the
solution values. For a five-element model the recomputation walks the model's own expressions, not
the compiled rows, so a defect in compilation shows up here too.
"""

from __future__ import annotations

import math

from agent.errors import ArtifactError
from formalizers.milp.linear import LinearModel, recompute
from solvers.base import SolveResult, Verification, Violation

FEAS_TOL = 1e-6
"""A constraint holds when violated by at most FEAS_TOL * max(1, |bound|)."""
INT_TOL = 1e-6
"""An integer variable is integral when within INT_TOL of an integer."""
OBJ_TOL = 1e-6
"""The claimed objective must match the recomputed one within OBJ_TOL * max(1, |objective|)."""


def _excess(lo: float, body: float, hi: float, scale: float = 0.0) -> float:
    """How far ``body`` lies outside ``[lo, hi]``, relative to the size of the numbers involved
    (the bound, or ``scale``: the magnitude of the constraint's sides). Not a number is infinitely far."""
    if math.isnan(body):
        return math.inf
    if body < lo:
        return (lo - body) / max(1.0, abs(lo), scale)
    if body > hi:
        return (body - hi) / max(1.0, abs(hi), scale)
    return 0.0


def verify_linear(lm: LinearModel, result: SolveResult) -> Verification:
    """Re-check ``result``'s values against ``lm``: bounds, integrality, every constraint, the objective."""
    if not result.values:
        return Verification(False, 0, math.inf, None, (), "no solution to verify")
    violations: list[Violation] = []
    values: list[float] = []
    for col in lm.columns:
        v = result.values.get(col.name)
        if v is None or not math.isfinite(v):
            violations.append(Violation(col.name, math.inf, "no finite value in the solution"))
            values.append(0.0)
            continue
        values.append(v)
        ex = _excess(col.lower, v, col.upper)
        if ex > FEAS_TOL:
            violations.append(
                Violation(
                    col.name, ex, f"value {v:g} outside bounds [{col.lower:g}, {col.upper:g}]"
                )
            )
        if col.integer and abs(v - round(v)) > INT_TOL:
            violations.append(
                Violation(col.name, abs(v - round(v)), f"value {v:g} is not integral")
            )
    checked = len(lm.columns)
    if lm.source is not None:
        try:
            again = recompute(lm.source, lm.columns, values)
        except ArtifactError as e:
            return Verification(
                False,
                checked,
                math.inf,
                None,
                tuple(violations),
                f"the solution could not be re-evaluated: {e.feedback()}",
            )
        for name, desc, lo, body, hi, scale in again.instances:
            checked += 1
            ex = _excess(lo, body, hi, scale)
            if ex > FEAS_TOL:
                violations.append(Violation(name, ex, _detail(lo, body, hi, desc)))
        objective = again.objective
    else:
        for row in lm.rows:
            checked += 1
            body = sum(a * values[c] for c, a in row.coeffs.items())
            ex = _excess(
                row.lower, body, row.upper, sum(abs(a * values[c]) for c, a in row.coeffs.items())
            )
            if ex > FEAS_TOL:
                violations.append(
                    Violation(row.name, ex, _detail(row.lower, body, row.upper, row.description))
                )
        objective = lm.offset + sum(a * values[c] for c, a in lm.objective.items())
    if result.objective is not None:
        gap = abs(objective - result.objective) / max(1.0, abs(objective))
        if gap > OBJ_TOL:
            violations.append(
                Violation(
                    "objective",
                    gap,
                    f"solver reported {result.objective:g}, recomputed {objective:g}",
                )
            )
    worst = max((v.amount for v in violations), default=0.0)
    violations.sort(key=lambda v: -v.amount)
    msg = (
        "all constraints, bounds and the objective check out"
        if not violations
        else f"{len(violations)} check(s) failed; worst: {violations[0].name} ({violations[0].detail})"
    )
    return Verification(not violations, checked, worst, objective, tuple(violations[:50]), msg)


def _detail(lo: float, body: float, hi: float, desc: str) -> str:
    if lo == hi:
        text = f"needs = {lo:g}, is {body:g}"
    elif body < lo:
        text = f"needs >= {lo:g}, is {body:g}"
    else:
        text = f"needs <= {hi:g}, is {body:g}"
    return f"{text} ({desc})" if desc else text
