"""The orchestrator: formalize -> validate -> solve -> verify, and repair from the diagnosis.

This is the only place that loops. A failure the model caused (unparseable reply, undeclared symbol,
nonlinear term, infeasible or unbounded model, failed verification) goes back to the formalizer as
feedback, up to ``max_attempts``; a failure on our side (``StopError``) ends the request.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agent.config import HOW_TO_CONFIGURE, Config, load_config
from agent.errors import ArtifactError, ConfigError, Diagnostic, InputError
from agent.explain import explain_linear
from agent.llm.client import ChatClient
from agent.router import route
from agent.types import Answer, Attempt, Request
from formalizers.base import Artifact, Feedback
from formalizers.milp.formalizer import MilpFormalizer
from formalizers.milp.linear import LinearModel, compile_model
from formalizers.offline.milp_files import artifact_from_text
from solvers.base import NEGATIVE_STATUSES, POSITIVE_STATUSES, Limits, SolveResult, Status
from solvers.verify import verify_linear

MAX_FILE_BYTES = 20_000_000


class Agent:
    """Solves planning and optimization requests.

    ``model`` is a spec string (``openai:gpt-4o-mini``, ``replay:recording.jsonl``...) or a
    ``ChatClient``; without one, only formal inputs can be solved. Other keywords override the
    configuration (``max_attempts``, ``time_limit``, ``backend``, ``cache``, ``record``).

    >>> Agent().solve('{"variables": [{"name": "x", "upper": 4}], '
    ...               '"objective": {"sense": "max", "expression": "3 * x"}}').objective
    12.0
    """

    def __init__(
        self, model: str | ChatClient | None = None, config: Config | None = None, **overrides: Any
    ) -> None:
        cfg = config or load_config()
        if isinstance(model, str):
            overrides["model"] = model
        self.config = cfg.with_overrides(**overrides)
        self._client: ChatClient | None = model if isinstance(model, ChatClient) else None

    @property
    def client(self) -> ChatClient | None:
        """The chat client, built on first use from the configured spec (None without a model)."""
        if self._client is None and self.config.model:
            self._client = ChatClient.from_spec(
                self.config.model,
                self.config.base_url,
                self.config.cache,
                self.config.record,
                self.config.temperature,
                self.config.request_timeout,
            )
        return self._client

    # -- public API --------------------------------------------------------------------------
    def solve(self, request: str | Request, kind: str = "") -> Answer:
        """Formalize (unless formal already), solve, verify and explain ``request``.

        Raises ``InputError`` for unusable input and ``ConfigError`` when natural language arrives
        with no model configured; every other outcome is an ``Answer`` (see ``Answer.error``).
        """
        req = request if isinstance(request, Request) else Request(request, kind=kind)
        r = route(req)
        if r.formal:
            return self._solve_formal(req, r.kind)
        client = self.client
        if client is None:
            raise ConfigError(HOW_TO_CONFIGURE)
        return self._repair_loop(req.text, MilpFormalizer(client))

    def solve_file(self, path: str | Path, kind: str = "") -> Answer:
        """Solve the request or model in a file (text up to 20 MB)."""
        p = Path(path)
        try:
            if p.stat().st_size > MAX_FILE_BYTES:
                raise InputError(f"{p} is larger than {MAX_FILE_BYTES // 1_000_000} MB")
            data = p.read_bytes()
        except OSError as e:
            raise InputError(f"cannot read {p}: {e.strerror or e}") from e
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{p} is not UTF-8 text (binary data?)") from e
        if p.suffix.lower() == ".txt":
            return self.solve(Request(text, "", kind))
        return self.solve(Request(text, p.name, kind))

    # -- formal input ------------------------------------------------------------------------
    def _solve_formal(self, req: Request, kind: str) -> Answer:
        attempt = Attempt(1, model_id="input")
        t0 = time.perf_counter()
        try:
            artifact = artifact_from_text(req.text, kind, req.name)
            attempt.artifact = artifact.to_json()
            attempt.stage = "validate"
            lm = self._validate(artifact, attempt, t0)
        except ArtifactError as e:
            # Nobody can repair a person's file for them: report it as it is.
            attempt.outcome = e.kind
            attempt.feedback = e.feedback()
            return Answer(
                Status.ERROR,
                kind,
                error=f"the model is invalid ({e.kind}):\n{e.feedback()}",
                trace=[attempt],
                artifact=attempt.artifact,
            )
        result, verification, _ = self._solve_verify(lm, attempt)
        return self._answer(artifact, lm, result, verification, [attempt])

    # -- the repair loop ---------------------------------------------------------------------
    def _repair_loop(self, text: str, formalizer: MilpFormalizer) -> Answer:
        trace: list[Attempt] = []
        feedback: Feedback | None = None
        last_negative: tuple[Artifact, LinearModel, SolveResult] | None = None
        for n in range(1, self.config.max_attempts + 1):
            attempt = Attempt(n, model_id=formalizer.client.model_id)
            trace.append(attempt)
            t0 = time.perf_counter()
            try:
                artifact = formalizer.formalize(text, feedback, n)
            except ArtifactError as e:
                attempt.timings["formalize"] = time.perf_counter() - t0
                attempt.reply = getattr(e, "reply", "")
                attempt.outcome = e.kind
                feedback = Feedback(e.kind, e.feedback(), attempt.reply)
                attempt.feedback = feedback.text
                continue
            attempt.timings["formalize"] = time.perf_counter() - t0
            attempt.reply = artifact.text
            attempt.prompt_version = artifact.provenance.prompt_version
            attempt.artifact = artifact.to_json()
            try:
                attempt.stage = "validate"
                lm = self._validate(artifact, attempt, time.perf_counter())
            except ArtifactError as e:
                attempt.outcome = e.kind
                feedback = Feedback(e.kind, e.feedback(), artifact.text)
                attempt.feedback = feedback.text
                continue
            result, verification, problem = self._solve_verify(lm, attempt)
            if problem is None:
                return self._answer(artifact, lm, result, verification, trace)
            if result.status in NEGATIVE_STATUSES:
                last_negative = (artifact, lm, result)
            if problem.kind in ("timeout", "error"):
                # Our side (or the solver's budget), not something the model can fix by rewriting.
                return self._answer(artifact, lm, result, verification, trace)
            attempt.outcome = problem.kind
            feedback = Feedback(problem.kind, problem.feedback(), artifact.text)
            attempt.feedback = feedback.text
        if last_negative is not None and trace[-1].outcome in ("infeasible", "unbounded"):
            # Every repair still proves the model has no optimum: that is the answer, with its diagnosis.
            artifact, lm, result = last_negative
            return self._answer(artifact, lm, result, None, trace)
        last = trace[-1]
        return Answer(
            Status.ERROR,
            "milp",
            trace=trace,
            artifact=last.artifact,
            error=f"gave up after {len(trace)} attempt(s); the last one failed at {last.stage} "
            f"({last.outcome}):\n{last.feedback}",
        )

    # -- stages ------------------------------------------------------------------------------
    def _validate(self, artifact: Artifact, attempt: Attempt, t0: float) -> LinearModel:
        try:
            if isinstance(artifact.model, LinearModel):
                return artifact.model
            return compile_model(artifact.model)
        finally:
            attempt.timings["validate"] = time.perf_counter() - t0

    def _solve_verify(
        self, lm: LinearModel, attempt: Attempt
    ) -> tuple[SolveResult, Any, ArtifactError | None]:
        limits = Limits(time_s=self.config.time_limit)
        attempt.stage = "solve"
        t0 = time.perf_counter()
        if self.config.backend == "pyomo":
            from solvers import pyomo_backend

            result = pyomo_backend.solve(lm, limits)
        else:
            from solvers import highs

            result = highs.solve(lm, limits)
        attempt.timings["solve"] = time.perf_counter() - t0
        attempt.status = result.status.value
        attempt.objective = result.objective
        verification = None
        if result.has_solution:
            attempt.stage = "verify"
            t0 = time.perf_counter()
            verification = verify_linear(lm, result)
            attempt.timings["verify"] = time.perf_counter() - t0
            if not verification.ok:
                diags = [Diagnostic(v.name, v.detail) for v in verification.violations[:10]]
                return (
                    result,
                    verification,
                    ArtifactError(
                        "verification",
                        diags,
                        f"the solution fails the independent check: {verification.message}",
                    ),
                )
        if result.status in POSITIVE_STATUSES:
            return result, verification, None
        if result.status in NEGATIVE_STATUSES:
            d = result.diagnosis
            members = d.members if d is not None else ()
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
            return result, verification, ArtifactError(result.status.value.lower(), diags, summary)
        kind = "timeout" if result.status is Status.TIMEOUT else "error"
        return result, verification, ArtifactError(kind, [Diagnostic("solver", result.message)])

    def _answer(
        self,
        artifact: Artifact,
        lm: LinearModel,
        result: SolveResult,
        verification: Any,
        trace: list[Attempt],
    ) -> Answer:
        positive = result.status in POSITIVE_STATUSES or (
            result.status is Status.TIMEOUT and result.has_solution
        )
        return Answer(
            status=result.status,
            kind=artifact.kind,
            objective=result.objective if positive else None,
            values=dict(result.values),
            verified=bool(verification is not None and verification.ok),
            verification=verification,
            diagnosis=result.diagnosis,
            artifact=artifact.to_json(),
            language=artifact.language,
            explanation=explain_linear(lm, result, verification),
            solver=result.solver,
            trace=trace,
            solve_result=result,
        )


def solve(request: str, model: str | None = None, **overrides: Any) -> Answer:
    """One-shot helper: ``Agent(model, **overrides).solve(request)``."""
    return Agent(model, **overrides).solve(request)
