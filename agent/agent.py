"""The orchestrator: formalize -> validate -> solve -> verify, and repair from the diagnosis.

This is the only place that loops, and there is one loop (``Agent._loop``): ``solve`` runs it to
the independent check, ``formalize`` stops it once the artifact validates. A failure the model caused
(unparseable reply, undeclared symbol, nonlinear term, infeasible or unbounded model, failed
verification, numbers not from the request when grounding is ``repair``) goes back to the
formalizer as feedback (under grounding ``amend``, after the grounding check's own edits were tried
without a model call), up to ``max_attempts``; a reply that repeats an earlier one is not tried
again. The solve result's ``Status`` decides whether the loop stops (``STOP_STATUSES``: a time-out,
our side's failure, NEEDS_INFO) or asks the model again (the kind's ``problem`` feedback); a failure
on our side (``StopError``) ends the request. NEEDS_INFO (``NeedsInformation`` from any stage, or the
status) is answered in one place. What each stage does for a kind of problem, and which follow-ups
it takes, lives in ``agent.kinds``: this module names no kind.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import HOW_TO_CONFIGURE, Config, load_config
from agent.errors import (
    ArtifactError,
    ConfigError,
    Diagnostic,
    InputError,
    NeedsInformation,
    StopError,
)
from agent.kinds import KINDS, Kind, Options, check_config
from agent.kinds.base import OUR_SIDE_STATUSES
from agent.llm.chat import Chat
from agent.llm.client import ChatClient
from agent.router import route
from agent.types import Answer, Attempt, Request, Route
from formalizers.base import Artifact, Feedback
from solvers.base import (
    NEGATIVE_STATUSES,
    POSITIVE_STATUSES,
    Limits,
    SolveResult,
    Status,
    Verification,
)

MAX_FILE_BYTES = 20_000_000


INVALID_INPUT = "the input is invalid"
"""How ``Answer.error`` begins for a formal input that does not read or validate (the CLI exits 2)."""

SOLVED, VALIDATED = "verify", "validate"
"""Where the loop stops: after the independent check (``solve``), or once the artifact validates
(``formalize``)."""


@dataclass(slots=True)
class Formalized:
    """What the loop gives back when it stops at ``VALIDATED``: the artifact that validated, and
    the attempts it took."""

    artifact: Artifact
    trace: list[Attempt]


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
        check_config(self.config)  # backend and planner: names from the kinds' registry
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
                self.config.local,
            )
        return self._client

    # -- public API --------------------------------------------------------------------------
    def solve(self, request: str | Request, kind: str = "") -> Answer:
        """Formalize (unless formal already), solve, verify and explain ``request``.

        Raises ``InputError`` for unusable input and ``ConfigError`` when natural language arrives
        with no model configured; every other outcome is an ``Answer`` (see ``Answer.error``).
        """
        req = request if isinstance(request, Request) else Request(request, kind=kind)
        if req.started is None:
            req = dataclasses.replace(req, started=time.perf_counter())
        r = route(req)
        if r.formal:
            answer = self._solve_formal(req, KINDS[r.kind])
            if not (answer.error and not req.name and not req.kind and self.config.model):
                return answer
            # Text that only looked formal ("Minimize the wage bill subject to ...") and does not
            # read as a formal model is a request in words, when a model can take it.
            r = Route(r.kind, False, "read as words: it did not parse as a formal model")
        client = self.client
        if client is None:
            raise ConfigError(HOW_TO_CONFIGURE)
        from agent.voting import samples_option, solve_by_vote

        k = samples_option(req)
        if k > 1:
            return solve_by_vote(self, req, KINDS[r.kind], client, k)
        if self.config.tools["enabled"]:
            # A cached tool that fits builds the artifact; otherwise the kind's formalizer does.
            from agent.tools_flow import solve_with_tools

            return solve_with_tools(self, req, KINDS[r.kind], client)
        return self._repair_loop(req, KINDS[r.kind], client)

    def solve_file(
        self,
        path: str | Path,
        kind: str = "",
        optimal: bool = False,
        extra: dict[str, Any] | None = None,
        started: float | None = None,
    ) -> Answer:
        """Solve the request or model in a file (text up to 20 MB; ``.txt`` is taken as words).
        ``started``: the ``time.perf_counter()`` instant the request began (default: now)."""
        started = time.perf_counter() if started is None else started
        p = Path(path)
        text = read_text_file(p)
        return self.solve(
            Request(text, input_file_name(p), kind, optimal, dict(extra or {}), started)
        )

    def formalize(self, request: str | Request, kind: str = "") -> dict[str, Any]:
        """The validated artifact for ``request`` without solving it: ``{"kind", "language",
        "artifact", "attempts", "feedback"}`` (feedback from each failed attempt). The same loop as
        ``solve`` (repeats, repair feedback, grounding), stopped once the artifact validates.
        Raises ``InputError`` or ``ConfigError`` as ``solve`` does, ``ArtifactError`` (the last
        attempt's) when every attempt failed, and ``NeedsInformation`` when only the person can
        give what is missing."""
        req = request if isinstance(request, Request) else Request(request, kind=kind)
        r = route(req)
        k = KINDS[r.kind]
        if r.formal:
            opts = self.options(req)
            artifact = k.read(req.text, req.name, opts)
            k.validate(artifact, opts)
            done = Formalized(artifact, [Attempt(1, model_id="input")])
        else:
            client = self.client
            if client is None:
                raise ConfigError(HOW_TO_CONFIGURE)
            end = self._loop(req, k, client, until=VALIDATED)
            if isinstance(end, Answer):  # NEEDS_INFO: formalize has no answer to give
                raise NeedsInformation(end.questions)
            done = end
        return {
            "kind": k.name,
            "language": done.artifact.language,
            "artifact": done.artifact.to_json(),
            "attempts": len(done.trace),
            "feedback": [a.feedback for a in done.trace if a.feedback],
        }

    def revise(self, request: str, kind: str, previous: Any, instruction: str) -> Answer:
        """A follow-up to a solved request: where the kind can (``Kind.revising``: optimization),
        the language model edits the previous artifact as ``instruction`` says rather than starting
        over; otherwise the request and the follow-up together are formalized again."""
        client = self.client
        if client is None:
            raise ConfigError(HOW_TO_CONFIGURE)
        if kind not in KINDS:
            raise InputError(f"unknown kind {kind!r}")
        k = KINDS[kind]
        # A follow-up changes the request's numbers on purpose ("what if the flour is 6000 g?"):
        # grounding against the first words is reported, never repaired or amended back.
        req = Request(request, kind=kind, extra={"grounding": "report"})
        editing = k.revising(client, self.options(req), previous, instruction)
        if editing is not None:
            return self._repair_loop(req, k, client, editing)
        return self.solve(Request(f"{request}\n\nFollow-up: {instruction}", kind=kind))

    def continue_with(self, answer: Answer, answers: dict[str, str]) -> Answer:
        """Carry on after a NEEDS_INFO answer: the same request with the person's ``answers``
        (parameter -> value) added to what they gave, for a kind that takes answers by name
        (``Kind.takes_answers``). No language model is needed."""
        kind = KINDS.get(answer.kind) if answer.status is Status.NEEDS_INFO else None
        req = kind.continue_request(answer.artifact, answers) if kind is not None else None
        if req is None:
            takes = ", ".join(n for n, k in KINDS.items() if k.takes_answers)
            raise InputError(
                f"only a NEEDS_INFO answer of a kind that takes answers by name ({takes}) can be "
                "continued with them"
            )
        return self.solve(req)

    def options(self, req: Request) -> Options:
        return Options(
            Limits(time_s=self.config.time_limit),
            self.config.backend,
            req.optimal,
            dict(req.extra),
            req.text,
            self.config.planner,
        )

    # -- formal input ------------------------------------------------------------------------
    def _solve_formal(self, req: Request, kind: Kind) -> Answer:
        # One deadline for the whole request, from when it began: reading, building, solving,
        # checking and explaining all come out of the same time limit.
        began = time.perf_counter() if req.started is None else req.started
        opts = dataclasses.replace(self.options(req), deadline=began + self.config.time_limit)
        attempt = Attempt(1, model_id="input")
        t0 = time.perf_counter()
        try:
            try:
                artifact = kind.read(req.text, req.name, opts)
                attempt.artifact = artifact.to_json()
                attempt.stage = "validate"
                validated = kind.validate(artifact, opts)
            finally:
                attempt.timings["validate"] = time.perf_counter() - t0
            result, verification, _ = self._solve_verify(kind, validated, opts, attempt)
        except NeedsInformation as e:
            return needs_info(kind, e, [attempt])
        except ArtifactError as e:
            # Nobody can repair a person's file for them: report it as it is (a fault clingo
            # finds only while grounding is the file's too).
            attempt.outcome = e.kind
            attempt.feedback = e.feedback()
            return Answer(
                Status.ERROR,
                kind.name,
                error=f"{INVALID_INPUT} ({e.kind}):\n{e.feedback()}",
                trace=[attempt],
                artifact=attempt.artifact,
            )
        return self._answer(kind, artifact, validated, result, verification, [attempt])

    # -- the repair loop ---------------------------------------------------------------------
    def _repair_loop(
        self, req: Request, kind: Kind, client: Chat, formalizer: Any = None
    ) -> Answer:
        """The loop run to the independent check: always an ``Answer``."""
        end = self._loop(req, kind, client, formalizer, SOLVED)
        assert isinstance(end, Answer)
        return end

    def _loop(
        self,
        req: Request,
        kind: Kind,
        client: Chat,
        formalizer: Any = None,
        until: str = SOLVED,
    ) -> Answer | Formalized:
        """Formalize, validate and (``until=SOLVED``) solve and verify, sending each failure the
        model can fix back as feedback, up to ``max_attempts``. ``until=VALIDATED`` stops at the
        first artifact that validates (and is grounded, when grounding is ``repair`` or
        ``amend``) and gives it back as ``Formalized``; then NEEDS_INFO is an ``Answer`` and a
        loop that ran out of attempts raises the last attempt's ``ArtifactError``."""
        opts = self.options(req)
        formalizer = formalizer or kind.formalizer(client, opts)
        trace: list[Attempt] = []
        feedback: Feedback | None = None
        errors: dict[int, ArtifactError] = {}
        """The error each failed attempt ended with, by attempt number (a repeat: its original's)."""
        last_negative: tuple[Artifact, Any, SolveResult] | None = None
        ungrounded: Answer | Formalized | None = None
        """The verified but ungrounded answer with the fewest grounding findings so far."""
        ungrounded_findings = 0
        mode = grounding_option(req)
        repair_grounding = mode in ("repair", "amend")
        amend = mode == "amend" and until == SOLVED
        seen: dict[str, Attempt] = {}
        """Each distinct reply so far, by its content, and the attempt that first gave it."""

        def failed(attempt: Attempt, error: ArtifactError, reply: str) -> Feedback:
            errors[attempt.number] = error
            attempt.outcome = error.kind
            attempt.feedback = error.feedback()
            return Feedback(error.kind, attempt.feedback, reply)

        def repeat(attempt: Attempt, earlier: Attempt, reply: str) -> Feedback:
            if earlier.number in errors:
                errors[attempt.number] = errors[earlier.number]
            return repeated(attempt, earlier, formalizer, reply)

        for n in range(1, self.config.max_attempts + 1):
            attempt = Attempt(len(trace) + 1, model_id=client.model_id)
            trace.append(attempt)
            t0 = time.perf_counter()
            try:
                artifact = formalizer.formalize(req.text, feedback, n)
            except NeedsInformation as e:
                attempt.timings["formalize"] = time.perf_counter() - t0
                return needs_info(kind, e, trace)
            except StopError:
                if ungrounded is None:
                    raise
                # The model failed on a grounding repair (its time limit, its server): the
                # verified answer it was to improve is still the answer.
                attempt.timings["formalize"] = time.perf_counter() - t0
                attempt.outcome = "error"
                return ungrounded
            except ArtifactError as e:
                attempt.timings["formalize"] = time.perf_counter() - t0
                attempt.reply = e.reply
                earlier = seen.setdefault("reply:" + e.reply.strip(), attempt)
                if earlier is not attempt:
                    feedback = repeat(attempt, earlier, e.reply)
                else:
                    feedback = failed(attempt, e, attempt.reply)
                continue
            attempt.timings["formalize"] = time.perf_counter() - t0
            attempt.reply = artifact.text
            attempt.prompt_version = artifact.provenance.prompt_version
            attempt.artifact = artifact.to_json()
            earlier = seen.setdefault(artifact_key(attempt.artifact), attempt)
            if earlier is not attempt:
                # The same artifact after feedback: its outcome is known; ask differently.
                feedback = repeat(attempt, earlier, artifact.text)
                continue
            attempt.stage = "validate"
            t0 = time.perf_counter()
            try:
                validated = kind.validate(artifact, opts)
            except NeedsInformation as e:
                return needs_info(kind, e, trace)
            except ArtifactError as e:
                feedback = failed(attempt, e, artifact.text)
                if amend:
                    # A fault with one clear reading (a parameter named like its variable):
                    # edited without a model call, kept only if it then solves and grounds.
                    fixed = self._amended(kind, artifact, e, opts, trace, attempt.number)
                    if fixed is not None:
                        return fixed
                continue
            finally:
                attempt.timings["validate"] = time.perf_counter() - t0
            done: Answer | Formalized
            if until == VALIDATED:
                done = Formalized(artifact, trace)
            else:
                try:
                    result, verification, problem = self._solve_verify(
                        kind, validated, opts, attempt
                    )
                except ArtifactError as e:  # a fault only the solver finds (clingo grounding)
                    feedback = failed(attempt, e, artifact.text)
                    continue
                if problem is not None:
                    # Something the model can fix: a failed check, or a proof of no optimum.
                    feedback = failed(attempt, problem, artifact.text)
                    if result.status in NEGATIVE_STATUSES:
                        last_negative = (artifact, validated, result)
                        if repair_grounding:
                            # A model that has no solution often says it against the text ("at
                            # most $200" written as a lower limit): name that beside the proof.
                            grounding = kind.ground(artifact, opts)
                            if amend and grounding is not None and not grounding.ok:
                                fixed = self._amended(
                                    kind, artifact, grounding, opts, trace, attempt.number
                                )
                                if fixed is not None:
                                    return fixed
                            feedback = with_ground_feedback(attempt, feedback, grounding)
                    continue
                done = self._answer(kind, artifact, validated, result, verification, trace)
                if result.status not in POSITIVE_STATUSES:
                    # The status ends the loop (``STOP_STATUSES``): a time-out, our side's failure,
                    # or questions only the person can answer. Rewriting would not help.
                    return done
            # Grounding is reported on an answer or repaired; a validated-only artifact needs none.
            grounding = (
                kind.ground(artifact, opts)
                if isinstance(done, Answer) or repair_grounding
                else None
            )
            if isinstance(done, Answer):
                done = with_grounding(done, grounding)
                if amend and grounding is not None and not grounding.ok:
                    # The check's own edits first: no model call, and kept only when the edited
                    # model solves, verifies and is grounded.
                    fixed = self._amended(kind, artifact, grounding, opts, trace, attempt.number)
                    if fixed is not None:
                        attempt.outcome = "grounding"
                        return fixed
            if repair_grounding and grounding is not None and not grounding.ok:
                # Verified against itself, yet its numbers are not the request's. Of such
                # answers the loop keeps the one with the fewest findings (the earlier on a tie):
                # a repair that makes the model stray further must not replace a closer one.
                if ungrounded is None or grounding.findings < ungrounded_findings:
                    ungrounded, ungrounded_findings = done, grounding.findings
                if n < self.config.max_attempts:
                    # Ask again, naming them.
                    attempt.outcome = "grounding"
                    feedback = Feedback("grounding", grounding.feedback(), artifact.text)
                    attempt.feedback = feedback.text
                    continue
                if ungrounded is not done:
                    attempt.outcome = "grounding"
                    attempt.feedback = grounding.feedback()
                return ungrounded
            return done
        if ungrounded is not None:
            # An artifact whose numbers stray from the request beats none: given, with its
            # grounding reported.
            return ungrounded
        last = next(a for a in reversed(trace) if a.model_id != AMENDED_BY)
        if until == VALIDATED:
            raise errors.get(last.number) or ArtifactError(
                last.outcome, [Diagnostic(last.stage, last.feedback)]
            )
        if last_negative is not None and last.status in {s.value for s in NEGATIVE_STATUSES}:
            # Every repair still proves there is no solution: that is the answer, with its diagnosis.
            artifact, validated, result = last_negative
            return self._answer(kind, artifact, validated, result, None, trace)
        return Answer(
            Status.ERROR,
            kind.name,
            trace=trace,
            artifact=last.artifact,
            error=f"gave up after {len(trace)} attempt(s); the last one failed at {last.stage} "
            f"({last.outcome}):\n{last.feedback}",
        )

    def _amended(
        self,
        kind: Kind,
        artifact: Artifact,
        finding: Any,
        opts: Options,
        trace: list[Attempt],
        base: int,
    ) -> Answer | None:
        """The answer of ``artifact`` with formalist's own edits for ``finding`` made
        (``amend_once``), or None. Each edited model is an attempt on ``trace`` (``model``
        ``AMENDED_BY``, ``edits`` listed); ``base`` is the number of the model's attempt they
        edit."""
        attempts: list[Attempt] = []

        def new_attempt(edits: list[str]) -> Attempt:
            attempt = Attempt(len(trace) + 1, stage="validate", model_id=AMENDED_BY, edits=edits)
            trace.append(attempt)
            attempts.append(attempt)
            return attempt

        done = self.amend_once(kind, artifact, finding, opts, new_attempt)
        if done is None:
            return None
        edited, validated, result, verification, grounding = done
        answer = self._answer(kind, edited, validated, result, verification, trace)
        made = [e for a in attempts for e in a.edits or []]
        answer.explanation = (
            f"{answer.explanation}\nAmended by formalist, not by the model (attempt {base}'s "
            f"model, with: {'; '.join(made)})."
        ).strip()
        return with_grounding(answer, grounding)

    def amend_once(
        self,
        kind: Kind,
        artifact: Artifact,
        finding: Any,
        opts: Options,
        new_attempt: Any,
        chain: int = 1,
    ) -> tuple[Artifact, Any, SolveResult, Verification | None, Any] | None:
        """``artifact`` with formalist's own edits for ``finding`` made (a failed grounding
        check, or an ``ArtifactError``: ``Kind.amend``), with its compiled model, result,
        verification and grounding, when the edited model validates, solves, verifies and is
        grounded; None otherwise. An edited model that fails grounding gets its grounding edits
        in turn (``chain`` more times). ``new_attempt(edits)`` gives the ``Attempt`` each edited
        model is recorded on."""
        candidate = kind.amend(artifact, finding, opts)
        if candidate is None:
            return None
        edited, edits = candidate
        attempt = new_attempt(edits)
        attempt.artifact = edited.to_json()
        attempt.reply = edited.text
        try:
            validated = kind.validate(edited, opts)
            result, verification, problem = self._solve_verify(kind, validated, opts, attempt)
        except (ArtifactError, NeedsInformation) as e:
            attempt.outcome = getattr(e, "kind", "needs_info")
            return None
        if problem is not None or result.status not in POSITIVE_STATUSES:
            attempt.outcome = problem.kind if problem is not None else attempt.outcome
            return None
        if verification is None or not verification.ok:
            attempt.outcome = "verification"
            return None
        regrounded = kind.ground(edited, opts)
        if regrounded is None or not regrounded.ok:
            attempt.outcome = "grounding"
            if regrounded is None or chain < 1:
                return None
            return self.amend_once(kind, edited, regrounded, opts, new_attempt, chain - 1)
        return edited, validated, result, verification, regrounded

    # -- stages ------------------------------------------------------------------------------
    def _solve_verify(
        self, kind: Kind, validated: Any, opts: Options, attempt: Attempt
    ) -> tuple[SolveResult, Verification | None, ArtifactError | None]:
        attempt.stage = "solve"
        t0 = time.perf_counter()
        if opts.deadline is None:
            # A model's artifact: the limit counts from when it is ready to solve (the model's
            # own time is bounded by its request timeout and the attempts).
            opts = dataclasses.replace(opts, deadline=t0 + opts.limits.time_s)
        result = kind.solve(validated, opts)
        attempt.timings["solve"] = time.perf_counter() - t0
        attempt.status = result.status.value
        attempt.objective = result.objective
        if result.status in OUR_SIDE_STATUSES:
            attempt.outcome = result.status.value.lower()
        verification = None
        if result.has_solution:
            attempt.stage = "verify"
            t0 = time.perf_counter()
            verification = kind.verify(validated, result, opts)
            attempt.timings["verify"] = time.perf_counter() - t0
        return result, verification, kind.problem(validated, result, verification)

    def _answer(
        self,
        kind: Kind,
        artifact: Artifact,
        validated: Any,
        result: SolveResult,
        verification: Verification | None,
        trace: list[Attempt],
    ) -> Answer:
        positive = result.status in POSITIVE_STATUSES or (
            result.status is Status.TIMEOUT and result.has_solution
        )
        return Answer(
            status=result.status,
            kind=kind.name,
            objective=result.objective if positive else None,
            values=dict(result.values),
            verified=bool(verification is not None and verification.ok),
            verification=verification,
            diagnosis=result.diagnosis,
            artifact=artifact.to_json(),
            language=artifact.language,
            explanation=kind.explain(validated, result, verification),
            solver=result.solver,
            trace=trace,
            solve_result=result,
            questions=list(result.questions),
        )


COMPRESSED = {
    b"\x1f\x8b": (".gz", "gzip"),
    b"BZh": (".bz2", "bz2"),
    b"\xfd7zXZ\x00": (".xz", "lzma"),
}
"""Magic bytes of the compressions instance files come in (MIPLIB and CVRPLIB ship ``.mps.gz``,
``.vrp.gz``...) -> (suffix, the standard-library module that opens them)."""


def input_file_name(path: str | Path) -> str:
    """The name a file's text is recognised by: ``""`` for ``.txt`` (words), else the file's
    name without a compression suffix (``model.mps.gz`` is read as ``model.mps``)."""
    name = Path(path).name
    for suffix, _ in COMPRESSED.values():
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return "" if name.lower().endswith(".txt") else name


def artifact_key(data: Any) -> str:
    """An artifact's content as one string (JSON data in key order; text as it is): two replies
    with the same key are the same artifact, however they were spaced."""
    import json

    if isinstance(data, str):
        return "text:" + " ".join(data.split())
    return "json:" + json.dumps(data, sort_keys=True, default=str)


def repeated(attempt: Attempt, earlier: Attempt, formalizer: Any, reply: str) -> Feedback:
    """The feedback for an ``attempt`` whose artifact is ``earlier``'s again: the same outcome
    (not solved again), a note that it repeats, and, where the formalizer can (``vary``), a
    different draw for the next attempt (a new seed at a sampling temperature)."""
    for name in ("outcome", "status", "stage", "objective"):
        setattr(attempt, name, getattr(earlier, name))
    attempt.repeats = earlier.number
    vary = getattr(formalizer, "vary", None)
    if vary is not None:
        vary(attempt.number)
    text = (
        f"Your reply is the same as attempt {earlier.number}'s, so it has the same problem. Do "
        f"not send it again: write a model that fixes it.\n{earlier.feedback}"
    )
    attempt.feedback = text
    return Feedback(earlier.outcome, text, reply)


GROUNDING_MODES = ("report", "repair", "amend")
"""What a failed grounding check does: ``report`` it on the answer; also send the model back to
``repair`` it, naming each number; or first ``amend`` it with the check's own edits (a limit turned
round, swapped limits set back, a unit converted: ``formalizers.milp.grounding.amended``), and ask
the model only when the edited model does not solve, verify and ground (``Request.extra
["grounding"]``; default ``DEFAULT_GROUNDING``)."""
DEFAULT_GROUNDING = "amend"
"""A model whose numbers are not the request's is edited where the check knows the edit, else goes
back once more, naming them: the answer it replaces is kept should no later attempt do better, so
repair costs time, never an answer."""
AMENDED_BY = "formalist:grounding"
"""The ``model`` of an attempt the grounding check's edits made (no language model was asked)."""


def with_ground_feedback(attempt: Attempt, feedback: Feedback, grounding: Any) -> Feedback:
    """``feedback`` with what the grounding check found added, when it found something."""
    if grounding is None or grounding.ok:
        return feedback
    text = f"{feedback.text}\n{grounding.feedback()}"
    attempt.feedback = text
    return Feedback(feedback.kind, text, feedback.previous)


def grounding_option(req: Request) -> str:
    """The request's ``grounding`` option; ``InputError`` when it is not one of the modes."""
    mode = req.extra.get("grounding", DEFAULT_GROUNDING)
    if mode not in GROUNDING_MODES:
        raise InputError(f"grounding must be one of {', '.join(GROUNDING_MODES)}, not {mode!r}")
    return str(mode)


def needs_info(kind: Kind, asked: NeedsInformation, trace: list[Attempt]) -> Answer:
    """The NEEDS_INFO answer when a stage raised ``NeedsInformation`` (a formalizer whose model
    asked, a reader or validator): its questions, on the last attempt of ``trace``."""
    attempt = trace[-1]
    attempt.outcome = "needs_info"
    attempt.status = Status.NEEDS_INFO.value
    return Answer(
        Status.NEEDS_INFO,
        kind.name,
        trace=trace,
        questions=list(asked.questions),
        explanation="More information is needed:\n"
        + "\n".join(f"  - {q}" for q in asked.questions),
    )


def with_grounding(answer: Answer, grounding: Any) -> Answer:
    """``answer`` with its grounding (``formalizers.milp.grounding.Grounding``, or None when the
    kind has no such check) recorded and said in the explanation, apart from "verified"."""
    if grounding is None:
        return answer
    answer.grounding = grounding.to_json()
    if grounding.ok:
        line = (
            f"Grounded: all {grounding.checked} numbers of the model come from the request, "
            "and no constraint contradicts the sentence it comes from."
        )
    else:
        line = "NOT grounded in the request (verified means: the solution satisfies the model):\n"
        line += "\n".join(grounding.feedback().splitlines()[1:])
    answer.explanation = f"{answer.explanation}\n{line}".strip()
    return answer


def read_text_file(path: str | Path) -> str:
    """A file's text, decompressed when it is gzip, bzip2 or xz: ``InputError`` when it is
    missing, over 20 MB (compressed or not: a decompression bomb stops at the cap) or not UTF-8."""
    import importlib

    p = Path(path)
    cap = MAX_FILE_BYTES
    try:
        if p.stat().st_size > cap:
            raise InputError(f"{p} is larger than {cap // 1_000_000} MB")
        data = p.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {p}: {e.strerror or e}") from e
    for magic, (suffix, module) in COMPRESSED.items():
        if data.startswith(magic):
            opener = importlib.import_module(module)
            try:
                with opener.open(p, "rb") as f:  # streams: at most cap + 1 bytes in memory
                    data = f.read(cap + 1)
            except Exception as e:  # OSError, EOFError (truncated), zlib.error, LZMAError...
                raise InputError(f"{p} does not decompress ({suffix[1:]}): {e}") from e
            if len(data) > cap:
                raise InputError(
                    f"{p} decompresses to more than {cap // 1_000_000} MB; decompress it "
                    "yourself if it really is that large"
                )
            break
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{p} is not UTF-8 text (binary data?)") from e


def solve(request: str, model: str | None = None, **overrides: Any) -> Answer:
    """One-shot helper: ``Agent(model, **overrides).solve(request)``."""
    return Agent(model, **overrides).solve(request)
