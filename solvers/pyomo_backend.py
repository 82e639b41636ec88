"""Pyomo: the compiled model as a Pyomo ``ConcreteModel``, solved by any Pyomo solver (HiGHS by default).

``to_pyomo`` gives people the model in Pyomo's terms (one indexed ``Var`` per variable, one indexed
``Constraint`` per constraint family) to inspect, write as an LP file or hand to another solver.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

from formalizers.milp.linear import Column, Key, LinearModel
from solvers.base import Limits, SolveResult, Status, Supports

SUPPORTS = Supports(
    name="pyomo",
    kinds=("milp",),
    features=frozenset({"continuous variables", "integer variables"}),
    summary="a Pyomo ConcreteModel solved by Pyomo's HiGHS interface",
    modules=("pyomo", "highspy"),
)
"""What this backend runs: linear models with continuous and integer variables (``solve``)."""


def to_pyomo(lm: LinearModel) -> Any:
    """Build a Pyomo ``ConcreteModel`` equivalent to ``lm``. Returns the model; each column's Pyomo
    variable is in ``model._formalist_vars`` in column order."""
    import pyomo.environ as pyo

    m = pyo.ConcreteModel(name=lm.name)
    by_var: dict[str, list[int]] = defaultdict(list)
    for i, col in enumerate(lm.columns):
        by_var[col.var].append(i)
    pvars: list[Any] = [None] * len(lm.columns)
    for var, cols in by_var.items():
        keys = [lm.columns[i].key for i in cols]
        scalar = keys == [()]
        domain = pyo.Integers if lm.columns[cols[0]].integer else pyo.Reals
        if scalar:
            comp = pyo.Var(domain=domain)
        else:
            comp = pyo.Var([_pk(k) for k in keys], domain=domain)
        m.add_component(_safe(m, var), comp)
        for i, k in zip(cols, keys, strict=True):
            v = comp if scalar else comp[_pk(k)]
            col = lm.columns[i]
            v.setlb(None if col.lower == -math.inf else col.lower)
            v.setub(None if col.upper == math.inf else col.upper)
            pvars[i] = v
    by_family: dict[str, list[int]] = defaultdict(list)
    for r, row in enumerate(lm.rows):
        by_family[row.family].append(r)
    for family, rows in by_family.items():

        def body(r: int) -> Any:
            row = lm.rows[r]
            return pyo.quicksum(a * pvars[c] for c, a in row.coeffs.items())

        def bounds(r: int) -> tuple[float | None, float | None]:
            row = lm.rows[r]
            return (
                None if row.lower == -math.inf else row.lower,
                None if row.upper == math.inf else row.upper,
            )

        if len(rows) == 1 and lm.rows[rows[0]].key == ():
            r0 = rows[0]
            lo, hi = bounds(r0)
            m.add_component(
                _safe(m, family),
                pyo.Constraint(
                    expr=pyo.inequality(lo, body(r0), hi) if lo != hi else body(r0) == lo
                ),
            )
        else:
            index = {_pk(lm.rows[r].key): r for r in rows}

            def rule(_m: Any, *k: Any, _index: dict[Any, int] = index) -> Any:
                r = _index[k[0] if len(k) == 1 else tuple(k)]
                lo, hi = bounds(r)
                return body(r) == lo if lo == hi else pyo.inequality(lo, body(r), hi)

            m.add_component(_safe(m, family), pyo.Constraint(list(index), rule=rule))
    obj = lm.offset + pyo.quicksum(a * pvars[c] for c, a in lm.objective.items())
    m.add_component(
        _safe(m, "objective"),
        pyo.Objective(expr=obj, sense=pyo.maximize if lm.sense == "maximize" else pyo.minimize),
    )
    m._formalist_vars = pvars
    return m


def _free_value(col: Column) -> float:
    """The value nearest zero within a column's bounds (integral for an integer column)."""
    x = min(max(0.0, col.lower), col.upper)
    if col.integer and x != round(x):
        x = float(math.ceil(x)) if x == col.lower else float(math.floor(x))
    return x + 0.0


def _pk(key: Key) -> Any:
    return key[0] if len(key) == 1 else key


def _safe(m: Any, name: str) -> str:
    # Pyomo's ConcreteModel has methods (e.g. "name", "solve"-like attributes); avoid clobbering them.
    candidate = name
    while hasattr(m, candidate):
        candidate = f"{candidate}_"
    return candidate


MIN_LIMIT_S = 0.01
"""The least time limit a solver call is given once the limit is spent (it then stops at once)."""


def solve(lm: LinearModel, limits: Limits | None = None, solver: str = "highs") -> SolveResult:
    """Solve ``lm`` through Pyomo with ``solver`` (a name known to ``pyomo.contrib.solver``)."""
    from pyomo.contrib.solver.common.factory import SolverFactory
    from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition

    limits = limits or Limits()
    t0 = time.perf_counter()
    if not lm.rows and not lm.objective:
        # Nothing for a solver to do (Pyomo's HiGHS interface ends such a model as "unknown").
        values = {c.name: _free_value(c) for c in lm.columns}
        return SolveResult(
            Status.OPTIMAL,
            f"pyomo:{solver}",
            lm.offset,
            values,
            time.perf_counter() - t0,
            "no constraints and a constant objective",
        )
    m = to_pyomo(lm)
    opt = SolverFactory(solver)
    if not opt.available():
        from agent.errors import SolverFault

        raise SolverFault(f"Pyomo solver '{solver}' is not available")
    res = opt.solve(
        m,
        # Building the Pyomo model came out of the same limit.
        time_limit=max(MIN_LIMIT_S, limits.time_s - (time.perf_counter() - t0)),
        load_solutions=False,
        raise_exception_on_nonoptimal_result=False,
    )
    tc = res.termination_condition
    has_sol = res.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
    if tc == TerminationCondition.convergenceCriteriaSatisfied:
        status = Status.OPTIMAL
    elif tc == TerminationCondition.provenInfeasible:
        status = Status.INFEASIBLE
    elif tc == TerminationCondition.unbounded:
        status = Status.UNBOUNDED
    elif tc == TerminationCondition.infeasibleOrUnbounded:
        from solvers.highs import _infeasible_or_unbounded

        status = _infeasible_or_unbounded(lm, limits)
    elif tc == TerminationCondition.maxTimeLimit:
        status = Status.TIMEOUT
    else:
        status = Status.FEASIBLE if has_sol else Status.ERROR
    elapsed = time.perf_counter() - t0
    if has_sol and status in (Status.OPTIMAL, Status.FEASIBLE, Status.TIMEOUT):
        res.solution_loader.load_vars()
        values = {}
        for col, v in zip(lm.columns, m._formalist_vars, strict=True):
            # A variable no row or objective uses is not sent to the solver: any value in its
            # bounds is optimal, so take the one nearest zero.
            x = float(v.value) if v.value is not None else _free_value(col)
            if col.integer and abs(x - round(x)) < 1e-6:
                x = float(round(x))
            values[col.name] = x + 0.0
        objective = lm.offset + sum(a * values[lm.columns[c].name] for c, a in lm.objective.items())
        return SolveResult(status, f"pyomo:{solver}", objective, values, elapsed, str(tc))
    diagnosis = None
    if status in (Status.INFEASIBLE, Status.UNBOUNDED):
        from solvers import highs

        diag_limits = Limits(time_s=max(MIN_LIMIT_S, limits.time_s - elapsed))
        diagnosis = (
            highs.diagnose_infeasible(lm, diag_limits)
            if status is Status.INFEASIBLE
            else highs.diagnose_unbounded(lm, diag_limits)
        )
        elapsed = time.perf_counter() - t0
    return SolveResult(status, f"pyomo:{solver}", None, {}, elapsed, str(tc), diagnosis)
