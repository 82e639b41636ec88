"""Property tests: random five-element models survive JSON, solve to verified results, and the two
solver paths (HiGHS directly, HiGHS through Pyomo) agree."""

from __future__ import annotations

import math
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agent.errors import ArtifactError
from formalizers.milp.linear import LinearModel, compile_model
from formalizers.milp.model import FiveElementModel
from solvers import highs, pyomo_backend
from solvers.base import NEGATIVE_STATUSES, POSITIVE_STATUSES, Limits, SolveResult, Status
from solvers.verify import verify_linear

LIMITS = Limits(time_s=10.0)

# ---------------------------------------------------------------------------------------------
# Strategies

MEMBER = st.one_of(
    st.integers(-20, 20),
    st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=5),
)
MEMBERS = st.lists(MEMBER, min_size=1, max_size=4, unique_by=str)
# Halves in [-5, 5] without 0: exact in binary, so the solvers' arithmetic stays clean.
COEF = st.sampled_from([k / 2 for k in range(-10, 11) if k])
PARAM_VALUE = st.integers(-10, 10).map(lambda k: k / 2)
TEXT = st.text(max_size=12)


def _num(x: float) -> str:
    return repr(float(x))


def _literal(member: int | str) -> str:
    return repr(member) if isinstance(member, str) else str(member)


@st.composite
def five_element_models(draw: st.DrawFn, *, lp_only: bool = False) -> FiveElementModel:
    """A valid model: 1-3 sets of 1-4 str/int members, a parameter per set with a value for every
    member, 1-3 bounded variable families, an objective that uses every variable, and 0-4 linear
    constraint families written with sums over the sets.

    ``lp_only``: continuous variables and plain constant coefficients in the objective."""
    n_sets = draw(st.integers(1, 3))
    sets: list[dict[str, Any]] = []
    params: list[dict[str, Any]] = []
    for k in range(n_sets):
        members = draw(MEMBERS)
        sets.append({"name": f"S{k}", "members": members, "description": draw(TEXT)})
        values = draw(st.lists(PARAM_VALUE, min_size=len(members), max_size=len(members)))
        keyed = draw(st.booleans())
        params.append(
            {
                "name": f"p{k}",
                "index": [f"S{k}"],
                "values": {str(m): v for m, v in zip(members, values, strict=True)}
                if keyed
                else values,
                "unit": draw(st.sampled_from(["", "kg", "EUR/h"])),
            }
        )
    params.append({"name": "cap", "value": draw(st.integers(0, 20)) / 2})
    # Any finite float survives JSON; this one is declared and unused.
    params.append(
        {"name": "noise", "value": draw(st.floats(allow_nan=False, allow_infinity=False))}
    )

    variables: list[dict[str, Any]] = []
    families: list[tuple[str, int | None]] = []  # (name, index set number or None)
    for v in range(draw(st.integers(1, 3))):
        idx = draw(st.one_of(st.none(), st.integers(0, n_sets - 1)))
        domain = (
            "continuous"
            if lp_only
            else draw(st.sampled_from(["continuous", "continuous", "integer", "binary"]))
        )
        if domain == "continuous":
            lower = draw(st.integers(-6, 2)) / 2
            upper = lower + draw(st.integers(0, 16)) / 2
        elif domain == "integer":
            # Integral bounds: an integer variable whose range holds no integer is infeasible with
            # an empty diagnosis (see test_integer_bounds_without_integer_are_diagnosed).
            lower = float(draw(st.integers(-3, 1)))
            upper = lower + draw(st.integers(0, 8))
        else:  # binary: bounds are clipped to [0, 1]
            lower = float(draw(st.sampled_from([0, -1])))
            upper = float(draw(st.sampled_from([1, 2])))
        variables.append(
            {
                "name": f"x{v}",
                "index": [] if idx is None else [f"S{idx}"],
                "domain": domain,
                "lower": lower,
                "upper": upper,
                "description": draw(TEXT),
            }
        )
        families.append((f"x{v}", idx))

    def term(fam: tuple[str, int | None], bound: tuple[str, int] | None, plain: bool) -> str:
        """``fam`` times a coefficient; inside a constraint indexed by ``bound`` = (name, set)."""
        name, idx = fam
        c = _num(draw(COEF))
        if idx is None:
            return f"{c} * {name}"
        if bound is not None and bound[1] == idx and draw(st.booleans()):
            return f"{c} * {name}[{bound[0]}]"
        coef = c if plain or draw(st.booleans()) else f"p{idx}[i]"
        cond = (
            "" if plain else draw(st.sampled_from(["", "", f" if p{idx}[i] >= 0", " if i in S0"]))
        )
        return f"sum({coef} * {name}[i] for i in S{idx}{cond})"

    objective = " + ".join(term(f, None, plain=lp_only) for f in families)

    constraints: list[dict[str, Any]] = []
    for n in range(draw(st.integers(0, 4))):
        spec: dict[str, Any] = {"name": f"c{n}", "description": draw(TEXT)}
        bound: tuple[str, int] | None = None
        if draw(st.booleans()):
            s = draw(st.integers(0, n_sets - 1))
            bound = ("k", s)
            spec["index"] = [f"k in S{s}"]
            first = sets[s]["members"][0]
            spec["condition"] = draw(
                st.sampled_from([None, f"p{s}[k] <= 4", f"k != {_literal(first)}"])
            )
        chosen = draw(st.lists(st.sampled_from(families), min_size=1, max_size=3))
        lhs = " + ".join(term(f, bound, plain=False) for f in chosen)
        rhs_choices = [_num(draw(st.integers(-10, 20)) / 2), "cap"]
        if bound is not None:
            rhs_choices.append(f"p{bound[1]}[k] + 2")
        rhs = draw(st.sampled_from(rhs_choices))
        op = draw(st.sampled_from(["<=", "<=", ">=", ">=", "==", "=", "range"]))
        if op == "range":
            lo = draw(st.integers(-10, 10)) / 2
            spec["expression"] = f"{_num(lo)} <= {lhs} <= {_num(lo + 3)}"
        else:
            spec["expression"] = f"{lhs} {op} {rhs}"
        constraints.append(spec)

    return FiveElementModel.model_validate(
        {
            "name": draw(st.sampled_from(["model", "plan", "random model"])),
            "description": draw(TEXT),
            "sets": sets,
            "parameters": params,
            "variables": variables,
            "objective": {
                "sense": draw(st.sampled_from(["minimize", "maximize", "min", "max"])),
                "expression": objective,
            },
            "constraints": constraints,
        }
    )


def _compile(m: FiveElementModel) -> LinearModel | None:
    """The compiled model, or None for the one rejection the generator can produce: a constraint
    whose variables all cancelled or were filtered away and whose constant part is false."""
    try:
        return compile_model(m)
    except ArtifactError as e:
        event("compile: constant constraint is false")
        assert e.kind == "infeasible", e.feedback()
        assert "no variables left and is false" in e.feedback()
        return None


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


# ---------------------------------------------------------------------------------------------
# Property 1: JSON round trip


@settings(max_examples=100, deadline=None)
@given(five_element_models())
def test_json_round_trip(m: FiveElementModel) -> None:
    assert FiveElementModel.model_validate_json(m.model_dump_json()) == m
    data = m.to_json()
    assert FiveElementModel.model_validate(data) == m
    # to_json leaves out defaults, never information.
    assert FiveElementModel.model_validate(FiveElementModel.model_validate(data).to_json()) == m


# ---------------------------------------------------------------------------------------------
# Property 2: every solution verifies; every proof of no optimum comes with a diagnosis


def _check_result(lm: LinearModel, result: SolveResult) -> None:
    if result.status in POSITIVE_STATUSES:
        check = verify_linear(lm, result)
        assert check.ok, check.message
        assert check.checked == len(lm.columns) + len(lm.rows) + lm.dropped_rows
        assert check.objective is not None and result.objective is not None
        assert _close(check.objective, result.objective)
        assert set(result.values) == {c.name for c in lm.columns}
    elif result.status in NEGATIVE_STATUSES:
        assert result.diagnosis is not None
        assert result.diagnosis.kind == result.status.value.lower()
        assert result.diagnosis.summary
        assert not result.values
    else:
        pytest.fail(
            f"unexpected status {result.status} for a small bounded model: {result.message}"
        )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(five_element_models())
def test_highs_results_verify(m: FiveElementModel) -> None:
    lm = _compile(m)
    if lm is None:
        return
    result = highs.solve(lm, LIMITS)
    event(f"status: {result.status.value}, {'MIP' if lm.is_mip else 'LP'}")
    # Every variable is bounded, so the model can be infeasible but never unbounded.
    assert result.status is not Status.UNBOUNDED
    _check_result(lm, result)
    if result.status is Status.INFEASIBLE:
        assert result.diagnosis is not None and result.diagnosis.members


# ---------------------------------------------------------------------------------------------
# Property 3: HiGHS directly and HiGHS through Pyomo agree on small bounded LPs


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(five_element_models(lp_only=True))
def test_pyomo_and_highs_agree(m: FiveElementModel) -> None:
    lm = _compile(m)
    if lm is None:
        return
    assert not lm.is_mip
    direct = highs.solve(lm, LIMITS)
    via_pyomo = pyomo_backend.solve(lm, LIMITS)
    event(f"status: {direct.status.value}")
    assert via_pyomo.status == direct.status, (direct.message, via_pyomo.message)
    if direct.status in POSITIVE_STATUSES:
        assert direct.objective is not None and via_pyomo.objective is not None
        assert _close(via_pyomo.objective, direct.objective)
    # The objective uses every variable, so Pyomo's solution is complete and must verify too.
    _check_result(lm, via_pyomo)


# ---------------------------------------------------------------------------------------------
# Known disagreements between the Pyomo path and the direct one (source bugs; see the reasons)


def _small(data: dict[str, Any]) -> LinearModel:
    base: dict[str, Any] = {"variables": [{"name": "x", "upper": 10}]}
    return compile_model(FiveElementModel.model_validate(base | data))


def test_same_named_constraint_families_are_rejected() -> None:
    """Two families named alike would collapse into one Pyomo component: refuse them up front."""
    from agent.errors import ArtifactError

    with pytest.raises(ArtifactError, match="constraint name 'c' is used twice"):
        _small(
            {
                "objective": {"sense": "max", "expression": "x"},
                "constraints": [
                    {"name": "c", "expression": "x <= 3"},
                    {"name": "c", "expression": "x <= 5"},
                ],
            }
        )


def test_pyomo_solution_of_unused_variable_verifies() -> None:
    lm = _small(
        {
            "variables": [{"name": "x", "upper": 10}, {"name": "y", "upper": 10}],
            "objective": {"sense": "max", "expression": "x"},
        }
    )
    via_pyomo = pyomo_backend.solve(lm, LIMITS)
    assert via_pyomo.status is Status.OPTIMAL
    assert not math.isnan(via_pyomo.values["y"])
    assert verify_linear(lm, via_pyomo).ok


def test_pyomo_solves_model_with_constant_objective() -> None:
    lm = _small({"objective": {"sense": "max", "expression": "3"}})
    assert highs.solve(lm, LIMITS).status is Status.OPTIMAL
    assert pyomo_backend.solve(lm, LIMITS).status is Status.OPTIMAL


def test_integer_bounds_without_integer_are_diagnosed() -> None:
    lm = _small(
        {
            "variables": [{"name": "x", "domain": "integer", "lower": 0.5, "upper": 0.7}],
            "objective": {"sense": "max", "expression": "x"},
        }
    )
    result = highs.solve(lm, LIMITS)
    assert result.status is Status.INFEASIBLE
    assert result.diagnosis is not None
    assert [m["name"] for m in result.diagnosis.members] == ["bound of x"]
