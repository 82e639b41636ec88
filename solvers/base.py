"""What every solver returns, the limits it runs under, and what a backend declares it supports."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
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


@dataclass(frozen=True, slots=True)
class Supports:
    """What one solver backend declares it can run, written beside its code (``SUPPORTS`` in its
    module; ``solvers.registry`` names the modules). As with unified-planning's engines
    (``supports(problem_kind)``) and PyVRP's problem data: the kind names the features an
    artifact uses, and a backend runs it only when it declares every one of them; otherwise the
    kind answers ``UNSUPPORTED`` naming the features, before anything runs.

    ``name``: the registry name (the value of ``--backend`` or ``--planner``). ``kinds``: the
    kinds (formal languages) it solves. ``features``: the artifact features it handles, in the
    kind's own words (milp: ``continuous variables``, ``integer variables``; pddl: ``STRIPS with
    types``, ``conditional effects``...). ``summary``: one line for ``formalist backends``. ``modules``: the Python
    modules it needs (found, not imported, to say whether it is available); ``binaries``:
    executables it needs on ``PATH``. ``check``: a test of the validated artifact for what a
    feature set cannot say: the reason it is unsupported, or None.
    """

    name: str
    kinds: tuple[str, ...]
    features: frozenset[str]
    summary: str
    modules: tuple[str, ...] = ()
    binaries: tuple[str, ...] = ()
    check: Callable[[Any], str | None] | None = None

    def unsupported(self, features: Iterable[str], validated: Any = None) -> str | None:
        """Why this backend cannot run an artifact with ``features`` (the validated artifact is
        passed on to ``check``), naming what it lacks; None when it can."""
        missing = sorted(set(features) - self.features)
        if missing:
            return (
                f"{self.name} does not support {', '.join(missing)} "
                f"(it handles {', '.join(sorted(self.features))})"
            )
        if self.check is not None and validated is not None:
            reason = self.check(validated)
            if reason:
                return f"{self.name} does not support {reason}"
        return None

    def refuse(self, reason: str) -> SolveResult:
        """The ``UNSUPPORTED`` result for an artifact this backend does not take."""
        return SolveResult(Status.UNSUPPORTED, self.name, message=reason)
