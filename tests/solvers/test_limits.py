"""Time limits hold: a problem that cannot finish returns within its limit."""

from __future__ import annotations

import random
import time

from formalizers.milp.linear import compile_model
from formalizers.milp.model import FiveElementModel
from solvers import highs, pyomo_backend
from solvers.base import Limits, Status


def market_split(m: int = 5, n: int = 40, seed: int = 7) -> FiveElementModel:
    """A market split instance (Cornuejols and Dawande 1998): equality knapsacks over binaries that
    branch and bound cannot finish in seconds."""
    rng = random.Random(seed)
    a = {f"r{i}": {f"c{j}": rng.randint(0, 99) for j in range(n)} for i in range(m)}
    d = {r: sum(row.values()) // 2 for r, row in a.items()}
    return FiveElementModel.model_validate(
        {
            "name": "market_split",
            "sets": [
                {"name": "R", "members": list(a)},
                {"name": "C", "members": [f"c{j}" for j in range(n)]},
            ],
            "parameters": [
                {"name": "a", "index": ["R", "C"], "values": a},
                {"name": "d", "index": ["R"], "values": d},
            ],
            "variables": [
                {"name": "x", "index": ["C"], "domain": "binary"},
                {"name": "slack_pos", "index": ["R"]},
                {"name": "slack_neg", "index": ["R"]},
            ],
            "objective": {
                "sense": "minimize",
                "expression": "sum(slack_pos[r] + slack_neg[r] for r in R)",
            },
            "constraints": [
                {
                    "name": "split",
                    "index": ["r in R"],
                    "expression": "sum(a[r, c] * x[c] for c in C) + slack_pos[r] - slack_neg[r] == d[r]",
                }
            ],
        }
    )


def test_highs_time_limit_holds() -> None:
    lm = compile_model(market_split())
    t0 = time.perf_counter()
    result = highs.solve(lm, Limits(time_s=1.0))
    elapsed = time.perf_counter() - t0
    assert result.status in (Status.TIMEOUT, Status.OPTIMAL)
    assert elapsed < 2.0, elapsed
    if result.status is Status.TIMEOUT:
        assert result.has_solution  # the incumbent found so far comes back


def test_pyomo_time_limit_holds() -> None:
    lm = compile_model(market_split())
    t0 = time.perf_counter()
    result = pyomo_backend.solve(lm, Limits(time_s=1.0))
    assert result.status in (Status.TIMEOUT, Status.OPTIMAL)
    assert time.perf_counter() - t0 < 2.5


def test_mip_infeasibility_diagnosis_stays_within_its_budget() -> None:
    """x binary, 2 x == 1 is infeasible only for integers: HiGHS's IIS does not apply and the
    deletion filter does the work."""
    model = FiveElementModel.model_validate(
        {
            "variables": [
                {"name": "x", "domain": "integer", "upper": 10},
                {"name": "y", "upper": 3},
            ],
            "objective": {"sense": "max", "expression": "x + y"},
            "constraints": [
                {"name": "half", "expression": "2 * x == 1", "description": "two halves"},
                {"name": "y_cap", "expression": "y <= 2"},
            ],
        }
    )
    result = highs.solve(compile_model(model), Limits(time_s=5))
    assert result.status is Status.INFEASIBLE
    assert result.diagnosis is not None
    assert [m["name"] for m in result.diagnosis.members if not m["name"].startswith("bound")] == [
        "half"
    ]


def test_many_solves_in_one_thread_keep_their_full_time_limit() -> None:
    """HiGHS's run clock is per instance and survives clear(): solves must not share instances."""
    lm = compile_model(market_split())
    highs.solve(lm, Limits(time_s=0.5))  # burns 0.5 s of some instance's clock
    lp = compile_model(
        FiveElementModel.model_validate(
            {
                "variables": [{"name": "x", "upper": 3}],
                "objective": {"sense": "max", "expression": "x"},
            }
        )
    )
    assert highs.solve(lp, Limits(time_s=0.3)).status is Status.OPTIMAL
