"""Linear and mixed-integer optimization: five-element models, LP and MPS files, HiGHS."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from agent.errors import ArtifactError, Diagnostic
from agent.kinds import backend_for
from agent.kinds.base import Kind, Options, solver_limits, verification_failure, verify_share
from formalizers.base import Artifact
from formalizers.offline import milp_files
from solvers.base import (
    NEGATIVE_STATUSES,
    POSITIVE_STATUSES,
    Limits,
    SolveResult,
    Status,
    Verification,
)
from solvers.registry import solve_with

if TYPE_CHECKING:
    from agent.llm.chat import Chat
    from formalizers.milp.formalizer import MilpFormalizer
    from formalizers.milp.linear import LinearModel

# The compiler, the verifier and the explainer load when a model is ours: the router asks this
# kind first about every input (a PDDL or clingo file should not pay for them).


def features(lm: LinearModel) -> frozenset[str]:
    """The features a compiled model uses, in the words backends declare them
    (``solvers.base.Supports``): continuous and/or integer variables."""
    kinds = {"integer variables" if c.integer else "continuous variables" for c in lm.columns}
    return frozenset(kinds or {"continuous variables"})


def limits_for_solver(options: Options) -> Limits:
    """HiGHS's limits: what is left of the request's time, less the check's share (the check is
    one pass over the rows: 5% of the limit, 0.1 to 2 s)."""
    return solver_limits(options, verify_share(options, 0.05, 0.1, 2.0))


class MilpKind(Kind):
    name = "milp"
    follow_up = (
        'the last model is edited, not rewritten, and the answer says what changed: "what if '
        'the budget is 5000?", "now at most 3 trucks", "add a minimum of 10 chairs"'
    )
    words: tuple[str, ...] = (
        "maximize",
        "minimize",
        "maximise",
        "minimise",
        "profit",
        "cost",
        "budget",
        "at least",
        "at most",
        "optimal",
        "how many",
        "allocate",
        "production",
        "diet",
        "transport",
        "capacity",
        "linear program",
    )

    def is_formal(self, text: str, name: str) -> bool:
        low = name.lower()
        if low.endswith(".mps"):
            return True
        if low.endswith(".lp"):
            return milp_files.looks_like_cplex_lp(text)
        if low.endswith((".json", ".yaml", ".yml")):
            from formalizers.apis.model import looks_like_api_request
            from formalizers.offline.routing_files import looks_like_routing_spec

            return not looks_like_api_request(text) and not looks_like_routing_spec(text)
        return (
            milp_files.looks_like_five_element(text)
            or milp_files.looks_like_cplex_lp(text)
            or milp_files.looks_like_mps(text)
        )

    def read(self, text: str, name: str, options: Options) -> Artifact:
        return milp_files.artifact_from_text(text, "milp", name)

    def formalizer(self, client: Chat, options: Options) -> MilpFormalizer:
        from formalizers.milp.formalizer import MilpFormalizer  # the language-model side: on demand

        return MilpFormalizer.from_options(client, options.extra)

    def revising(
        self, client: Chat, options: Options, previous: Any, instruction: str
    ) -> MilpFormalizer | None:
        """The language model edits the previous five-element model (JSON) as the follow-up
        says; a previous artifact that is not one (an LP or MPS file's text) is formalized again."""
        if not isinstance(previous, dict):
            return None
        return self.formalizer(client, options).revising(previous, instruction)

    def validate(self, artifact: Artifact, options: Options) -> LinearModel:
        from formalizers.milp.linear import LinearModel, compile_model

        if isinstance(artifact.model, LinearModel):
            return artifact.model
        return compile_model(artifact.model)

    def solve(self, validated: LinearModel, options: Options) -> SolveResult:
        # The backend the options pick (``backend``), by its registry name: its declaration
        # refuses a model with features it lacks before it runs.
        return solve_with(
            backend_for(self.name, options),
            self.name,
            features(validated),
            validated,
            validated,
            limits_for_solver(options),
        )

    def verify(
        self, validated: LinearModel, result: SolveResult, opts: Options | None = None
    ) -> Verification | None:
        from solvers.verify import verify_linear

        return verify_linear(validated, result) if result.has_solution else None

    def ground(self, artifact: Artifact, options: Options) -> Any:
        """Whether a model a language model wrote uses the request's numbers, and all of them
        (``formalizers.milp.grounding.Grounding``); None for a formal input or an LP/MPS file."""
        from formalizers.milp.grounding import check
        from formalizers.milp.model import FiveElementModel

        if artifact.provenance.source != "model" or not options.request:
            return None
        if not isinstance(artifact.model, FiveElementModel):
            return None
        return check(artifact.model, options.request)

    def amend(
        self, artifact: Artifact, finding: Any, options: Options
    ) -> tuple[Artifact, list[str]] | None:
        """The five-element model with the contradictions' edits made
        (``formalizers.milp.grounding.amended``), or, for a symbol error, its parameters named
        like a variable renamed (``formalizers.milp.amend.renamed_clashes``) and constraints
        that share a name told apart (``renamed_duplicates``), or, for a constraint the
        expression language refuses, several statements in one split or read as domains
        (``compound_constraints``) and a strict inequality written as a solver takes it
        (``strict_inequalities``)."""
        from formalizers.milp.amend import (
            compound_constraints,
            renamed_clashes,
            renamed_duplicates,
            strict_inequalities,
        )
        from formalizers.milp.grounding import Grounding, amended
        from formalizers.milp.model import FiveElementModel

        model = artifact.model
        if artifact.provenance.source != "model" or not isinstance(model, FiveElementModel):
            return None
        edits: list[str] = []
        if isinstance(finding, Grounding):
            out = amended(model, finding)
            if out is not None:
                model, made = out
                edits = [e.text() for e in made]
        elif isinstance(finding, ArtifactError) and finding.kind == "symbol":
            for rename in (renamed_clashes, renamed_duplicates):
                renamed = rename(model)
                if renamed is not None:
                    model, more = renamed
                    edits = [*edits, *more]
        elif isinstance(finding, ArtifactError) and finding.kind == "parse":
            # Several statements in one constraint first (each comparison its own, domains
            # declared), then any strict inequality among them; the agent compiles the result.
            compound = compound_constraints(model, check=False)
            if compound is not None:
                model, edits = compound
            if "is not allowed in a constraint" in str(finding):
                strict = strict_inequalities(model)
                if strict is not None:
                    model, more = strict
                    edits = [*edits, *more]
        if not edits:
            return None
        text = json.dumps(model.to_json())
        return dataclasses.replace(artifact, model=model, text=text), edits

    def explain(
        self, validated: LinearModel, result: SolveResult, verification: Verification | None
    ) -> str:
        from agent.kinds.explain import explain_linear

        return explain_linear(validated, result, verification)

    def problem(
        self, validated: Any, result: SolveResult, verification: Verification | None
    ) -> ArtifactError | None:
        if verification is not None and not verification.ok:
            return verification_failure(verification, "solution")
        if result.status in POSITIVE_STATUSES:
            return None
        if result.status in NEGATIVE_STATUSES:
            members = result.diagnosis.members if result.diagnosis is not None else ()
            if result.status is Status.INFEASIBLE:
                diags = [
                    Diagnostic(
                        m["name"],
                        m["text"],
                        f"from: {m['description']}" if m.get("description") else "",
                    )
                    for m in members
                ]
                summary = (
                    "the model is infeasible: no values satisfy these constraints together "
                    "(an irreducible infeasible subset). Check each against the request: a wrong "
                    "direction (<= vs >=), a wrong number, or a constraint the request does not state."
                )
            else:
                diags = [
                    Diagnostic(
                        m["name"],
                        f"runs off to {m['direction']}infinity",
                        f"variable: {m['description']}" if m.get("description") else "",
                    )
                    for m in members
                ]
                summary = (
                    "the model is unbounded: the objective improves without limit. A constraint that "
                    "limits these variables is missing, or the objective sense is wrong."
                )
            return ArtifactError(result.status.value.lower(), diags, summary)
        return None  # TIMEOUT, ERROR, UNSUPPORTED: the status stops the loop
