"""HiGHS (through highspy) for compiled linear models, with infeasibility and unboundedness diagnosis.

The model is loaded straight from ``LinearModel``'s rows: building a Pyomo model first costs more than
solving a small LP (see ``benchmarks/pipeline_overhead.py``); ``solvers.pyomo_backend`` does that for
people who want the Pyomo model or another Pyomo solver.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np

from formalizers.milp.linear import LinearModel, Row
from formalizers.offline.milp_files import load_highspy
from solvers.base import Diagnosis, Limits, SolveResult, Status, Supports

SUPPORTS = Supports(
    name="highs",
    kinds=("milp",),
    features=frozenset({"continuous variables", "integer variables"}),
    summary="HiGHS through highspy, straight from the compiled rows, with infeasible-subset and "
    "unbounded-ray diagnosis",
    modules=("highspy",),
)
"""What this backend runs: linear models with continuous and integer variables (``solve``)."""

IIS_MAX_NONZEROS = 2_000
"""Largest model (constraint non-zeros) handed to HiGHS's IIS search, which ignores time limits."""
ARTIFICIAL_BOUND = 1e7
"""Bound put on unbounded directions to find the variables that run off."""


def _inf(x: float, hinf: float) -> float:
    return hinf if x == math.inf else (-hinf if x == -math.inf else x)


_local = threading.local()
CLOCK_SHARE = 0.001
"""A thread's HiGHS instance is reused only while its run clock is under this share of the new time
limit (see ``_instance``)."""


def _instance(hs: Any, limits: Limits) -> Any:
    """This thread's HiGHS instance, cleared, or a new one.

    Making an instance costs more than solving a small LP, so one is kept per thread. But HiGHS keeps
    one run clock per instance that ``clear()`` does not reset, and its LP solver checks ``time_limit``
    against that clock: a reused instance would stop early. So it is reused only while its clock is
    under ``CLOCK_SHARE`` of the limit (the solve then loses at most 0.1% of its time), else replaced.
    """
    h = getattr(_local, "highs", None)
    if h is not None and h.getRunTime() <= CLOCK_SHARE * limits.time_s:
        h.clear()
        return h
    h = _local.highs = hs.Highs()
    return h


def load(lm: LinearModel, limits: Limits, relax: bool = False, reuse: bool = False) -> Any:
    """A ``highspy.Highs`` instance holding ``lm``, silent, with the limits set; with ``reuse``, this
    thread's instance (valid until the thread's next ``reuse`` load), else a new one."""
    hs = load_highspy()
    h = _instance(hs, limits) if reuse else hs.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(limits.time_s))
    if limits.mip_gap is not None:
        h.setOptionValue("mip_rel_gap", float(limits.mip_gap))
    inf = hs.kHighsInf
    n = len(lm.columns)
    cost = np.zeros(n)
    for c, a in lm.objective.items():
        cost[c] = a
    lower = np.array([_inf(c.lower, inf) for c in lm.columns], dtype=np.float64)
    upper = np.array([_inf(c.upper, inf) for c in lm.columns], dtype=np.float64)
    h.addCols(
        n,
        cost,
        lower,
        upper,
        0,
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.int32),
        np.zeros(0),
    )
    if lm.rows:
        starts = np.zeros(len(lm.rows), dtype=np.int32)
        idx: list[int] = []
        val: list[float] = []
        for r_i, row in enumerate(lm.rows):
            starts[r_i] = len(idx)
            idx.extend(row.coeffs.keys())
            val.extend(row.coeffs.values())
        rlo = np.array([_inf(r.lower, inf) for r in lm.rows], dtype=np.float64)
        rhi = np.array([_inf(r.upper, inf) for r in lm.rows], dtype=np.float64)
        h.addRows(
            len(lm.rows), rlo, rhi, len(idx), starts, np.array(idx, dtype=np.int32), np.array(val)
        )
    if lm.offset:
        h.changeObjectiveOffset(float(lm.offset))
    if lm.sense == "maximize":
        h.changeObjectiveSense(hs.ObjSense.kMaximize)
    if not relax and lm.is_mip:
        ints = np.array([i for i, c in enumerate(lm.columns) if c.integer], dtype=np.int32)
        h.changeColsIntegrality(len(ints), ints, np.array([hs.HighsVarType.kInteger] * len(ints)))
    return h


def _status(hs: Any, h: Any) -> tuple[Status, bool]:
    """Map HiGHS's model status to ours; the flag says whether a feasible solution is at hand."""
    ms = h.getModelStatus()
    S = hs.HighsModelStatus
    has_sol = h.getInfo().primal_solution_status == hs.kSolutionStatusFeasible
    if ms == S.kOptimal:
        return Status.OPTIMAL, True
    if ms == S.kInfeasible:
        return Status.INFEASIBLE, False
    if ms == S.kUnbounded:
        return Status.UNBOUNDED, False
    if ms == S.kUnboundedOrInfeasible:
        return Status.ERROR, False  # resolved by the caller with presolve off
    if ms == S.kTimeLimit:
        return Status.TIMEOUT, has_sol
    if ms in (
        S.kIterationLimit,
        S.kSolutionLimit,
        S.kInterrupt,
        S.kObjectiveBound,
        S.kObjectiveTarget,
    ):
        return (Status.FEASIBLE, True) if has_sol else (Status.TIMEOUT, False)
    return Status.ERROR, False


def solve(lm: LinearModel, limits: Limits | None = None, diagnose: bool = True) -> SolveResult:
    """Solve ``lm`` with HiGHS within ``limits.time_s``.

    An infeasible or unbounded model comes back with a ``Diagnosis`` (when ``diagnose``), computed
    within what is left of the time limit.
    """
    limits = limits or Limits()
    hs = load_highspy()
    t0 = time.perf_counter()
    h = load(lm, limits, reuse=True)
    h.run()
    status, has_sol = _status(hs, h)
    if status is Status.ERROR and h.getModelStatus() == hs.HighsModelStatus.kUnboundedOrInfeasible:
        # Presolve can prove "one of the two" only; solving without it says which.
        h.setOptionValue("presolve", "off")
        h.setOptionValue("time_limit", max(0.05, limits.time_s - (time.perf_counter() - t0)))
        h.run()
        status, has_sol = _status(hs, h)
        if (
            status is Status.ERROR
            and h.getModelStatus() == hs.HighsModelStatus.kUnboundedOrInfeasible
        ):
            status = _infeasible_or_unbounded(lm, limits)
    elapsed = time.perf_counter() - t0
    message = h.modelStatusToString(h.getModelStatus())
    if has_sol and status in (Status.OPTIMAL, Status.FEASIBLE, Status.TIMEOUT):
        sol = h.getSolution().col_value
        values = {}
        for col, v in zip(lm.columns, sol, strict=False):
            v = float(v)
            if col.integer and abs(v - round(v)) < 1e-6:
                v = float(round(v))
            values[col.name] = v + 0.0  # no negative zeros
        info = h.getInfo()
        objective = float(info.objective_function_value)
        bound = (
            float(info.mip_dual_bound) if lm.is_mip and math.isfinite(info.mip_dual_bound) else None
        )
        return SolveResult(status, "highs", objective, values, elapsed, message, None, bound)
    diagnosis = None
    if diagnose and status in (Status.INFEASIBLE, Status.UNBOUNDED):
        # What is left of the limit: a diagnosis never runs past it (a short one is partial).
        remaining = max(0.05, limits.time_s - elapsed)
        diag_limits = Limits(time_s=remaining)
        diagnosis = (
            diagnose_infeasible(lm, diag_limits)
            if status is Status.INFEASIBLE
            else diagnose_unbounded(lm, diag_limits)
        )
        elapsed = time.perf_counter() - t0
    return SolveResult(status, "highs", None, {}, elapsed, message, diagnosis)


def _infeasible_or_unbounded(lm: LinearModel, limits: Limits) -> Status:
    """Decide between the two by solving the feasibility problem (objective dropped)."""
    hs = load_highspy()
    h = load(lm, limits)
    h.changeColsCost(
        len(lm.columns), np.arange(len(lm.columns), dtype=np.int32), np.zeros(len(lm.columns))
    )
    h.setOptionValue("presolve", "off")
    h.run()
    ms = h.getModelStatus()
    if ms == hs.HighsModelStatus.kInfeasible:
        return Status.INFEASIBLE
    if ms == hs.HighsModelStatus.kOptimal:
        return Status.UNBOUNDED
    return Status.ERROR


# ---------------------------------------------------------------------------------------------
# Diagnosis


def _row_member(lm: LinearModel, row: Row) -> dict[str, Any]:
    rendered = lm.render_row(row)
    text = row.text if row.text == rendered or not row.text else f"{row.text}   [here: {rendered}]"
    return {"name": row.name, "family": row.family, "text": text, "description": row.description}


def _bound_member(lm: LinearModel, col_i: int, which: str) -> dict[str, Any]:
    col = lm.columns[col_i]
    desc = ""
    if lm.source is not None:
        desc = next((v.description for v in lm.source.variables if v.name == col.var), "")
    if which == "lower":
        text = f"{col.name} >= {col.lower:g}"
    elif which == "upper":
        text = f"{col.name} <= {col.upper:g}"
    else:
        text = f"{col.lower:g} <= {col.name} <= {col.upper:g}"
    if col.integer:
        text += " (integer)"
    return {
        "name": f"bound of {col.name}",
        "family": f"bounds of {col.var}",
        "text": text,
        "description": desc,
    }


def diagnose_infeasible(lm: LinearModel, limits: Limits) -> Diagnosis:
    """An irreducible infeasible subset of ``lm``'s constraints and bounds.

    HiGHS computes it for linear programs (and for a MIP whose relaxation is already infeasible);
    otherwise a deletion filter over the rows, each step a time-limited MIP solve, finds one. If time
    runs out first, the subset found so far is infeasible but perhaps not irreducible.
    """
    hs = load_highspy()
    t0 = time.perf_counter()
    # An integer variable whose bounds hold no integer is a conflict on its own.
    empty = [
        i
        for i, c in enumerate(lm.columns)
        if c.integer
        and math.isfinite(c.lower)
        and math.isfinite(c.upper)
        and math.ceil(c.lower - 1e-9) > math.floor(c.upper + 1e-9)
    ]
    if empty:
        return _infeasible_diagnosis(
            [_bound_member(lm, i, "both") for i in empty[:1]], irreducible=True
        )
    members: list[dict[str, Any]] = []
    # HiGHS's IIS search does not watch the time limit, so it is used only where it is quick.
    nnz = sum(len(r.coeffs) for r in lm.rows)
    if nnz <= IIS_MAX_NONZEROS:
        h = load(lm, limits)
        h.setOptionValue("iis_strategy", int(hs.IisStrategy.kIisStrategyIrreducible))
        h.run()
        try:
            st, iis = h.getIis()
            ok = (
                st != hs.HighsStatus.kError
                and iis.valid_
                and (len(iis.row_index_) or len(iis.col_index_))
            )
        except Exception:
            ok = False
        if ok:
            for r in iis.row_index_:
                members.append(_row_member(lm, lm.rows[int(r)]))
            B = hs.IisBoundStatus
            sides = {
                int(B.kIisBoundStatusLower): "lower",
                int(B.kIisBoundStatusUpper): "upper",
                int(B.kIisBoundStatusBoxed): "both",
            }
            for c, b in zip(iis.col_index_, iis.col_bound_, strict=False):
                # A free (or dropped) bound takes no part in the conflict.
                if int(b) in sides:
                    members.append(_bound_member(lm, int(c), sides[int(b)]))
            return _infeasible_diagnosis(members, irreducible=True)
    remaining = limits.time_s - (time.perf_counter() - t0)
    rows, bounds, complete = _deletion_filter(lm, max(0.05, remaining))
    members = [_row_member(lm, lm.rows[r]) for r in rows]
    members += [_bound_member(lm, c, "both") for c in bounds]
    return _infeasible_diagnosis(members, irreducible=complete)


def _deletion_filter(lm: LinearModel, budget_s: float) -> tuple[list[int], list[int], bool]:
    """Drop each row, then each finite column bound, that the infeasibility does not need (each test
    a solve within what is left of ``budget_s``). Returns the rows and the columns whose bounds are
    kept, and whether every one was tested (then the result is irreducible)."""
    hs = load_highspy()
    deadline = time.perf_counter() + budget_s
    h = load(lm, Limits(time_s=budget_s))
    inf = hs.kHighsInf

    def still_infeasible() -> bool | None:
        left = deadline - time.perf_counter()
        if left <= 0:
            return None
        h.setOptionValue("time_limit", left)
        h.run()
        return bool(h.getModelStatus() == hs.HighsModelStatus.kInfeasible)

    keep = list(range(len(lm.rows)))
    for r in range(len(lm.rows)):
        h.changeRowBounds(r, -inf, inf)
        verdict = still_infeasible()
        if verdict is None:
            row = lm.rows[r]
            h.changeRowBounds(r, _inf(row.lower, inf), _inf(row.upper, inf))
            return keep, [c for c, col in enumerate(lm.columns) if col.integer], False
        if verdict:
            keep.remove(r)  # still infeasible without it: not needed
        else:
            row = lm.rows[r]
            h.changeRowBounds(r, _inf(row.lower, inf), _inf(row.upper, inf))
    bounds: list[int] = []
    for c, col in enumerate(lm.columns):
        if col.lower == -math.inf and col.upper == math.inf:
            continue
        h.changeColBounds(c, -inf, inf)
        verdict = still_infeasible()
        if verdict is None:
            h.changeColBounds(c, _inf(col.lower, inf), _inf(col.upper, inf))
            return keep, bounds + [c], False
        if not verdict:
            h.changeColBounds(c, _inf(col.lower, inf), _inf(col.upper, inf))
            bounds.append(c)
    return keep, bounds, True


def _infeasible_diagnosis(members: list[dict[str, Any]], irreducible: bool) -> Diagnosis:
    names = [m["name"] for m in members]
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    summary = (
        f"no solution satisfies these together: {shown}"
        if members
        else "the model is infeasible, but no conflicting subset could be isolated"
    )
    return Diagnosis("infeasible", summary, tuple(members), irreducible and bool(members))


def diagnose_unbounded(lm: LinearModel, limits: Limits) -> Diagnosis:
    """The variables that run off: the non-zero entries of a primal ray of the (relaxed) linear
    program, the direction along which the objective improves for ever. Where HiGHS gives no ray,
    the variables that reach an artificial bound of ``ARTIFICIAL_BOUND`` on their unbounded sides."""
    hs = load_highspy()
    members: list[dict[str, Any]] = []
    h = load(lm, limits, relax=True)
    h.setOptionValue("presolve", "off")
    h.run()
    try:
        status, has_ray, ray = h.getPrimalRay()
    except Exception:
        has_ray, ray = False, []
    if has_ray and len(ray):
        direction = _sparsify_ray(lm, [float(v) for v in ray])
        for col, v in zip(lm.columns, direction, strict=True):
            if v != 0.0:
                members.append(_unbounded_member(lm, col.name, col.var, "+" if v > 0 else "-"))
    if not members:
        # Box every unbounded side far beyond the finite ones, and see who runs to the box.
        boxes = []
        for c in lm.columns:
            finite = max((abs(b) for b in (c.lower, c.upper) if math.isfinite(b)), default=0.0)
            reach = max(ARTIFICIAL_BOUND, 10 * finite)
            boxes.append(
                (
                    c.lower if c.lower > -math.inf else -reach,
                    c.upper if c.upper < math.inf else reach,
                )
            )
        boxed = replace(
            lm,
            columns=[
                replace(c, lower=lo, upper=hi)
                for c, (lo, hi) in zip(lm.columns, boxes, strict=True)
            ],
        )
        h = load(boxed, limits)
        h.run()
        if h.getInfo().primal_solution_status == hs.kSolutionStatusFeasible:
            for col, (lo, hi), v in zip(lm.columns, boxes, h.getSolution().col_value, strict=False):
                if col.upper == math.inf and v >= 0.999 * hi:
                    members.append(_unbounded_member(lm, col.name, col.var, "+"))
                elif col.lower == -math.inf and v <= 0.999 * lo:
                    members.append(_unbounded_member(lm, col.name, col.var, "-"))
    goal = "increases" if lm.sense == "maximize" else "decreases"
    if members:
        shown = ", ".join(f"{m['name']} -> {m['direction']}infinity" for m in members[:8])
        summary = f"the objective {goal} without limit as {shown}; no constraint stops them"
    else:
        summary = f"the objective {goal} without limit, but the variables responsible could not be isolated"
    return Diagnosis("unbounded", summary, tuple(members))


def _sparsify_ray(lm: LinearModel, ray: list[float]) -> list[float]:
    """Zero every component of an improving ray that the ray does not need: a component is dropped
    when the rest is still a ray (every row's finite sides and every column's finite bounds keep
    holding along it) that still improves the objective."""
    tol = 1e-9 * (max(abs(v) for v in ray) or 1.0)
    r = [v if abs(v) > tol else 0.0 for v in ray]
    sign = 1.0 if lm.sense == "maximize" else -1.0

    def is_ray(d: list[float]) -> bool:
        if sign * sum(a * d[c] for c, a in lm.objective.items()) <= tol:
            return False
        for c, col in enumerate(lm.columns):
            if (d[c] > 0 and col.upper < math.inf) or (d[c] < 0 and col.lower > -math.inf):
                return False
        for row in lm.rows:
            ad = sum(a * d[c] for c, a in row.coeffs.items())
            if (ad > tol and row.upper < math.inf) or (ad < -tol and row.lower > -math.inf):
                return False
        return True

    if not is_ray(r):
        return r
    for c in sorted(range(len(r)), key=lambda i: abs(r[i])):
        if r[c] != 0.0:
            trial = list(r)
            trial[c] = 0.0
            if is_ray(trial):
                r = trial
    return r


def _unbounded_member(lm: LinearModel, name: str, var: str, sign: str) -> dict[str, Any]:
    desc = ""
    if lm.source is not None:
        desc = next((v.description for v in lm.source.variables if v.name == var), "")
    return {"name": name, "direction": sign, "description": desc}
