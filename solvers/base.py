"""What every solver returns, and the limits it runs under."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    """Outcome of a solve. Expected outcomes are statuses, never exceptions.

    INFEASIBLE and UNBOUNDED only when the solver proves it; running out of time is TIMEOUT (with a
    solution if one was found, see ``SolveResult.has_solution``).
    """

    OPTIMAL = "OPTIMAL"
    FEASIBLE = "FEASIBLE"
    INFEASIBLE = "INFEASIBLE"
    UNBOUNDED = "UNBOUNDED"
    TIMEOUT = "TIMEOUT"
    ERROR = "ERROR"
    UNSUPPORTED = "UNSUPPORTED"
    NEEDS_INFO = "NEEDS_INFO"


POSITIVE_STATUSES = frozenset({Status.OPTIMAL, Status.FEASIBLE})
"""Statuses that come with a solution that must verify."""

NEGATIVE_STATUSES = frozenset({Status.INFEASIBLE, Status.UNBOUNDED})
"""Statuses that prove the model has no optimum; they come with a diagnosis."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of one solver call.

    ``time_s``: wall-clock seconds the solver may run (always enforced). ``mip_gap``: relative gap at
    which a MIP counts as solved (HiGHS's default when None).
    """

    time_s: float = 60.0
    mip_gap: float | None = None

    def __post_init__(self) -> None:
        if not (self.time_s > 0 and math.isfinite(self.time_s)):
            raise ValueError(
                f"time limit must be a positive number of seconds, not {self.time_s!r}"
            )


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Why a model has no optimum, in terms of the artifact.

    For INFEASIBLE: ``members`` are the constraints and bounds of an irreducible infeasible subset,
    each ``{"name", "family", "text", "description"}``. For UNBOUNDED: the variables that run off,
    each ``{"name", "direction", "description"}``.
    """

    kind: str
    summary: str
    members: tuple[dict[str, Any], ...] = ()
    irreducible: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "irreducible": self.irreducible,
            "members": [dict(m) for m in self.members],
        }


@dataclass(frozen=True, slots=True)
class SolveResult:
    """What a solver found.

    ``objective`` is the objective value of the returned solution, in the model's own units (None
    without a solution; a plan's cost for planning). ``values`` maps each variable instance
    (``"x[a,1]"``) to its value. ``plan`` is a plan's actions (``"drive(van1, depot, mill)"``),
    ``answer_set`` an answer set's atoms with ``cost`` its cost per priority level. ``time_s`` is the
    solver's wall time in seconds.
    """

    status: Status
    solver: str
    objective: float | None = None
    values: dict[str, float] = field(default_factory=dict)
    time_s: float = 0.0
    message: str = ""
    diagnosis: Diagnosis | None = None
    bound: float | None = None
    plan: tuple[str, ...] | None = None
    answer_set: tuple[str, ...] | None = None
    cost: tuple[int, ...] | None = None
    questions: tuple[str, ...] = ()
    """For NEEDS_INFO: what to ask the person, one question per missing input."""
    routes: tuple[dict[str, Any], ...] | None = None
    """Routing: one entry per vehicle used, ``{"vehicle", "start", "end", "stops"}``, where
    ``stops`` lists the visits in order as ``[kind, key]`` pairs (``["client", id]``,
    ``["pickup", shipment]``, ``["delivery", shipment]``, ``["reload", depot id]``) and ``visits``
    the location ids visited, depots excluded."""

    def __post_init__(self) -> None:
        if self.status in POSITIVE_STATUSES and not self.has_solution:
            raise ValueError(f"a {self.status.value} result needs a solution")
        if self.values and self.objective is None:
            raise ValueError("a result with variable values needs their objective value")
        if self.status in NEGATIVE_STATUSES and self.has_solution:
            raise ValueError(f"a {self.status.value} result cannot carry a solution")

    @property
    def has_solution(self) -> bool:
        """Whether a solution is at hand: variable values, a plan, an answer set or routes (even
        empty)."""
        return (
            bool(self.values)
            or self.plan is not None
            or self.answer_set is not None
            or self.routes is not None
        )


@dataclass(frozen=True, slots=True)
class Violation:
    """One check that failed: ``amount`` is how far past its bound (in the model's units)."""

    name: str
    amount: float
    detail: str


@dataclass(frozen=True, slots=True)
class Verification:
    """An independent re-check of a solution against the artifact.

    ``max_violation`` is the largest absolute violation of any constraint, bound or integrality
    requirement (0 when all hold); ``objective`` is the objective recomputed from the values.
    ``conclusive`` is False when the check itself could not finish (its time ran out): the answer
    is then not verified, but nothing was found wrong with it either.
    """

    ok: bool
    checked: int
    max_violation: float
    objective: float | None
    violations: tuple[Violation, ...] = ()
    message: str = ""
    conclusive: bool = True

    @property
    def verdict(self) -> str:
        """How an explanation opens its line on the check."""
        if self.ok:
            return "Verified independently"
        return "Verification FAILED" if self.conclusive else "Not verified"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "max_violation": self.max_violation,
            "objective": self.objective,
            "violations": [
                {"name": v.name, "amount": v.amount, "detail": v.detail} for v in self.violations
            ],
            "message": self.message,
            "conclusive": self.conclusive,
        }
