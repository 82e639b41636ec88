"""The values that flow through one request: Request -> Attempt(s) -> Answer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from solvers.base import Diagnosis, SolveResult, Status, Verification

MAX_REQUEST_BYTES = 2_000_000
"""Largest request text accepted (2 MB); a larger paste is refused before anything else runs."""


@dataclass(frozen=True, slots=True)
class Request:
    """What a person asked: ``text`` (words or a formal model), an optional file ``name`` it came
    from (used to recognise formats), ``kind`` to force a problem kind, ``optimal`` to ask for a
    proven-optimal plan."""

    text: str
    name: str = ""
    kind: str = ""
    optimal: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    """Kind-specific inputs (for planning: ``{"domain": DOMAIN_TEXT}``)."""
    started: float | None = None
    """The ``time.perf_counter()`` instant the person's request began (the CLI: when its process
    began); the time limit counts from it. None: from when ``Agent.solve`` is called."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: ``kind`` (``milp``), whether it is ``formal`` (needs no language
    model), and ``reason`` in words."""

    kind: str
    formal: bool
    reason: str


@dataclass(slots=True)
class Attempt:
    """One pass through formalize -> validate -> solve -> verify.

    ``stage`` is the last stage reached; ``outcome`` is ``ok`` or the error kind that ended it
    (``parse``, ``schema``, ``symbol``, ``nonlinear``, ``infeasible``, ``unbounded``,
    ``verification``..., ``grounding`` when its numbers were sent back or amended, ``needs_info``), or, for
    a solve whose status ended the loop on our side, that status in lower case (``timeout``,
    ``error``, ``unsupported``); ``feedback`` is what was sent back to the model (empty when
    nothing was); ``timings`` are seconds per stage.
    """

    number: int
    stage: str = "formalize"
    outcome: str = "ok"
    feedback: str = ""
    reply: str = ""
    artifact: Any = None
    status: str = ""
    objective: float | None = None
    model_id: str = ""
    prompt_version: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    repeats: int | None = None
    """The number of an earlier attempt whose artifact this one repeats (not solved again)."""
    edits: list[str] | None = None
    """For an attempt no model made (``agent.agent.AMENDED_BY``): the grounding check's edits to
    the previous attempt's artifact."""

    def to_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {} if self.repeats is None else {"repeats": self.repeats}
        if self.edits is not None:
            extra["edits"] = list(self.edits)
        return extra | {
            "number": self.number,
            "stage": self.stage,
            "outcome": self.outcome,
            "status": self.status,
            "objective": self.objective,
            "feedback": self.feedback,
            "model": self.model_id,
            "prompt_version": self.prompt_version,
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
            "artifact": self.artifact,
            "reply": self.reply,
        }


@dataclass(slots=True)
class Answer:
    """The outcome of a request.

    ``status`` is the solver's status of the final artifact (or ERROR when no artifact could be
    solved); ``verified`` says the independent check passed; ``explanation`` is plain language;
    ``error`` is set when the request failed, with ``trace`` holding every attempt.
    """

    status: Status
    kind: str
    objective: float | list[float] | None = None
    """The answer's objective value (a plan's cost for planning); for an answer-set program that
    optimizes at several priority levels, the cost at every level, highest priority first (a list:
    set from ``solve_result.cost``). One level stays a number."""
    values: dict[str, float] = field(default_factory=dict)
    verified: bool = False
    verification: Verification | None = None
    diagnosis: Diagnosis | None = None
    artifact: Any = None
    language: str = ""
    explanation: str = ""
    error: str = ""
    solver: str = ""
    trace: list[Attempt] = field(default_factory=list)
    solve_result: SolveResult | None = None
    questions: list[str] = field(default_factory=list)
    """For NEEDS_INFO: what to ask the person."""
    grounding: dict[str, Any] | None = None
    """Whether the model's numbers are the request's (``formalizers.milp.grounding``): ``ok``,
    ``invented`` numbers, ``unused`` quantities, ``misattributed`` ones (a number on a variable
    its sentence does not name) and ``contradicted`` constraints (a limit the other way round from
    its words, a description of another sentence or problem, units mixed); None where the kind has
    no such check."""
    vote: dict[str, Any] | None = None
    """When k formalizations were sampled and voted on (``agent.voting.Ballot.to_json``): ``k``,
    ``verified``, ``confidence`` (the answer's votes over k), ``disagree``, the ``groups``."""
    tool: str = ""
    """The cached tool that built the answer's artifact (``name@vN``); empty when none did."""
    tools: dict[str, Any] | None = None
    """What the tool dispatcher decided for a request in words and why (``agent.tools_flow``):
    ``chosen``, ``reason``, ``candidates``, a failed tool's ``fallback``, a ``proposal``."""

    def __post_init__(self) -> None:
        r = self.solve_result
        if self.objective is not None and r is not None and r.cost is not None and len(r.cost) > 1:
            self.objective = [float(c) for c in r.cost]

    @property
    def plan(self) -> list[str] | None:
        r = self.solve_result
        return list(r.plan) if r is not None and r.plan is not None else None

    @property
    def answer_set(self) -> list[str] | None:
        r = self.solve_result
        return list(r.answer_set) if r is not None and r.answer_set is not None else None

    @property
    def cost(self) -> list[int] | None:
        r = self.solve_result
        return list(r.cost) if r is not None and r.cost is not None else None

    @property
    def routes(self) -> list[list[Any]] | None:
        """Routing: each route's visited location ids, depots excluded."""
        r = self.solve_result
        if r is None or r.routes is None:
            return None
        return [list(route["visits"]) for route in r.routes]

    @property
    def attempts(self) -> int:
        return len(self.trace)

    @property
    def ok(self) -> bool:
        return not self.error

    def to_json(self, trace: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status.value,
            "kind": self.kind,
            "objective": self.objective,
            "values": self.values,
            "verified": self.verified,
            "attempts": self.attempts,
            "solver": self.solver,
            "language": self.language,
            "artifact": self.artifact,
            "explanation": self.explanation,
            "tool": self.tool,
        }
        if self.plan is not None:
            out["plan"] = self.plan
            out["plan_length"] = len(self.plan)
        if self.answer_set is not None:
            out["answer_set"] = self.answer_set
            out["cost"] = self.cost
        if self.routes is not None and self.solve_result is not None:
            out["routes"] = self.routes
            out["route_details"] = list(self.solve_result.routes or ())
        if self.questions:
            out["questions"] = self.questions
        if self.grounding is not None:
            out["grounding"] = self.grounding
        if self.vote is not None:
            out["vote"] = self.vote
        if self.tools is not None:
            out["tools"] = self.tools
        if self.verification is not None:
            out["verification"] = self.verification.to_json()
        if self.diagnosis is not None:
            out["diagnosis"] = self.diagnosis.to_json()
        if self.error:
            out["error"] = self.error
        if trace:
            out["trace"] = [a.to_json() for a in self.trace]
        return json_safe(out)


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float written as a string ("inf", "-inf", "nan"): strict JSON
    has no Infinity or NaN, and clients reject them."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
