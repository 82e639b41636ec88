"""Incomplete requests over APIs: clingo derives what is missing, the planner orders the calls, and
the answer is either an orchestration plan or NEEDS_INFO with the questions to ask."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from agent.errors import ArtifactError, Diagnostic, InputError
from agent.kinds.base import Kind, Options, solver_limits, verify_share
from agent.llm.chat import Chat
from agent.types import Request
from formalizers.apis.derive import Derivation, derive
from formalizers.apis.formalizer import ApiFormalizer
from formalizers.apis.model import (
    ApiCatalog,
    ApiRequest,
    looks_like_api_request,
    read_catalog,
    read_request,
)
from formalizers.apis.planning import ASK, to_pddl
from formalizers.base import Artifact
from formalizers.pddl.model import Domain, Problem, read_domain, read_problem
from formalizers.pddl.simulate import check_plan, parse_step
from solvers import planning
from solvers.base import Diagnosis, SolveResult, Status, Verification, Violation


@dataclass(slots=True)
class ValidatedRequest:
    request: ApiRequest
    domain: Domain
    problem: Problem
    domain_text: str
    problem_text: str


def _catalog(options: Options) -> ApiCatalog:
    given = options.extra.get("apis")
    if isinstance(given, ApiCatalog):
        return given
    if isinstance(given, str) and given.strip():
        return read_catalog(given)
    raise InputError("a request over APIs needs the API catalog: pass --apis APIS.yaml")


class ApisKind(Kind):
    name = "apis"
    words: tuple[str, ...] = ("book", "api", "flight", "hotel", "reservation", "convert", "call")
    follow_up = (
        'when it asks a question, answer with name = value pairs ("nights = 5, '
        'passport_number = P1"); no language model is needed for that'
    )
    takes_answers = True

    def is_formal(self, text: str, name: str) -> bool:
        return looks_like_api_request(text)

    def read(self, text: str, name: str, options: Options) -> Artifact:
        req = read_request(text)
        return Artifact("apis", "api-request", req, text)

    def formalizer(self, client: Chat, options: Options) -> ApiFormalizer:
        return ApiFormalizer(client, _catalog(options))

    def continue_request(self, artifact: Any, answers: dict[str, str]) -> Request | None:
        """The same formal request (``artifact``: the request with its catalog, as JSON) with the
        person's ``answers`` added to what they gave."""
        if not isinstance(artifact, dict):
            return None
        text = json.dumps(artifact)
        return Request(text, "request.json", self.name, extra={"given": dict(answers)})

    def validate(self, artifact: Artifact, options: Options) -> ValidatedRequest:
        req: ApiRequest = artifact.model
        answers = options.extra.get("given") or {}
        if answers:
            req = req.with_answers({str(k): str(v) for k, v in answers.items()})
            req.check()
        domain_text, problem_text = to_pddl(req)
        dom = read_domain(domain_text)
        return ValidatedRequest(
            req, dom, read_problem(problem_text, dom), domain_text, problem_text
        )

    def solve(self, validated: ValidatedRequest, options: Options) -> SolveResult:
        # The orchestration is planned optimally: asking the person is the most expensive step.
        result = planning.run_fast_downward(
            validated.domain_text,
            validated.problem_text,
            solver_limits(options, verify_share(options, 0.05, 0.1, 2.0)),
            optimal=True,
        )
        if result.plan is None:
            return result
        asked = [parse_step(s)[1][0] for s in result.plan if parse_step(s)[0] == ASK]
        if asked:
            cat = validated.request.catalog
            return replace(
                result,
                status=Status.NEEDS_INFO,
                objective=None,
                questions=tuple(cat.question(p) for p in asked),
                message=f"missing: {', '.join(asked)}",
                diagnosis=Diagnosis(
                    "missing",
                    f"only the person can give: {', '.join(asked)}",
                    tuple({"name": p, "question": cat.question(p)} for p in asked),
                ),
            )
        return result

    def verify(
        self, validated: ValidatedRequest, result: SolveResult, opts: Options | None = None
    ) -> Verification | None:
        """The plan must run (each call's inputs known), and what it asks for and what it costs must match
        clingo's independent derivation of what is missing."""
        if result.plan is None:
            return None
        plan = list(result.plan)
        sim = check_plan(validated.domain, validated.problem, plan)
        derived: Derivation = derive(validated.request)
        asked = tuple(sorted(parse_step(s)[1][0] for s in plan if parse_step(s)[0] == ASK))
        problems = []
        if not sim.ok:
            problems.append(Violation("plan", 1.0, sim.reason))
        if asked != derived.missing:
            problems.append(
                Violation(
                    "missing",
                    1.0,
                    f"the plan asks for {list(asked)}, clingo derives {list(derived.missing)}",
                )
            )
        if int(sim.cost) != derived.cost:
            problems.append(
                Violation(
                    "cost",
                    abs(sim.cost - derived.cost),
                    f"plan cost {sim.cost:g}, clingo {derived.cost}",
                )
            )
        msg = (
            "the orchestration runs, and clingo derives the same missing inputs and cost"
            if not problems
            else "; ".join(v.detail for v in problems)
        )
        return Verification(
            not problems, len(plan) + 2, float(len(problems)), sim.cost, tuple(problems), msg
        )

    def explain(
        self, validated: ValidatedRequest, result: SolveResult, verification: Verification | None
    ) -> str:
        lines = []
        req = validated.request
        if result.plan is None:
            return f"{result.status.value}: {result.message}"
        calls = [s for s in result.plan if parse_step(s)[0] != ASK]
        if result.status is Status.NEEDS_INFO:
            lines.append("More information is needed before the request can be carried out:")
            lines += [f"  - {q}" for q in result.questions]
            lines.append("Once answered, the calls will be:")
        else:
            lines.append(f"To get {', '.join(req.want)}, call in this order:")
        for n, step in enumerate(calls, 1):
            name = parse_step(step)[0]
            api = next(a for a in req.catalog.apis if a.name == name)
            lines.append(f"  {n}. {name}({', '.join(api.inputs)}) -> {', '.join(api.outputs)}")
        if verification is not None:
            lines.append(
                ("Checked: " if verification.ok else "Check FAILED: ") + verification.message + "."
            )
        return "\n".join(lines)

    def problem(
        self, validated: Any, result: SolveResult, verification: Verification | None
    ) -> ArtifactError | None:
        if verification is not None and not verification.ok:
            return ArtifactError("verification", [Diagnostic("plan", verification.message)])
        if result.status in (Status.OPTIMAL, Status.FEASIBLE, Status.NEEDS_INFO):
            return None
        if result.status is Status.INFEASIBLE:
            return ArtifactError(
                "infeasible",
                [Diagnostic("want", "no chain of API calls produces what is wanted")],
                "nothing can produce the wanted parameters; check want(...) against the APIs' outputs",
            )
        return None  # TIMEOUT, ERROR, UNSUPPORTED: the status stops the loop
